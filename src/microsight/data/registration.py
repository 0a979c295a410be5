"""Is the target registered to the input? Shift estimation between modalities.

Label-free training assumes that every fluorescence pixel lies exactly under
its transmitted-light pixel; a stage or camera offset of a few pixels
silently blurs everything the network learns. Phase contrast and
fluorescence share no intensity relation (a nucleus is dark, bright or
haloed in phase, bright in DAPI), so correlating raw intensities finds
nothing reliable. Both images, however, have *edges* in the same places:
the gradient magnitude of a lightly smoothed image is a contrast-free
structure map, and phase correlation of two structure maps (with a Hann
window against wrap-around edges) recovers their offset with sub-pixel
precision (``skimage.registration.phase_cross_correlation``).

Numpy, scipy and scikit-image only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# Structure maps are computed on images at most this big per axis (strided).
MAX_SIDE = 1024


def structure_map(image: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Contrast-free edge map: Gaussian gradient magnitude, standardized.

    Parameters
    ----------
    image : numpy.ndarray
        One channel, 2D or 3D.
    sigma : float
        Smoothing in pixels before the gradient (suppresses noise and the
        fine ringing of phase-contrast halos).

    Returns
    -------
    numpy.ndarray
        float64 map with zero mean and unit variance.
    """
    img = np.asarray(image, np.float64)
    lo, hi = np.percentile(img, [1, 99.8])
    img = np.clip((img - lo) / max(hi - lo, 1e-12), 0, 1)
    grad = ndimage.gaussian_gradient_magnitude(img, sigma)
    std = grad.std()
    return (grad - grad.mean()) / (std if std > 0 else 1.0)


def _step(shape: tuple[int, ...]) -> int:
    return max(1, int(np.ceil(max(shape) / MAX_SIDE)))


def shift_between_maps(reference: np.ndarray, moving: np.ndarray, *, upsample: int = 10
                       ) -> np.ndarray:
    """Phase-correlation shift between two structure maps of equal shape (Hann-windowed)."""
    from skimage.filters import window
    from skimage.registration import phase_cross_correlation

    if reference.shape != moving.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {moving.shape}")
    hann = window("hann", reference.shape)
    shift, _, _ = phase_cross_correlation(reference * hann, moving * hann,
                                          upsample_factor=upsample, normalization=None)
    return np.asarray(shift, np.float64)


def estimate_shift(reference: np.ndarray, moving: np.ndarray, *, sigma: float = 2.0,
                   upsample: int = 10) -> np.ndarray:
    """Shift (pixels, per axis) that registers ``moving`` onto ``reference``.

    Parameters
    ----------
    reference, moving : numpy.ndarray
        Single-channel images of equal shape (2D or 3D), of any modality.
    sigma : float
        Smoothing of the structure maps (see :func:`structure_map`).
    upsample : int
        Sub-pixel precision 1 / ``upsample``.

    Returns
    -------
    numpy.ndarray
        ``shift`` such that ``scipy.ndimage.shift(moving, shift)`` lines up with
        ``reference`` (scikit-image convention).
    """
    reference = np.asarray(reference)
    moving = np.asarray(moving)
    if reference.shape != moving.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {moving.shape}")
    step = _step(reference.shape)
    sl = (slice(None, None, step),) * reference.ndim
    return shift_between_maps(structure_map(reference[sl], sigma),
                              structure_map(moving[sl], sigma), upsample=upsample) * step


@dataclass
class RegistrationCheck:
    """Result of :func:`check_registration` for one target channel.

    ``shift`` registers the target onto the input (scikit-image convention);
    ``reliable`` says whether the two halves of the image agreed on it (within
    the tolerance), and ``misaligned`` is only set for reliable shifts.
    """

    channel: int
    shift: tuple[float, ...]
    misaligned: bool
    reliable: bool = True

    @property
    def distance(self) -> float:
        """Length of the shift in pixels."""
        return float(np.linalg.norm(self.shift))


def _halves(shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """The two halves of ``shape`` along its longest axis."""
    axis = int(np.argmax(shape))
    mid = shape[axis] // 2
    full = [slice(None)] * len(shape)
    first, second = list(full), list(full)
    first[axis], second[axis] = slice(0, mid), slice(mid, None)
    return [tuple(first), tuple(second)]


def check_registration(inputs: np.ndarray, targets: np.ndarray, *, tolerance: float = 2.0,
                       sigma: float = 2.0) -> list[RegistrationCheck]:
    """Estimate the shift between the inputs and every target channel of one item.

    The shift is estimated on the whole image and, as a consistency check, on
    each half along the longest axis: on small or sparse images phase
    correlation of cross-modal structure can lock onto a wrong peak, and two
    halves that disagree reveal it.

    Parameters
    ----------
    inputs, targets : numpy.ndarray
        Channels-first items ``(C, ...)`` with equal spatial shapes; the input
        channels (e.g. planes of a transmitted-light stack) are averaged after
        computing their structure maps.
    tolerance : float
        Shifts longer than this (pixels) count as misaligned.
    sigma : float
        Smoothing of the structure maps.

    Returns
    -------
    list of RegistrationCheck
        One per target channel.
    """
    # The mean of per-plane structure maps keeps the edges every plane agrees on; the
    # structure map of the mean plane would cancel defocus halos of opposite sign.
    planes = np.asarray(inputs)
    step = _step(planes.shape[1:])
    sl = (slice(None, None, step),) * (planes.ndim - 1)
    reference = np.mean([structure_map(p[sl], sigma) for p in planes], axis=0)
    out = []
    for c, target in enumerate(np.asarray(targets)):
        moving = structure_map(target[sl], sigma)
        shift = shift_between_maps(reference, moving) * step
        parts = [shift_between_maps(reference[h], moving[h]) * step
                 for h in _halves(reference.shape)]
        reliable = bool(np.linalg.norm(parts[0] - parts[1]) <= max(tolerance, 1.0))
        shift = np.where(np.abs(shift) < 1e-9, 0.0, shift)
        out.append(RegistrationCheck(
            c, tuple(float(s) for s in shift),
            bool(reliable and np.linalg.norm(shift) > tolerance), reliable))
    return out
