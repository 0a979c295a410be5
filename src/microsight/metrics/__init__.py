"""Evaluation metrics: pure array code, never torch or Lightning."""

from microsight.metrics.restoration import (
    affine_match,
    nrmse,
    percentile_normalize,
    psnr,
    restoration_metrics,
    ssim,
)

__all__ = [
    "affine_match",
    "nrmse",
    "percentile_normalize",
    "psnr",
    "restoration_metrics",
    "ssim",
]
