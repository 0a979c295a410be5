"""Semantic segmentation with a U-Net (background / object / boundary by default)."""

from microsight.methods.unet_seg.config import UNetSegConfig
from microsight.methods.unet_seg.module import UNetSegModule

__all__ = ["UNetSegConfig", "UNetSegModule"]
