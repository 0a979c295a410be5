"""Image restoration metrics: PSNR, SSIM, NRMSE and CARE's range matching.

All functions are pure numpy (plus scikit-image for SSIM) and take the
prediction first, the ground truth second. Arrays are 2D or 3D images of equal
shape; the axes do not matter except for SSIM's window, which is applied over
every axis.

A network's output and the ground truth rarely share an intensity scale, so
comparing them as given penalises a harmless offset or gain. The CARE protocol
(Weigert et al. 2018, *Content-aware image restoration*) therefore normalises
the target by percentiles and fits the prediction to it with the affine map of
least squared error before scoring; :func:`restoration_metrics` does that by
default.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from skimage.metrics import structural_similarity

from microsight.errors import MicrosightError

__all__ = [
    "affine_match",
    "nrmse",
    "percentile_normalize",
    "psnr",
    "restoration_metrics",
    "ssim",
]

# skimage's default SSIM window (7 per axis); smaller images need a smaller one.
_SSIM_WIN = 7


def _as_image(x: ArrayLike, name: str) -> np.ndarray:
    """Return ``x`` as a finite float64 array, or raise a one-line error."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise MicrosightError(f"{name} must be a real-valued numeric array, got dtype {arr.dtype}.")
    arr = arr.astype(np.float64, copy=False)
    if arr.size == 0:
        raise MicrosightError(f"{name} is empty (shape {arr.shape}).")
    if not np.all(np.isfinite(arr)):
        raise MicrosightError(
            f"{name} contains NaN or Inf values; metrics need finite intensities."
        )
    return arr


def _as_pair(prediction: ArrayLike, target: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (prediction, target) pair: equal shapes, finite values."""
    pred = np.asarray(prediction)
    tgt = np.asarray(target)
    if pred.shape != tgt.shape:
        raise MicrosightError(
            f"prediction and target shapes differ: prediction {pred.shape} vs target {tgt.shape}."
        )
    return _as_image(pred, "prediction"), _as_image(tgt, "target")


def _target_range(target: np.ndarray) -> float:
    """Intensity range of the target; a constant target has no usable range."""
    rng = float(target.max() - target.min())
    if rng <= 0:
        raise MicrosightError(
            "a target image is constant (intensity range 0), so PSNR and SSIM are undefined; "
            "evaluate against target images that show structure (from Python: pass "
            "data_range=)"
        )
    return rng


def _resolve_range(target: np.ndarray, data_range: float | None) -> float:
    if data_range is None:
        return _target_range(target)
    if not np.isfinite(data_range) or data_range <= 0:
        raise MicrosightError(f"data_range must be a positive finite number, got {data_range}.")
    return float(data_range)


def _mse(pred: np.ndarray, tgt: np.ndarray) -> float:
    return float(np.mean((pred - tgt) ** 2))


def psnr(prediction: ArrayLike, target: ArrayLike, *, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB.

    Parameters
    ----------
    prediction, target : array_like
        Images of equal shape with finite values.
    data_range : float, optional
        Peak-to-peak range of the signal. Defaults to ``target.max() - target.min()``.

    Returns
    -------
    float
        ``10 * log10(data_range**2 / mse)``; ``inf`` for identical images.

    Raises
    ------
    MicrosightError
        If the shapes differ, an input is not finite, or the range is not positive.
    """
    pred, tgt = _as_pair(prediction, target)
    rng = _resolve_range(tgt, data_range)
    mse = _mse(pred, tgt)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(rng**2 / mse))


def _ssim_win_size(shape: tuple[int, ...]) -> int:
    """Largest odd window <= 7 that fits every axis of ``shape``."""
    smallest = min(shape)
    if smallest >= _SSIM_WIN:
        return _SSIM_WIN
    if smallest < 3:
        raise MicrosightError(f"SSIM needs at least 3 pixels along every axis, got shape {shape}.")
    return smallest if smallest % 2 == 1 else smallest - 1


def ssim(prediction: ArrayLike, target: ArrayLike, *, data_range: float | None = None) -> float:
    """Mean structural similarity (``skimage.metrics.structural_similarity``).

    Works for 2D and 3D images. The window is skimage's default (7 per axis)
    when every axis is at least 7 long; otherwise the largest odd window that
    fits, so thin Z stacks can still be scored.

    Parameters
    ----------
    prediction, target : array_like
        Images of equal shape with finite values; no channel axis.
    data_range : float, optional
        Peak-to-peak range of the signal. Defaults to ``target.max() - target.min()``.

    Returns
    -------
    float
        Mean SSIM; 1.0 for identical images.

    Raises
    ------
    MicrosightError
        If the shapes differ, an input is not finite, an axis is shorter than
        3 pixels, or the range is not positive.
    """
    pred, tgt = _as_pair(prediction, target)
    rng = _resolve_range(tgt, data_range)
    win = _ssim_win_size(tgt.shape)
    return float(structural_similarity(pred, tgt, data_range=rng, win_size=win))


