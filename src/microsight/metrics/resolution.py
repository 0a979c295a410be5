"""Image resolution from Fourier correlations: FRC and decorrelation analysis.

Two estimates, both pure numpy:

* **Fourier ring correlation** (FRC; Saxton & Baumeister 1982, Nieuwenhuizen
  et al. 2013 for localization microscopy) compares two *independent*
  acquisitions of the same structure, e.g. two frames, or two images rendered
  from the odd and even halves of a localization table. The correlation of
  their spectra over rings of equal spatial frequency falls from 1 where the
  signal dominates to 0 where noise does; the resolution is the period at
  which it crosses a threshold: the fixed 1/7 or the half-bit curve of
  van Heel & Schatz (2005). In 3D the rings become shells (FSC).
* **Decorrelation analysis** (Descloux, Grussmayer & Radenovic 2019,
  *Parameter-free image resolution estimation based on decorrelation
  analysis*) needs a single image: it correlates the image spectrum with its
  phase-only (amplitude-normalised) copy, low-passed at radius ``r``. The
  correlation peaks at the highest frequency still dominated by signal;
  repeating it on high-passed copies of the image finds that cut-off even
  when the spectrum falls off smoothly.

Frequencies are in cycles per pixel (0.5 is Nyquist); resolutions are
periods, ``pixel_size / frequency``, in the unit of ``pixel_size``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from microsight.errors import MicrosightError

__all__ = [
    "decorrelation_curve",
    "decorrelation_resolution",
    "frc_curve",
    "frc_resolution",
    "half_bit_threshold",
]

# Fixed FRC threshold of the localization-microscopy literature.
ONE_SEVENTH = 1.0 / 7.0
# Share of each image side tapered by the apodization window: spectra of
# images with unequal opposite edges otherwise show a bright cross that
# correlates in both images at every frequency.
_TAPER = 0.125
# Decorrelation: radii sampled per curve, high-pass filters per pass, and the
# smallest peak amplitude taken as signal (values from Descloux et al. 2019).
_DCORR_RADII = 50
# Rings averaged when looking for the FRC threshold crossing.
_SMOOTH = 3
_DCORR_FILTERS = 10
_DCORR_MIN_PEAK = 0.05
_DCORR_PEAK_MARGIN = 1e-3


def _as_real_image(x: ArrayLike, name: str) -> np.ndarray:
    """Return ``x`` as a finite float64 2D or 3D array, or raise a one-line error."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise MicrosightError(f"{name} must be a real-valued numeric array, got dtype {arr.dtype}.")
    arr = np.squeeze(arr.astype(np.float64, copy=False))
    if arr.ndim not in (2, 3):
        raise MicrosightError(
            f"{name} must be a 2D or 3D image (singleton axes are dropped), got shape {arr.shape}."
        )
    if min(arr.shape) < 8:
        raise MicrosightError(f"{name} is too small for a Fourier estimate: shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise MicrosightError(f"{name} contains NaN or Inf values.")
    return arr


def _tukey(n: int, share: float = _TAPER) -> np.ndarray:
    """1D Tukey window: flat in the middle, cosine tapers of ``share * n`` at both ends."""
    w = np.ones(n)
    m = max(1, int(round(share * n)))
    ramp = 0.5 * (1 - np.cos(np.pi * (np.arange(m) + 0.5) / m))
    w[:m] = ramp
    w[n - m :] = ramp[::-1]
    return w


def _apodize(img: np.ndarray) -> np.ndarray:
    """Subtract the mean and taper the edges so the image is periodic for the FFT."""
    window = np.ones(img.shape)
    for axis, n in enumerate(img.shape):
        shape = [1] * img.ndim
        shape[axis] = n
        window = window * _tukey(n).reshape(shape)
    return (img - img.mean()) * window


def _radius(shape: tuple[int, ...]) -> np.ndarray:
    """Spatial frequency (cycles/pixel) of every element of an FFT of ``shape``."""
    grids = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    return np.sqrt(sum(g * g for g in grids))


def _ring_sums(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-ring cross power, powers and pixel counts of the spectra of ``a`` and ``b``."""
    fa = np.fft.fftn(_apodize(a))
    fb = np.fft.fftn(_apodize(b))
    # Rings one frequency step of the shortest side wide, so every ring is
    # sampled along every axis.
    n = min(a.shape)
    ring = np.rint(_radius(a.shape) * n).astype(np.int64).ravel()
    nbins = n // 2 + 1
    keep = ring < nbins
    ring = ring[keep]

    def per_ring(values: np.ndarray) -> np.ndarray:
        return np.bincount(ring, weights=values.ravel()[keep], minlength=nbins)

    cross = per_ring(np.real(fa * np.conj(fb)))
    power_a = per_ring(np.abs(fa) ** 2)
    power_b = per_ring(np.abs(fb) ** 2)
    counts = np.bincount(ring, minlength=nbins).astype(np.float64)
    freq = np.arange(nbins) / n
    # Ring 0 is the (removed) mean: no information.
    return freq[1:], cross[1:], power_a[1:], power_b[1:], counts[1:]


def _check_pair(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    arr_a = _as_real_image(a, "first image")
    arr_b = _as_real_image(b, "second image")
    if arr_a.shape != arr_b.shape:
        raise MicrosightError(
            f"FRC needs two images of equal shape, got {arr_a.shape} and {arr_b.shape}."
        )
    return arr_a, arr_b


def frc_curve(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Fourier ring (2D) or shell (3D) correlation of two independent images.

    Parameters
    ----------
    a, b : array_like
        Two images of the same structure with independent noise (two frames,
        or renderings of two halves of a localization table), equal shape.
        The mean is removed and the edges are tapered before the transform.

    Returns
    -------
    frequencies : numpy.ndarray
        Ring centres in cycles per pixel, from ``1/n`` to Nyquist (0.5), where
        ``n`` is the shortest side.
    correlation : numpy.ndarray
        Normalised cross-correlation of the two spectra on each ring, in
        [-1, 1]; 1 where the images agree, near 0 where noise dominates.

    Raises
    ------
    MicrosightError
        If the images differ in shape, are not 2D/3D, are tiny or not finite.
    """
    arr_a, arr_b = _check_pair(a, b)
    freq, cross, power_a, power_b, _ = _ring_sums(arr_a, arr_b)
    denom = np.sqrt(power_a * power_b)
    corr = np.divide(cross, denom, out=np.zeros_like(cross), where=denom > 0)
    return freq, corr


def half_bit_threshold(counts: ArrayLike) -> np.ndarray:
    """Half-bit information threshold of van Heel & Schatz (2005).

    Parameters
    ----------
    counts : array_like
        Number of Fourier pixels (voxels) in each ring (shell).

    Returns
    -------
    numpy.ndarray
        The threshold per ring: high for small rings, tending to about 0.17.
    """
    root = np.sqrt(np.maximum(np.asarray(counts, dtype=np.float64), 1.0))
    return (0.2071 + 1.9102 / root) / (1.2071 + 0.9102 / root)


def _first_crossing(freq: np.ndarray, values: np.ndarray, threshold: np.ndarray) -> float | None:
    """Frequency where ``values`` first drops below ``threshold`` (linear interpolation)."""
    below = np.flatnonzero(values < threshold)
    if below.size == 0:
        return None
    i = int(below[0])
    if i == 0:
        return float(freq[0])
    # Interpolate the difference curve between the last ring above and the first below.
    d0 = values[i - 1] - threshold[i - 1]
    d1 = values[i] - threshold[i]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(freq[i - 1] + t * (freq[i] - freq[i - 1]))


def _smooth(values: np.ndarray) -> np.ndarray:
    """Mean over each ring and its two neighbours.

    The innermost rings hold a handful of pixels, so their correlation is
    noisy; without smoothing a single low ring ends the curve early.
    """
    kernel = np.ones(_SMOOTH)
    total = np.convolve(values, kernel, mode="same")
    count = np.convolve(np.ones_like(values), kernel, mode="same")
    return total / count


def frc_resolution(
    a: ArrayLike,
    b: ArrayLike,
    *,
    threshold: float | str = ONE_SEVENTH,
    pixel_size: float = 1.0,
) -> float:
    """Resolution at which the Fourier ring correlation of two images crosses a threshold.

    Parameters
    ----------
    a, b : array_like
        Two independent images of the same structure (see :func:`frc_curve`).
    threshold : float or {"half-bit"}, default 1/7
        A fixed correlation threshold, or ``"half-bit"`` for the threshold
        curve that depends on the number of pixels per ring.
    pixel_size : float, default 1.0
        Pixel size; the result is in its unit (1.0 gives pixels).

    Returns
    -------
    float
        The period ``pixel_size / f`` at the first frequency ``f`` where the
        correlation, averaged over three neighbouring rings, falls below the
        threshold. If it never does, the images
        agree up to Nyquist and the sampling limit ``2 * pixel_size`` is
        returned.

    Raises
    ------
    MicrosightError
        For invalid images, a threshold outside (0, 1) or a non-positive
        pixel size.
    """
    arr_a, arr_b = _check_pair(a, b)
    _check_pixel_size(pixel_size)
    freq, cross, power_a, power_b, counts = _ring_sums(arr_a, arr_b)
    denom = np.sqrt(power_a * power_b)
    corr = np.divide(cross, denom, out=np.zeros_like(cross), where=denom > 0)
    if isinstance(threshold, str):
        if threshold.lower().replace("_", "-") != "half-bit":
            raise MicrosightError(
                f"unknown FRC threshold {threshold!r}; use a number in (0, 1) or 'half-bit'."
            )
        curve = half_bit_threshold(counts)
    else:
        if not 0 < float(threshold) < 1:
            raise MicrosightError(f"FRC threshold must lie in (0, 1), got {threshold}.")
        curve = np.full_like(corr, float(threshold))
    crossing = _first_crossing(freq, _smooth(corr), curve)
    if crossing is None:
        return 2.0 * float(pixel_size)
    return float(pixel_size) / crossing


def _check_pixel_size(pixel_size: float) -> None:
    if not (math.isfinite(pixel_size) and pixel_size > 0):
        raise MicrosightError(f"pixel_size must be a positive number, got {pixel_size}.")


class _Decorrelation:
    """Spectra of one image, sorted by radius, for fast decorrelation curves.

    Radii are normalised so 1 is Nyquist along the shortest side, as in
    Descloux et al.; only the disk of radius 1 is analysed.
    """

    def __init__(self, image: np.ndarray) -> None:
        n = min(image.shape)
        radius = (_radius(image.shape) * 2.0).ravel()
        spectrum = np.fft.fftn(_apodize(image)).ravel()
        inside = radius < 1.0
        order = np.argsort(radius[inside], kind="stable")
        self.radius = radius[inside][order]
        self.spectrum = spectrum[inside][order]
        amplitude = np.abs(self.spectrum)
        # Phase-only copy: each frequency with unit weight.
        self.phase = np.divide(
            self.spectrum, amplitude, out=np.zeros_like(self.spectrum), where=amplitude > 0
        )
        self.phase_count = np.cumsum(amplitude > 0)
        self.min_step = 2.0 / n

    def curve(self, radii: np.ndarray, highpass_sigma: float | None = None) -> np.ndarray:
        """Decorrelation d(r) of the (optionally Gaussian high-passed) spectrum."""
        spec = self.spectrum
        if highpass_sigma is not None:
            spec = spec * (1.0 - np.exp(-2.0 * highpass_sigma**2 * self.radius**2))
        energy = float(np.sqrt(np.sum(np.abs(spec) ** 2)))
        if energy == 0:
            return np.zeros(len(radii))
        cross = np.cumsum(np.real(spec * np.conj(self.phase)))
        # Number of samples strictly inside each radius.
        idx = np.searchsorted(self.radius, radii, side="left")
        d = np.zeros(len(radii))
        has = idx > 0
        count = self.phase_count[idx[has] - 1]
        d[has] = cross[idx[has] - 1] / (energy * np.sqrt(np.maximum(count, 1)))
        return d


def _peak(d: np.ndarray) -> tuple[int, float]:
    """Index and height of the decorrelation maximum, ignoring a rise to the last radius.

    A maximum at the last sampled radius is no peak (the curve may still be
    rising); it is discarded unless it stands clearly above what follows.
    """
    t = d.copy()
    i = int(np.argmax(t))
    while i == len(t) - 1:
        t = t[:-1]
        if t.size == 0:
            return 0, 0.0
        i = int(np.argmax(t))
        if t[i] - d[i:].min() > _DCORR_PEAK_MARGIN:
            break
        t[i] = d[i:].min()
        i = len(t) - 1
    return i, float(t[i])


def decorrelation_curve(
    image: ArrayLike, *, radii: int = _DCORR_RADII
) -> tuple[np.ndarray, np.ndarray]:
    """Decorrelation function of one image (no high-pass filtering).

    Parameters
    ----------
    image : array_like
        A 2D or 3D image.
    radii : int, default 50
        Number of low-pass radii sampled between 0 and Nyquist.

    Returns
    -------
    frequencies : numpy.ndarray
        Low-pass radius in cycles per pixel (0.5 is Nyquist).
    d : numpy.ndarray
        Correlation of the image with its low-passed phase-only copy.
    """
    dec = _Decorrelation(_as_real_image(image, "image"))
    r = np.linspace(0.0, 1.0, radii)
    return r / 2.0, dec.curve(r)


def decorrelation_resolution(
    image: ArrayLike,
    *,
    pixel_size: float = 1.0,
    radii: int = _DCORR_RADII,
    filters: int = _DCORR_FILTERS,
) -> float:
    """Single-image resolution by decorrelation analysis (Descloux et al. 2019).

    Parameters
    ----------
    image : array_like
        A 2D (or 3D) image; raw data are fine (no deconvolution or
        denoising needed, noise is what the method separates from signal).
    pixel_size : float, default 1.0
        Pixel size; the result is in its unit (1.0 gives pixels).
    radii : int, default 50
        Radii sampled per decorrelation curve.
    filters : int, default 10
        Gaussian high-pass filters per search pass.

    Returns
    -------
    float
        The period ``pixel_size / f_c`` at the estimated cut-off ``f_c``
        (cycles per pixel); ``nan`` if no curve shows a significant peak
        (e.g. pure noise or a constant image).

    Raises
    ------
    MicrosightError
        For a non-finite, tiny or non-2D/3D image or a bad pixel size.
    """
    _check_pixel_size(pixel_size)
    img = _as_real_image(image, "image")
    dec = _Decorrelation(img)
    r = np.linspace(0.0, 1.0, radii)
    i0, a0 = _peak(dec.curve(r))
    peaks: list[tuple[float, float]] = [(float(r[i0]), a0)]
    # High-pass widths (in pixels of the normalised radius's inverse) from
    # the image scale down to the unfiltered peak's scale, log-spaced.
    widest = 2.0 / r[i0] if r[i0] > 0 else max(img.shape) / 2.0
    sigmas = np.concatenate(
        [[min(img.shape) / 4.0], np.exp(np.linspace(np.log(widest), np.log(0.15), filters))]
    )
    # A coarse pass locates the filter width giving the highest cut-off; a
    # finer pass around it (filter widths and radii) measures that cut-off.
    found = _search(dec, r, sigmas)
    best = len(found) - 1 - int(np.argmax([k for k, _ in found][::-1]))
    lo_s = sigmas[max(best - 1, 0)]
    hi_s = sigmas[min(best + 1, len(sigmas) - 1)]
    k_best = found[best][0]
    r_fine = np.linspace(max(k_best - (r[1] - r[0]), 0.0), min(k_best + 0.4, 1.0), radii)
    peaks += _search(dec, r_fine, np.exp(np.linspace(np.log(lo_s), np.log(hi_s), filters)))
    cutoffs = [k for k, amp in peaks if amp >= _DCORR_MIN_PEAK and k > 0]
    if not cutoffs:
        return math.nan
    # Normalised radius 1 is Nyquist (0.5 cycles/pixel): period = 2 / k pixels.
    return 2.0 * float(pixel_size) / max(cutoffs)


def _search(dec: _Decorrelation, r: np.ndarray, sigmas: np.ndarray) -> list[tuple[float, float]]:
    """Peak position and height of the decorrelation curve for each high-pass width."""
    out = []
    for sigma in sigmas:
        i, amp = _peak(dec.curve(r, float(sigma)))
        out.append((float(r[i]), amp))
    return out
