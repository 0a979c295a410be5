"""Configuration shared by the segmentation methods (torch-free)."""

from __future__ import annotations

from pydantic import Field

from microsight.config import MethodConfig

#: Instance metrics every segmentation report shows (IoU threshold after '@').
INSTANCE_METRICS = ("ap@0.5", "ap@0.75", "ap@0.9", "f1@0.5", "pq@0.5", "precision@0.5",
                    "recall@0.5")

#: What every segmentation method declares alike (``MethodSpec(..., **SEGMENTATION_SPEC)``).
SEGMENTATION_SPEC = {"family": "segmentation", "needs_target": True,
                     "outputs": ("labels", "probabilities", "objects"),
                     "metrics": INSTANCE_METRICS,
                     "predictor": ".predict_image", "evaluator": ".evaluate_model",
                     "ensembles": True, "exports": True}


class InstanceFields(MethodConfig):
    """Fields shared by the instance-segmentation methods."""

    block_margin: int = Field(
        64, ge=8, description="Context (pixels) around each post-processing block; at least "
                              "twice the largest object diameter, so that objects crossing "
                              "block borders come out whole and once.")
    block_pixels: int = Field(
        2**20, ge=2**10, description="Pixels per post-processing block (memory bound).")
    min_size: int = Field(8, ge=0, description="Objects smaller than this (pixels) are dropped.")
    tune_thresholds: bool = Field(
        True, description="After training, choose the post-processing thresholds on the "
                          "validation images (kept in the bundle; see qc.json "
                          "'postprocessing').")
    baseline_sigma: float = Field(1.0, ge=0, description="Classical baseline: Gaussian smoothing "
                                                         "before Otsu's threshold.")
    baseline_min_distance: int = Field(
        4, ge=1, description="Classical baseline: smallest distance between watershed seeds.")
