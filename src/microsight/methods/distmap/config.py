"""Configuration of distance-map + watershed instance segmentation."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from microsight.config import UNetConfig
from microsight.families.segmentation.config import InstanceFields


class DistMapConfig(InstanceFields, UNetConfig):
    """A U-Net predicting foreground and each object's normalized distance map.

    Targets are instance label images named like the images. Objects are grown
    by a watershed from the cores of the distance map, so they may have any
    shape (non-convex cells too), in 2D and 3D.
    """

    unet_defaults: ClassVar[dict[str, Any]] = {"depth": 3}

    method: Literal["distmap"] = "distmap"
    ndim: Literal[2, 3] = Field(2, description="2 (YX) or 3 (ZYX).")
    distance_weight: float = Field(
        1.0, ge=0, description="Weight of the distance-map loss against the foreground loss.")
    contact_weight: float = Field(
        0.0, ge=0, description="Extra loss weight on pixels where touching objects meet "
                               "(within 2 px of two objects): 0 off, e.g. 4 so that "
                               "touching nuclei are not merged.")
    mask_threshold: float = Field(
        0.5, gt=0, lt=1, description="Foreground probability above which pixels belong to "
                                     "an object.")
    marker_threshold: float = Field(
        0.5, gt=0, lt=1, description="Normalized distance above which pixels form an object's "
                                     "core (watershed marker).")
    marker_h: float = Field(
        0.0, ge=0, lt=1, description="0: every core above marker_threshold seeds an object. "
                                     "> 0 (e.g. 0.2): only peaks of the smoothed distance "
                                     "map rising this much above their surroundings seed "
                                     "objects; this splits cores that meet above "
                                     "marker_threshold at a real dip and lets a weaker "
                                     "peak (a ripple, a shoulder) be flooded by its "
                                     "neighbour.")
