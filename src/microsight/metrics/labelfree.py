"""Metrics of label-free prediction: Pearson r, SSIM and NRMSE per target, error maps.

Label-free (artificial labelling) models predict a fluorescence channel from
transmitted light. The field's standard score is the pixel-wise Pearson
correlation between prediction and ground truth (Christiansen et al. 2018;
Ounkomol et al. 2018), which ignores gain and offset. SSIM and NRMSE are
computed without fitting the prediction to the target, because a label-free
model is meant to return the target's own intensity scale: both arrays are
mapped by the *target's* 1 / 99.8 percentiles, so the scores are comparable
across targets of very different brightness.

Pure numpy (plus scikit-image for SSIM); never torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from microsight.errors import MicrosightError
from microsight.metrics.restoration import nrmse, ssim

__all__ = ["abs_error_map", "labelfree_metrics", "pearson_r", "per_target_metrics"]

METRICS = ("pearson", "ssim", "nrmse")


def pearson_r(prediction: ArrayLike, target: ArrayLike) -> float:
    """Pixel-wise Pearson correlation coefficient between two images.

    Parameters
    ----------
    prediction, target : array_like
        Images of equal shape with finite values.

    Returns
    -------
    float
        r in [-1, 1]; 0 when either image is constant (no linear relation).

    Raises
    ------
    MicrosightError
        If the shapes differ or a value is not finite.
    """
    p = np.asarray(prediction, np.float64).ravel()
    t = np.asarray(target, np.float64).ravel()
    if np.asarray(prediction).shape != np.asarray(target).shape:
        raise MicrosightError(
            f"prediction and target shapes differ: {np.asarray(prediction).shape} vs "
            f"{np.asarray(target).shape}.")
    if not (np.isfinite(p).all() and np.isfinite(t).all()):
        raise MicrosightError("prediction or target contains NaN or Inf; Pearson r needs "
                              "finite values.")
    p = p - p.mean()
    t = t - t.mean()
    denom = np.sqrt(np.dot(p, p) * np.dot(t, t))
    return float(np.dot(p, t) / denom) if denom > 0 else 0.0


def _target_scaled(prediction: np.ndarray, target: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Map both arrays with the target's 1 / 99.8 percentiles (one affine map for both)."""
    lo, hi = np.percentile(target, [1.0, 99.8])
    scale = hi - lo if hi > lo else 1.0
    return (prediction - lo) / scale, (target - lo) / scale


def labelfree_metrics(prediction: ArrayLike, target: ArrayLike) -> dict[str, float]:
    """Pearson r, SSIM and NRMSE of one predicted channel against its ground truth.

    Parameters
    ----------
    prediction, target : array_like
        One channel (2D or 3D) each, in the target's intensity scale.

    Returns
    -------
    dict
        ``{"pearson": r, "ssim": s, "nrmse": e}``. SSIM and NRMSE use the
        target's percentile scale (data range 1) without fitting the prediction.
    """
    pred = np.asarray(prediction, np.float64)
    tgt = np.asarray(target, np.float64)
    r = pearson_r(pred, tgt)
    p_s, t_s = _target_scaled(pred, tgt)
    return {"pearson": r, "ssim": ssim(p_s, t_s, data_range=1.0), "nrmse": nrmse(p_s, t_s)}


def per_target_metrics(prediction: ArrayLike, target: ArrayLike,
                       names: Sequence[str] | None = None) -> dict[str, float]:
    """Metrics of every target channel, and their mean over targets.

    Parameters
    ----------
    prediction, target : array_like
        Channels-first arrays ``(C, ...)`` of equal shape.
    names : sequence of str, optional
        One name per channel (default ``target0``, ``target1``, ...).

    Returns
    -------
    dict
        ``pearson``, ``ssim``, ``nrmse`` (means over targets) and
        ``"<metric> <name>"`` for every target.
    """
    pred = np.asarray(prediction)
    tgt = np.asarray(target)
    if pred.shape != tgt.shape:
        raise MicrosightError(
            f"prediction and target shapes differ: {pred.shape} vs {tgt.shape}.")
    names = list(names) if names else [f"target{c}" for c in range(tgt.shape[0])]
    if len(names) != tgt.shape[0]:
        raise MicrosightError(
            f"{len(names)} target names given for {tgt.shape[0]} target channels; give one "
            "name per channel")
    per = [labelfree_metrics(p, t) for p, t in zip(pred, tgt, strict=True)]
    out = {m: float(np.mean([row[m] for row in per])) for m in METRICS}
    for name, row in zip(names, per, strict=True):
        out.update({f"{m} {name}": row[m] for m in METRICS})
    return out


def abs_error_map(prediction: ArrayLike, target: ArrayLike) -> np.ndarray:
    """Absolute error ``|prediction - target|`` per pixel and channel (target units).

    Parameters
    ----------
    prediction, target : array_like
        Arrays of equal shape.

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape.
    """
    pred = np.asarray(prediction, np.float32)
    tgt = np.asarray(target, np.float32)
    if pred.shape != tgt.shape:
        raise MicrosightError(
            f"prediction and target shapes differ: {pred.shape} vs {tgt.shape}.")
    return np.abs(pred - tgt)
