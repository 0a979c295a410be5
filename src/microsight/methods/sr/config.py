"""Configuration of single-image super-resolution (``sr``)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from microsight.config import UNetConfig


class SRConfig(UNetConfig):
    """Super-resolution: predict an image ``factor`` times finer in Y and X.

    Training data, two ways:

    - ``generate_pairs: false`` (default): ``--input`` holds the low-resolution
      images and ``--target`` the high-resolution ones, paired by file name,
      each target exactly ``factor`` times the size of its input in Y and X.
    - ``generate_pairs: true``: ``--input`` holds *high-resolution* images
      only (no ``--target``); the low-resolution inputs are made from them by
      a Gaussian blur of ``blur_sigma`` and ``factor x factor`` block
      averaging. The model then learns to undo exactly that degradation, so
      choose ``blur_sigma`` close to the real low-resolution optics.

    ``data.patch_size`` is measured on the high-resolution (target) grid and
    must be a multiple of ``factor`` (and, for the U-Net, of ``2**depth``);
    the network sees ``patch_size / factor`` low-resolution pixels. 2D only.

    Networks: ``unet`` upsamples the input by bicubic interpolation and
    refines it with a residual U-Net (CARE's upsampling networks); ``rcan``
    (Zhang et al. 2018) works on the low-resolution grid and upsamples at the
    end with pixel shuffles, which is cheaper for large factors.
    """

    method: Literal["sr"] = "sr"
    ndim: Literal[2] = Field(2, description="2D (YX) images only; 3D is not supported.")
    factor: int = Field(2, ge=2, le=8, description="Upsampling factor in Y and X.")
    network: Literal["unet", "rcan"] = Field(
        "unet", description="'unet': bicubic upsampling + residual U-Net (CARE); 'rcan': "
                            "residual channel-attention network with pixel-shuffle upsampler.")
    loss: Literal["l1", "mse"] = Field("l1", description="Pixel loss.")
    generate_pairs: bool = Field(
        False, description="Make the low-resolution inputs from the high-resolution images "
                           "given as --input (blur + block average); no --target.")
    blur_sigma: float | None = Field(
        None, ge=0, le=20,
        description="Gaussian blur (high-resolution pixels) before downsampling when "
                    "generate_pairs is on; default factor / 2.")
    # RCAN
    n_groups: int = Field(3, ge=1, le=20, description="RCAN: residual groups.")
    n_blocks: int = Field(4, ge=1, le=40, description="RCAN: channel-attention blocks per group.")
    channels: int = Field(32, ge=4, le=256, description="RCAN: feature channels.")
    reduction: int = Field(8, ge=1, le=64, description="RCAN: channel reduction in attention.")

    @model_validator(mode="after")
    def _attention_width(self) -> SRConfig:
        if self.reduction > self.channels:
            raise ValueError(f"reduction ({self.reduction}) must not exceed channels "
                             f"({self.channels})")
        return self

    @property
    def sigma(self) -> float:
        """Blur used to generate pairs (``blur_sigma`` or ``factor / 2``)."""
        return self.factor / 2 if self.blur_sigma is None else float(self.blur_sigma)

    @property
    def divisor(self) -> int:
        """High-resolution patch and validation-tile sizes must be multiples of this."""
        if self.network == "rcan":
            return self.factor
        return math.lcm(self.factor, 2**self.depth)
