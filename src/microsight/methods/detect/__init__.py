"""Point detection: centre heat-maps, peak extraction, coordinates out."""

from microsight.methods.detect.config import DetectConfig
from microsight.methods.detect.module import DetectModule

__all__ = ["DetectConfig", "DetectModule"]
