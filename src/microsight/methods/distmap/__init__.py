"""Distance-map regression + marker watershed instance segmentation (Naylor et al. 2019)."""

from microsight.methods.distmap.config import DistMapConfig
from microsight.methods.distmap.module import DistMapModule

__all__ = ["DistMapConfig", "DistMapModule"]
