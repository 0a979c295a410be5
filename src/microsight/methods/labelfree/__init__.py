"""Label-free prediction: fluorescence from transmitted light (artificial labelling)."""

from microsight.methods.labelfree.config import LabelfreeConfig
from microsight.methods.labelfree.module import LabelfreeModule

__all__ = ["LabelfreeConfig", "LabelfreeModule"]
