"""Configuration of U-Net semantic segmentation."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from microsight.config import UNetConfig
from microsight.families.segmentation.config import InstanceFields


class UNetSegConfig(InstanceFields, UNetConfig):
    """A U-Net classifying every pixel into ``n_classes`` classes (softmax).

    With ``targets: instances`` (default) the targets are instance label images
    and the classes are derived from them: background, object interior and
    object boundary (``n_classes: 3``) or background and object (``2``); objects
    are then also recovered as the connected interiors grown over the object
    pixels. With ``targets: classes`` the targets are class maps (0 ..
    n_classes - 1) used as they are.
    """

    unet_defaults: ClassVar[dict[str, Any]] = {"depth": 3}

    method: Literal["unet-seg"] = "unet-seg"
    ndim: Literal[2, 3] = Field(2, description="2 (YX) or 3 (ZYX).")
    n_classes: int = Field(3, ge=2, le=64, description="Classes including background.")
    targets: Literal["instances", "classes"] = Field(
        "instances", description="'instances': label images, classes derived (background / "
                                 "interior / boundary); 'classes': class maps.")
    class_weights: list[float] | Literal["balanced", "none"] = Field(
        "balanced", description="Cross-entropy weight per class; 'balanced' sets them from "
                                "the training labels (inverse square-root frequency).")

    @model_validator(mode="after")
    def _classes_fit(self) -> UNetSegConfig:
        if self.targets == "instances" and self.n_classes not in (2, 3):
            raise ValueError("with targets: instances, n_classes must be 2 (background, "
                             "object) or 3 (background, interior, boundary)")
        if isinstance(self.class_weights, list) and len(self.class_weights) != self.n_classes:
            raise ValueError(f"class_weights has {len(self.class_weights)} values but there "
                             f"are {self.n_classes} classes")
        return self
