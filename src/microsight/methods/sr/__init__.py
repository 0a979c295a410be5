"""Single-image super-resolution by an integer factor (CARE upsampling U-Net or RCAN)."""

from microsight.methods.sr.config import SRConfig
from microsight.methods.sr.module import SRModule

__all__ = ["SRConfig", "SRModule"]
