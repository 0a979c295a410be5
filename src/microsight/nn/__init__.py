"""Network architectures (no training logic)."""

from microsight.nn.unet import UNet

__all__ = ["UNet"]
