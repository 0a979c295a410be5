"""Deep-STORM: super-resolved images from dense SMLM frames."""

from microsight.methods.deepstorm.config import DeepStormConfig
from microsight.methods.deepstorm.module import DeepStormModule

__all__ = ["DeepStormConfig", "DeepStormModule"]
