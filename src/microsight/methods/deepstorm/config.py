"""Configuration of Deep-STORM."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from microsight.families.smlm.config import SMLMConfig


class DeepStormConfig(SMLMConfig):
    """Deep-STORM (Nehme et al. 2018): a U-Net maps each frame to an image ``factor``
    times finer in which every emitter is a spike; the movie's super-resolved image is
    the sum over frames. The loss compares Gaussian-blurred prediction and spike target.
    """

    method: Literal["deepstorm"] = "deepstorm"
    factor: int = Field(8, ge=2, le=16, description="Upsampling factor of the output grid.")
    train_frames: int = Field(
        160, ge=4, description="Simulated training frames (targets hold factor^2 values "
                               "per camera pixel: memory grows fast).")
    target_sigma: float = Field(
        1.0, gt=0, le=5, description="Blur of the loss (pixels of the fine grid).")
    spike: float = Field(100.0, gt=0, description="Value of one emitter in the target.")
    l1_weight: float = Field(
        0.0, ge=0, description="Weight of an L1 sparsity penalty on the prediction.")
