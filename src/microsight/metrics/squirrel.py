"""Resolution-scaled error maps in the spirit of SQUIRREL (Culley et al. 2018).

*Quantitative mapping and minimization of super-resolution optical imaging
artifacts* (Nature Methods 15, 263) checks a processed image against a
reference by first making the two comparable: the processed image is blurred
with the Gaussian that best matches the reference's resolution and mapped to
its intensities by a gain and an offset. What remains is the
**resolution-scaled error** map; its root-mean-square is the RSE and the
Pearson correlation of the two images the RSP. A high RSP (close to 1) and a
structure-free error map say the processed image agrees with the reference;
bright regions of the map point at artifacts (missing or invented structure).

Here the processed image is a network's prediction (or a super-resolved
image on a finer grid) and the reference its ground truth, or the raw image
itself when no ground truth exists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from microsight.errors import MicrosightError

__all__ = ["SquirrelResult", "resolution_scaled_error"]

# Blur widths (pixels of the reference grid) searched for the best match.
_SIGMA_MAX = 6.0
_GRID = 13
_GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class SquirrelResult:
    """Outcome of :func:`resolution_scaled_error`.

    Attributes
    ----------
    error_map : numpy.ndarray
        ``|reference - (gain * blur(image) + offset)|`` on the reference grid.
    rse : float
        Resolution-scaled error: root-mean-square of the error map, in the
        reference's intensity units.
    rsp : float
        Resolution-scaled Pearson correlation of the reference and the
        blurred image, in [-1, 1].
    sigma : float
        Gaussian blur (standard deviation, reference pixels) that best maps
        the image to the reference; 0 when no blur helps.
    gain, offset : float
        Intensity mapping applied after the blur.
    """

    error_map: np.ndarray
    rse: float
    rsp: float
    sigma: float
    gain: float
    offset: float


def _as_finite(x: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise MicrosightError(f"{name} must be a real-valued numeric array, got dtype {arr.dtype}.")
    arr = np.squeeze(arr).astype(np.float64, copy=False)
    if arr.ndim not in (2, 3) or min(arr.shape) < 2:
        raise MicrosightError(f"{name} must be a 2D or 3D image, got shape {np.shape(x)}.")
    if not np.all(np.isfinite(arr)):
        raise MicrosightError(f"{name} contains NaN or Inf values.")
    return arr


def _downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Block means of ``factor`` pixels along every axis (crops a ragged edge)."""
    if factor == 1:
        return image
    shape = tuple(s // factor for s in image.shape)
    crop = image[tuple(slice(0, s * factor) for s in shape)]
    split = [d for s in shape for d in (s, factor)]
    return crop.reshape(split).mean(axis=tuple(range(1, 2 * len(shape), 2)))


def _scale_factor(reference: np.ndarray, image: np.ndarray) -> int:
    ratios = {i / r for i, r in zip(image.shape, reference.shape, strict=True)}
    if len(ratios) != 1 or not float(next(iter(ratios))).is_integer():
        raise MicrosightError(
            f"the image {image.shape} must be the reference {reference.shape} or an integer "
            "multiple of it along every axis (super-resolution)."
        )
    return int(next(iter(ratios)))


class _Fit:
    """Least-squares gain/offset and error of the blurred image, per blur width."""

    def __init__(self, reference: np.ndarray, image: np.ndarray, factor: int):
        self.reference, self.image, self.factor = reference, image, factor
        self.cache: dict[float, tuple[float, float, float, np.ndarray]] = {}

    def __call__(self, sigma: float) -> tuple[float, float, float, np.ndarray]:
        sigma = float(sigma)
        if sigma not in self.cache:
            # Blur on the image's own grid (sigma in reference pixels), then bin.
            blurred = (
                self.image
                if sigma <= 0
                else ndimage.gaussian_filter(self.image, sigma * self.factor, mode="reflect")
            )
            scaled = _downscale(blurred, self.factor)
            x, y = scaled.ravel(), self.reference.ravel()
            xc = x - x.mean()
            var = float(xc @ xc)
            gain = float(xc @ (y - y.mean())) / var if var > 0 else 0.0
            offset = float(y.mean() - gain * x.mean())
            mapped = gain * scaled + offset
            rse = float(np.sqrt(np.mean((self.reference - mapped) ** 2)))
            self.cache[sigma] = (rse, gain, offset, scaled)
        return self.cache[sigma]


def _best_sigma(fit: _Fit, sigma_max: float) -> float:
    """Grid search over [0, sigma_max], then golden-section refinement around the best."""
    grid = np.linspace(0.0, sigma_max, _GRID)
    errors = [fit(s)[0] for s in grid]
    i = int(np.argmin(errors))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    a, b = lo + (1 - _GOLDEN) * (hi - lo), lo + _GOLDEN * (hi - lo)
    for _ in range(12):
        if fit(a)[0] <= fit(b)[0]:
            hi, b = b, a
            a = lo + (1 - _GOLDEN) * (hi - lo)
        else:
            lo, a = a, b
            b = lo + _GOLDEN * (hi - lo)
    candidates = [float(grid[i]), float(a), float(b)]
    return min(candidates, key=lambda s: fit(s)[0])


def resolution_scaled_error(
    reference: ArrayLike,
    image: ArrayLike,
    *,
    sigma: float | None = None,
    sigma_max: float = _SIGMA_MAX,
) -> SquirrelResult:
    """Resolution-scaled error map, RSE and RSP of ``image`` against ``reference``.

    Parameters
    ----------
    reference : array_like
        The reference (ground truth, or the raw diffraction-limited image),
        2D or 3D.
    image : array_like
        The image to check: same shape as ``reference``, or an integer
        multiple of it along every axis (super-resolved); it is blurred,
        binned to the reference grid and mapped by gain and offset.
    sigma : float, optional
        Blur width in reference pixels; estimated (minimum RSE) when omitted.
    sigma_max : float, default 6.0
        Largest blur width searched.

    Returns
    -------
    SquirrelResult
        Error map, RSE, RSP, blur width, gain and offset.

    Raises
    ------
    MicrosightError
        For non-finite or incompatible images or a negative blur width.
    """
    ref = _as_finite(reference, "reference")
    img = _as_finite(image, "image")
    if img.ndim != ref.ndim:
        raise MicrosightError(f"image {img.shape} and reference {ref.shape} differ in dimensions.")
    fit = _Fit(ref, img, _scale_factor(ref, img))
    if sigma is None:
        sigma = _best_sigma(fit, float(sigma_max))
    elif not (math.isfinite(sigma) and sigma >= 0):
        raise MicrosightError(f"sigma must be a non-negative number, got {sigma}.")
    rse, gain, offset, scaled = fit(sigma)
    mapped = gain * scaled + offset
    return SquirrelResult(
        error_map=np.abs(ref - mapped),
        rse=rse,
        rsp=_pearson(ref, scaled),
        sigma=float(sigma),
        gain=gain,
        offset=offset,
    )


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ac, bc = a.ravel() - a.mean(), b.ravel() - b.mean()
    denom = math.sqrt(float(ac @ ac) * float(bc @ bc))
    return float(ac @ bc) / denom if denom > 0 else 0.0
