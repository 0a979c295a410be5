"""Noise2Void: self-supervised denoising (N2V, N2V2, structN2V)."""

from microsight.methods.n2v.config import N2VConfig
from microsight.methods.n2v.module import N2VModule

__all__ = ["N2VConfig", "N2VModule"]
