"""Configuration of star-convex polygon segmentation (Schmidt et al. 2018)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from microsight.config import UNetConfig
from microsight.families.segmentation.config import InstanceFields


class StarConvexConfig(InstanceFields, UNetConfig):
    """A U-Net predicting, per pixel, an object probability and ``n_rays`` radial distances.

    Targets are instance label images named like the images. Each object is
    described as a star-convex polygon around its centre; prediction keeps the
    polygons of probable centres and suppresses overlapping ones.
    """

    unet_defaults: ClassVar[dict[str, Any]] = {"depth": 3}

    method: Literal["starconvex"] = "starconvex"
    ndim: Literal[2] = Field(2, description="Star-convex polygons are 2D (YX images).")
    n_rays: int = Field(32, ge=4, le=128, description="Radial distances per pixel.")
    distance_weight: float = Field(
        0.2, ge=0, description="Weight of the distance loss (L1, pixels) against the "
                               "probability loss (binary cross-entropy).")
    prob_threshold: float = Field(
        0.5, gt=0, lt=1, description="Smallest object probability of a polygon centre.")
    nms_threshold: float = Field(
        0.4, ge=0, le=1, description="Largest IoU between two kept polygons.")
