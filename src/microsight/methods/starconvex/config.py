"""Configuration of star-convex polygon segmentation (Schmidt et al. 2018)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from microsight.engine.segmentation import InstanceFields


class StarConvexConfig(InstanceFields):
    """A U-Net predicting, per pixel, an object probability and ``n_rays`` radial distances.

    Targets are instance label images named like the images. Each object is
    described as a star-convex polygon around its centre; prediction keeps the
    polygons of probable centres and suppresses overlapping ones.
    """

    method: Literal["starconvex"] = "starconvex"
    ndim: Literal[2] = Field(2, description="Star-convex polygons are 2D (YX images).")
    n_rays: int = Field(32, ge=4, le=128, description="Radial distances per pixel.")
    depth: int = Field(3, ge=1, le=5, description="Number of U-Net down-samplings.")
    base_channels: int = Field(32, ge=4, le=256, description="Features at the first level.")
    batch_norm: bool = Field(False, description="Batch normalization after convolutions.")
    distance_weight: float = Field(
        0.2, ge=0, description="Weight of the distance loss (L1, pixels) against the "
                               "probability loss (binary cross-entropy).")
    prob_threshold: float = Field(
        0.5, gt=0, lt=1, description="Smallest object probability of a polygon centre.")
    nms_threshold: float = Field(
        0.4, ge=0, le=1, description="Largest IoU between two kept polygons.")

    @property
    def divisor(self) -> int:
        """Patch and tile sizes must be multiples of this."""
        return 2**self.depth
