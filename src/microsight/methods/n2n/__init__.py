"""Noise2Noise: denoising from pairs of noisy frames (CARE's network and loss)."""

from microsight.methods.n2n.config import N2NConfig
from microsight.methods.n2n.module import N2NModule

__all__ = ["N2NConfig", "N2NModule"]
