"""Synthetic degradations that turn good images into training pairs (numpy/scipy only).

Two methods learn from pairs made here rather than from acquired pairs:

- **Super-resolution** (``sr`` with ``generate_pairs``): a high-resolution
  image is blurred with a Gaussian and averaged over ``factor x factor``
  blocks; the block average sits on the same pixel-area grid that
  ``torch.nn.functional.interpolate(..., align_corners=False)`` and
  ``scipy.ndimage.zoom(..., grid_mode=True)`` use to upsample it again.
- **Isotropic restoration** (``care-iso``, Weigert et al. 2017): lateral
  (XY) planes of an anisotropic stack are blurred with the axial PSF along
  one lateral axis, subsampled by the anisotropy factor along it and
  interpolated back, which mimics how the axial direction was acquired.

Resampling along an axis uses the pixel-area convention throughout
(output pixel ``k`` of ``m`` sits at input coordinate
``(k + 0.5) * n / m - 0.5``, clamped to the edge pixels), so that training
degradations and the upsampling applied at prediction line up exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def _positions(n_in: int, n_out: int) -> np.ndarray:
    """Input coordinates of ``n_out`` output pixels resampling ``n_in`` (pixel-area grid)."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    return np.clip(pos, 0, n_in - 1)


def resample_axis(array: np.ndarray, axis: int, size: int, order: int = 1) -> np.ndarray:
    """Resample ``array`` to ``size`` pixels along ``axis`` (nearest or linear).

    Parameters
    ----------
    array : numpy.ndarray
        Any array.
    axis : int
        Axis to resample.
    size : int
        New length of that axis.
    order : {0, 1}
        0: nearest neighbour; 1: linear interpolation.

    Returns
    -------
    numpy.ndarray
        Float32 array with ``array.shape[axis] == size``; the other axes unchanged.
    """
    if order not in (0, 1):
        raise ValueError(f"order must be 0 (nearest) or 1 (linear), got {order}")
    array = np.asarray(array, np.float32)
    axis = axis % array.ndim
    n = array.shape[axis]
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    if size == n:
        return array.copy()
    pos = _positions(n, size)
    if order == 0:
        return np.take(array, np.floor(pos + 0.5).astype(np.int64).clip(0, n - 1), axis=axis)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    shape = [1] * array.ndim
    shape[axis] = size
    w = (pos - lo).astype(np.float32).reshape(shape)
    return np.take(array, lo, axis=axis) * (1 - w) + np.take(array, hi, axis=axis) * w


def blur_axis(array: np.ndarray, axis: int, sigma: float) -> np.ndarray:
    """Gaussian blur of ``sigma`` pixels along one axis only (mirror boundaries)."""
    array = np.asarray(array, np.float32)
    if sigma <= 0:
        return array.copy()
    return ndimage.gaussian_filter1d(array, sigma, axis=axis, mode="reflect").astype(np.float32)


def degrade_axis(array: np.ndarray, axis: int, factor: float, sigma: float, order: int = 1
                 ) -> np.ndarray:
    """Blur along ``axis``, subsample it by ``factor`` and interpolate back to its size.

    This is the axial degradation of an anisotropic acquisition applied to a
    lateral axis: the result has the input's shape but only the information
    a ``factor`` times coarser sampling with a ``sigma`` wide PSF keeps.
    """
    n = np.asarray(array).shape[axis]
    low = resample_axis(blur_axis(array, axis, sigma), axis, max(1, round(n / factor)), 1)
    return resample_axis(low, axis, n, order)


def make_iso_pairs(
    stack: np.ndarray,
    anisotropy: float,
    psf_sigma: float,
    *,
    transpose: bool = True,
    order: int = 1,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Training pairs for isotropic restoration from the lateral planes of a stack.

    Every XY plane gives the pair (plane degraded along X, plane); with
    ``transpose`` its transpose gives a second one (so structures along
    both lateral directions are degraded). The degraded axis is always the
    *last* axis of the returned planes: at prediction the network is applied
    to XZ / YZ slices with Z last.

    Parameters
    ----------
    stack : numpy.ndarray
        ``(Z, Y, X)`` stack, or channels-first ``(C, Z, Y, X)``.
    anisotropy : float
        Axial over lateral pixel size: the subsampling factor.
    psf_sigma : float
        Sigma of the axial PSF, in lateral pixels.
    transpose : bool
        Add the transposed planes (data augmentation).
    order : {0, 1}
        Interpolation (nearest or linear) used to go back to the full size.

    Returns
    -------
    inputs, targets : list of numpy.ndarray
        Float32 planes ``(Y, X)`` (``(X, Y)`` for transposed ones), or
        ``(C, Y, X)`` for a channels-first stack.
    """
    stack = np.asarray(stack, np.float32)
    if stack.ndim not in (3, 4):
        raise ValueError(f"expected a (Z, Y, X) or (C, Z, Y, X) stack, got shape {stack.shape}")
    if anisotropy <= 1:
        raise ValueError(f"anisotropy must be above 1, got {anisotropy}")
    planes = [stack[z] for z in range(stack.shape[0])] if stack.ndim == 3 else [
        stack[:, z] for z in range(stack.shape[1])]
    if transpose:
        planes += [np.swapaxes(p, -1, -2) for p in planes]
    targets = [np.ascontiguousarray(p) for p in planes]
    inputs = [degrade_axis(p, -1, anisotropy, psf_sigma, order) for p in targets]
    return inputs, targets


def downsample(image: np.ndarray, factor: int, sigma: float) -> np.ndarray:
    """Gaussian blur then ``factor x factor`` block average over the last two axes.

    The size of the last two axes must be multiples of ``factor``
    (see :func:`crop_to_multiple`).
    """
    image = np.asarray(image, np.float32)
    *lead, y, x = image.shape
    if y % factor or x % factor:
        raise ValueError(f"image of {y}x{x} is not a multiple of the factor {factor}")
    if sigma > 0:
        sigmas = (0,) * len(lead) + (sigma, sigma)
        image = ndimage.gaussian_filter(image, sigmas, mode="reflect")
    blocks = image.reshape(*lead, y // factor, factor, x // factor, factor)
    return blocks.mean(axis=(-3, -1)).astype(np.float32)


def crop_to_multiple(image: np.ndarray, factor: int) -> np.ndarray:
    """Drop the last rows / columns so the last two axes are multiples of ``factor``."""
    y, x = image.shape[-2:]
    return image[..., : y - y % factor, : x - x % factor]


def make_sr_pairs(images: Sequence[np.ndarray], factor: int, sigma: float
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Low-/high-resolution pairs from high-resolution images.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        High-resolution images; the last two axes are Y and X (e.g. ``(C, Y, X)``).
    factor : int
        Resolution factor; targets are cropped to multiples of it.
    sigma : float
        Gaussian blur (high-resolution pixels) applied before block averaging.

    Returns
    -------
    inputs, targets : list of numpy.ndarray
        Inputs ``factor`` times smaller than the (cropped) targets in Y and X.
    """
    targets = [np.ascontiguousarray(crop_to_multiple(np.asarray(im, np.float32), factor))
               for im in images]
    return [downsample(t, factor, sigma) for t in targets], targets


def upsample_nearest(image: np.ndarray, factor: int) -> np.ndarray:
    """Repeat every pixel ``factor x factor`` times over the last two axes."""
    return np.repeat(np.repeat(np.asarray(image), factor, axis=-2), factor, axis=-1)
