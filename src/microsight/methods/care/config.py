"""Configuration of CARE (content-aware image restoration)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from microsight.config import MethodConfig


class UNetMethodConfig(MethodConfig):
    """The U-Net knobs shared by the restoration methods built on ``nn.UNet``."""

    depth: int = Field(2, ge=1, le=5, description="Number of U-Net down-samplings.")
    base_channels: int = Field(32, ge=4, le=256, description="Features at the first level.")
    kernel_size: int = Field(3, ge=3, le=7, description="Convolution kernel size (odd).")
    batch_norm: bool = Field(False, description="Batch normalization after convolutions.")
    residual: bool = Field(
        True, description="Learn a correction added to the input (needs equal channel counts)."
    )
    loss: Literal["l1", "mse"] = Field("mse", description="Pixel loss (CARE's default is mse).")

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {value}")
        return value

    @property
    def divisor(self) -> int:
        """Patch and tile sizes must be multiples of this."""
        return 2**self.depth


class CareConfig(UNetMethodConfig):
    """CARE: a U-Net trained on pairs of low-quality and high-quality images.

    Defaults are small enough to train on a 2-core laptop CPU in minutes;
    raise ``depth`` and ``base_channels`` on a GPU.
    """

    method: Literal["care"] = "care"
    ndim: Literal[2, 3] = Field(2, description="2 for YX images, 3 for ZYX stacks.")
    probabilistic: bool = Field(
        False,
        description=(
            "Also predict a per-pixel Laplace scale (an uncertainty map, in intensity units); "
            "trained by the Laplace negative log-likelihood instead of `loss`."
        ),
    )
