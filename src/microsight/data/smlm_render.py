"""Rendering localization tables to images, and lateral drift correction.

Renderings use a grid of ``pixel_size`` nm with the origin at the image's
top-left corner (as the tables do). Drift is estimated by cross-correlating
renderings of consecutive blocks of frames with the first block; the
per-block shifts are interpolated over frames and subtracted.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from microsight.errors import MicrosightError


def _grid_shape(shape_nm: tuple[float, float], pixel_size: float) -> tuple[int, int]:
    return (max(1, int(np.ceil(shape_nm[0] / pixel_size))),
            max(1, int(np.ceil(shape_nm[1] / pixel_size))))


def render_histogram(table: np.ndarray, shape_nm: tuple[float, float], pixel_size: float, *,
                     weights: str | None = None) -> np.ndarray:
    """Histogram rendering: localizations (or their ``weights`` column) per pixel.

    Parameters
    ----------
    table : numpy.ndarray
        Localization table (nm).
    shape_nm : tuple of float
        Field of view ``(height, width)`` in nm.
    pixel_size : float
        Rendering pixel size (nm).
    weights : str, optional
        Column to sum instead of counting (e.g. ``"photons"``).

    Returns
    -------
    numpy.ndarray
        ``(Y, X)`` float32 image.
    """
    if pixel_size <= 0:
        raise MicrosightError(f"rendering pixel size must be positive, got {pixel_size}")
    h, w = _grid_shape(shape_nm, pixel_size)
    iy = np.floor(table["y"] / pixel_size).astype(np.int64)
    ix = np.floor(table["x"] / pixel_size).astype(np.int64)
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    vals = None if weights is None else np.asarray(table[weights], np.float64)[ok]
    img = np.bincount(iy[ok] * w + ix[ok], weights=vals, minlength=h * w)
    return img.reshape(h, w).astype(np.float32)


def render_gaussian(table: np.ndarray, shape_nm: tuple[float, float], pixel_size: float, *,
                    sigma: float | None = None) -> np.ndarray:
    """Gaussian rendering: every localization a normalized Gaussian blob.

    Parameters
    ----------
    table : numpy.ndarray
        Localization table (nm).
    shape_nm : tuple of float
        Field of view ``(height, width)`` in nm.
    pixel_size : float
        Rendering pixel size (nm).
    sigma : float, optional
        Blob width (nm); default: the median localization uncertainty of the
        table (``sigma_x``), or one rendering pixel when unknown.

    Returns
    -------
    numpy.ndarray
        ``(Y, X)`` float32 image whose sum is the number of localizations inside.
    """
    if sigma is None:
        known = table["sigma_x"][np.isfinite(table["sigma_x"])] if len(table) else []
        sigma = float(np.median(known)) if len(known) else pixel_size
    hist = render_histogram(table, shape_nm, pixel_size)
    # Histogram then blur: exact up to the half-pixel binning, and O(pixels) not O(points).
    return ndimage.gaussian_filter(hist, max(sigma / pixel_size, 1e-3), mode="constant")


def _peak(corr: np.ndarray) -> np.ndarray:
    """Sub-pixel ``(dy, dx)`` of the maximum of a centred correlation (parabola fit)."""
    iy, ix = np.unravel_index(np.argmax(corr), corr.shape)
    out = []
    for axis, i in ((0, iy), (1, ix)):
        n = corr.shape[axis]
        if 0 < i < n - 1:
            idx = [iy, ix]
            idx[axis] = i - 1
            a = corr[tuple(idx)]
            idx[axis] = i + 1
            c = corr[tuple(idx)]
            b = corr[iy, ix]
            denom = a - 2 * b + c
            frac = 0.5 * (a - c) / denom if denom != 0 else 0.0
        else:
            frac = 0.0
        out.append(i + frac - n // 2)
    return np.asarray(out)


def estimate_drift(table: np.ndarray, shape_nm: tuple[float, float], *, blocks: int = 10,
                   pixel_size: float = 20.0, smooth: float = 30.0) -> np.ndarray:
    """Lateral drift per frame ``(frames, 2)`` as ``(dx, dy)`` nm, by cross-correlation.

    Parameters
    ----------
    table : numpy.ndarray
        Localization table (nm).
    shape_nm : tuple of float
        Field of view ``(height, width)`` in nm.
    blocks : int
        Number of sub-movies (consecutive frame blocks) correlated with the first.
    pixel_size : float
        Rendering pixel size of the correlation (nm).
    smooth : float
        Gaussian blur of the renderings (nm); makes the correlation peak smooth.

    Returns
    -------
    numpy.ndarray
        Drift of every frame ``0 .. max frame`` relative to the first block.
    """
    n_frames = int(table["frame"].max()) + 1 if len(table) else 0
    if n_frames < 2 or blocks < 2:
        return np.zeros((n_frames, 2))
    edges = np.linspace(0, n_frames, blocks + 1)
    images = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        part = table[(table["frame"] >= lo) & (table["frame"] < hi)]
        images.append(render_gaussian(part, shape_nm, pixel_size, sigma=smooth))
    ref = np.fft.rfft2(images[0] - images[0].mean())
    shifts = [np.zeros(2)]
    for img in images[1:]:
        spec = np.fft.rfft2(img - img.mean())
        corr = np.fft.fftshift(np.fft.irfft2(spec * np.conj(ref), s=img.shape))
        dy, dx = _peak(corr)
        shifts.append(np.array([dx, dy]) * pixel_size)
    centres = (edges[:-1] + edges[1:]) / 2 - 0.5
    frames = np.arange(n_frames)
    shifts = np.asarray(shifts)
    # The first block is the reference: its centre has zero drift by definition.
    drift = np.stack([np.interp(frames, centres, shifts[:, k]) for k in range(2)], 1)
    return drift


def correct_drift(table: np.ndarray, drift: np.ndarray) -> np.ndarray:
    """A copy of ``table`` with the per-frame drift ``(dx, dy)`` subtracted."""
    out = table.copy()
    frames = np.clip(out["frame"], 0, len(drift) - 1)
    out["x"] -= drift[frames, 0]
    out["y"] -= drift[frames, 1]
    return out