def nrmse(prediction: ArrayLike, target: ArrayLike) -> float:
    """Root mean squared error normalised by the target's range.

    Computed as ``sqrt(mse) / (target.max() - target.min())`` (not by the
    target's mean or norm, which other tools use), so 0 is perfect and the
    value does not depend on the target's offset.

    Parameters
    ----------
    prediction, target : array_like
        Images of equal shape with finite values.

    Returns
    -------
    float
        The normalised RMSE.

    Raises
    ------
    MicrosightError
        If the shapes differ, an input is not finite, or the target is constant.
    """
    pred, tgt = _as_pair(prediction, target)
    return float(np.sqrt(_mse(pred, tgt)) / _target_range(tgt))


def percentile_normalize(
    x: ArrayLike, *, p_low: float = 0.1, p_high: float = 99.9, eps: float = 1e-20
) -> np.ndarray:
    """Map the ``p_low`` and ``p_high`` percentiles of ``x`` to 0 and 1.

    Parameters
    ----------
    x : array_like
        Image with finite values.
    p_low, p_high : float
        Percentiles (0-100) mapped to 0 and 1; values outside are not clipped.
    eps : float
        Added to the denominator so a constant image does not divide by zero.

    Returns
    -------
    numpy.ndarray
        ``(x - lo) / (hi - lo + eps)`` as float32.

    Raises
    ------
    MicrosightError
        If ``x`` is not finite or the percentiles are not ``0 <= p_low < p_high <= 100``.
    """
    if not 0 <= p_low < p_high <= 100:
        raise MicrosightError(
            f"percentiles must satisfy 0 <= p_low < p_high <= 100, got {p_low} and {p_high}."
        )
    arr = _as_image(x, "image")
    lo, hi = np.percentile(arr, [p_low, p_high])
    return ((arr - lo) / (hi - lo + eps)).astype(np.float32)


def affine_match(prediction: ArrayLike, target: ArrayLike) -> np.ndarray:
    """Rescale ``prediction`` to ``target`` with the least-squares affine map.

    CARE's range matching (Weigert et al. 2018): returns
    ``alpha * prediction + beta`` with ``alpha = cov(p, t) / var(p)`` and
    ``beta = mean(t) - alpha * mean(p)``, the closed-form minimiser of the
    squared error to ``target``. A constant prediction maps to ``mean(target)``.

    Parameters
    ----------
    prediction, target : array_like
        Images of equal shape with finite values.

    Returns
    -------
    numpy.ndarray
        The matched prediction as float32.

    Raises
    ------
    MicrosightError
        If the shapes differ or an input is not finite.
    """
    pred, tgt = _as_pair(prediction, target)
    # Centre first: the cov/var form is numerically stable for large offsets.
    p_mean, t_mean = pred.mean(), tgt.mean()
    pc = pred - p_mean
    var = float(np.mean(pc * pc))
    alpha = float(np.mean(pc * (tgt - t_mean))) / var if var > 0 else 0.0
    beta = t_mean - alpha * p_mean
    return (alpha * pred + beta).astype(np.float32)


def restoration_metrics(
    prediction: ArrayLike,
    target: ArrayLike,
    *,
    data_range: float | None = None,
    range_match: bool = True,
) -> dict[str, float]:
    """PSNR, SSIM and NRMSE of a prediction against its ground truth.

    Parameters
    ----------
    prediction, target : array_like
        Images (2D or 3D) of equal shape with finite values.
    data_range : float, optional
        Signal range for PSNR and SSIM. Defaults to 1.0 with range matching
        and to ``target.max() - target.min()`` without.
    range_match : bool
        Follow the CARE protocol: normalise the target to its 0.1/99.9
        percentiles, then fit the prediction to it with :func:`affine_match`.
        The scores are then invariant to any affine change of the prediction.
        If False, compare the images as given.

    Returns
    -------
    dict of str to float
        ``{"psnr": ..., "ssim": ..., "nrmse": ...}``.

    Raises
    ------
    MicrosightError
        If the shapes differ, an input is not finite, or the target is constant.
    """
    pred, tgt = _as_pair(prediction, target)
    if range_match:
        tgt = percentile_normalize(tgt, p_low=0.1, p_high=99.9)
        pred = affine_match(pred, tgt)
        if data_range is None:
            data_range = 1.0
    return {
        "psnr": psnr(pred, tgt, data_range=data_range),
        "ssim": ssim(pred, tgt, data_range=data_range),
        "nrmse": nrmse(pred, tgt),
    }
