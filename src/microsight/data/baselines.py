"""Classical baselines every evaluation compares a network with (numpy, scipy, scikit-image).

Restoration: Gaussian smoothing, non-local means, Richardson-Lucy
deconvolution and the noise level they need; segmentation: Otsu threshold +
distance-transform watershed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

Baseline = Callable[[np.ndarray], np.ndarray]


def gaussian_baseline(sigma: float = 1.0) -> Baseline:
    """Gaussian smoothing of each channel over the spatial axes."""

    def smooth(item: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(item, sigma=(0,) + (sigma,) * (item.ndim - 1))

    return smooth


def noise_sigma(image: np.ndarray) -> float:
    """Gaussian noise level of an image (Immerkaer 1996), averaged over 2D planes.

    Filters each plane with a kernel that cancels smooth structure and takes the
    mean absolute response, which is robust and needs no wavelet package.
    """
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    planes = image.reshape(-1, *image.shape[-2:]).astype(np.float64)
    sigmas = []
    for plane in planes:
        response = ndimage.convolve(plane, kernel)[1:-1, 1:-1]
        sigmas.append(np.sqrt(np.pi / 2) * np.abs(response).mean() / 6)
    return float(np.mean(sigmas))


def nlm_baseline() -> Baseline:
    """Non-local means (Buades et al. 2005) with the noise level estimated per channel."""
    from skimage.restoration import denoise_nl_means

    def denoise(item: np.ndarray) -> np.ndarray:
        out = np.empty_like(item, dtype=np.float32)
        for c, channel in enumerate(item):
            sigma = noise_sigma(channel)
            out[c] = denoise_nl_means(channel, h=0.8 * sigma, sigma=sigma, patch_size=5,
                                      patch_distance=6, fast_mode=True)
        return out

    return denoise


def richardson_lucy_baseline(psf_sigma: float = 1.0, iterations: int = 10) -> Baseline:
    """Richardson-Lucy deconvolution with a Gaussian PSF of ``psf_sigma`` pixels."""
    from skimage.restoration import richardson_lucy

    def deconvolve(item: np.ndarray) -> np.ndarray:
        out = np.empty_like(item, dtype=np.float32)
        radius = max(1, int(np.ceil(3 * psf_sigma)))
        for c, channel in enumerate(item):
            delta = np.zeros((2 * radius + 1,) * channel.ndim, np.float32)
            delta[(radius,) * channel.ndim] = 1
            psf = ndimage.gaussian_filter(delta, psf_sigma)
            # RL needs non-negative data; scale to [0, 1] and back.
            lo, hi = float(channel.min()), float(channel.max())
            scaled = (channel - lo) / max(hi - lo, 1e-12)
            out[c] = richardson_lucy(scaled, psf / psf.sum(), num_iter=iterations,
                                     clip=False) * (hi - lo) + lo
        return out

    return deconvolve


def classical_instances(item: np.ndarray, *, sigma: float = 1.0, min_distance: int = 4,
                        min_size: int = 8) -> np.ndarray:
    """Otsu threshold + distance transform + marker watershed (classical baseline).

    Channels are averaged, the image is smoothed, foreground is the bright side
    of Otsu's threshold (holes filled, small specks removed), and seeds are the
    maxima of the smoothed distance transform at least ``min_distance`` apart.

    Parameters
    ----------
    item : numpy.ndarray
        ``(C, Y, X)`` or ``(C, Z, Y, X)`` image.

    Returns
    -------
    numpy.ndarray
        int32 label image.
    """
    from skimage.feature import peak_local_max
    from skimage.filters import threshold_otsu
    from skimage.segmentation import watershed

    img = np.asarray(item, np.float32).mean(axis=0)
    if sigma > 0:
        img = ndimage.gaussian_filter(img, sigma)
    if img.max() <= img.min():
        return np.zeros(img.shape, np.int32)
    fg = ndimage.binary_fill_holes(img > threshold_otsu(img))
    fg = ndimage.binary_opening(fg, iterations=1)
    dist = ndimage.gaussian_filter(ndimage.distance_transform_edt(fg), 1.0)
    peaks = peak_local_max(dist, min_distance=min_distance, labels=ndimage.label(fg)[0],
                           exclude_border=False)
    markers = np.zeros(img.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-dist, markers, mask=fg).astype(np.int32)
    if min_size > 0 and labels.max() > 0:
        area = np.bincount(labels.ravel())
        labels[area[labels] < min_size] = 0
    return labels
