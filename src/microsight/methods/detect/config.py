"""Configuration of point detection (cells, nuclei, spots)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from microsight.config import UNetConfig


class DetectConfig(UNetConfig):
    """A U-Net predicting a Gaussian centre heat-map per class; peaks become points.

    Targets are label images (object centroids) or CSV point tables
    (``y,x[,class]``) with the same file stem as each input image.
    """

    unet_defaults: ClassVar[dict[str, Any]] = {"base_channels": 16}

    method: Literal["detect"] = "detect"
    ndim: Literal[2] = Field(2, description="Point detection works on YX images.")
    sigma: float = Field(
        2.0, gt=0, le=20,
        description="Heat-map Gaussian sigma (pixels); the smallest sigma when it follows "
                    "object sizes.")
    sigma_mode: Literal["fixed", "object"] = Field(
        "object",
        description="'object': with label-image targets the heat-map width follows each "
                    "object's size (object_scale x its equivalent radius) and stays on the "
                    "object's pixels, so large and small nuclei both give one peak; point "
                    "tables always use 'sigma'. 'fixed': 'sigma' everywhere.")
    object_scale: float = Field(
        0.5, gt=0, le=2, description="Heat-map sigma / equivalent object radius ('object').")
    pos_weight: float = Field(
        10.0, ge=0, description="Extra loss weight on heat-map pixels, times the target value.")
    threshold: float = Field(0.4, gt=0, lt=1, description="Smallest peak height kept.")
    min_distance: int = Field(3, ge=1, description="Smallest distance between peaks (pixels).")
    tolerance: float = Field(
        5.0, gt=0, description="Largest distance of a true positive in evaluation (pixels).")
    log_threshold: float = Field(
        0.05, gt=0, description="Laplacian-of-Gaussian baseline: blob_log threshold.")
    log_min_sigma: float = Field(2.0, gt=0, description="LoG baseline: smallest blob sigma.")
    log_max_sigma: float = Field(8.0, gt=0, description="LoG baseline: largest blob sigma.")
