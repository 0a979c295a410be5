"""Label images: integer masks where 0 is background and each object has its own id.

Labels are always ``YX`` or ``ZYX``. On disk they are stored as the smallest
unsigned type that holds them (uint16, else uint32); in memory they are int32
(int64 when the ids need it), so that arithmetic on ids never wraps around.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from microsight.axes import transpose_to, validate_axes
from microsight.errors import MicrosightError
from microsight.io.image import require_format
from microsight.io.readers import read_raw, unknown_axes_error
from microsight.io.writers import write_image

_INT32_MAX = int(np.iinfo(np.int32).max)
_INT64_MAX = int(np.iinfo(np.int64).max)


def _check_values(labels: np.ndarray, name: str) -> np.ndarray:
    """Return ``labels`` if it holds only whole numbers >= 0, else raise."""
    if labels.dtype == bool:
        return labels.astype(np.uint8)
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)):
            raise MicrosightError(f"{name}: labels contain NaN or infinity; save integer labels")
        if np.any(labels != np.round(labels)):
            raise MicrosightError(
                f"{name}: labels must be whole numbers but this float image has fractions; "
                "is it a probability map? Save integer labels (0 = background)"
            )
    elif labels.dtype.kind not in "iu":
        raise MicrosightError(f"{name}: labels must be integers, not {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise MicrosightError(
            f"{name}: labels must be >= 0 (0 = background) but the smallest is {labels.min()}"
        )
    return labels


def _label_axes(axes: str | None, shape: tuple[int, ...], path: Path) -> str:
    if axes is None:
        # A label image is YX or ZYX by definition, so a 3D array without
        # metadata can only be ZYX.
        if len(shape) == 2:
            return "YX"
        if len(shape) == 3:
            return "ZYX"
        raise unknown_axes_error(path, shape)
    return axes


def read_labels(path: str | Path) -> np.ndarray:
    """Read a label image as integers.

    Parameters
    ----------
    path : str or Path
        Any image file :func:`read_image` reads. Size-1 axes other than Z, Y,
        X (e.g. a single channel) are dropped; a 2D or 3D array without axes
        metadata is taken as YX or ZYX.

    Returns
    -------
    numpy.ndarray
        ``YX`` or ``ZYX`` labels as int32, or int64 if an id exceeds 2**31-1.

    Raises
    ------
    MicrosightError
        If the image has other axes longer than 1, fractional or negative
        values, or cannot be read.
    """
    path = Path(path)
    data, axes, _ = read_raw(path)
    arr = np.asarray(data[(slice(None),) * data.ndim])
    axes = _label_axes(axes, arr.shape, path)
    target = "".join(a for a in "ZYX" if a in axes)
    extra = [f"{a}={n}" for a, n in zip(axes, arr.shape, strict=True) if a not in "ZYX" and n > 1]
    if extra:
        raise MicrosightError(
            f"{path.name}: labels must be YX or ZYX but this image has axes {axes} "
            f"({', '.join(extra)}); save one label image per file"
        )
    arr = _check_values(transpose_to(arr, axes, target), path.name)
    top = int(arr.max()) if arr.size else 0
    if top > _INT64_MAX:
        raise MicrosightError(f"{path.name}: label id {top} is too large (max {_INT64_MAX})")
    return arr.astype(np.int32 if top <= _INT32_MAX else np.int64)


def write_labels(path: str | Path, labels: np.ndarray, axes: str | None = None) -> Path:
    """Write a label image atomically as uint16 (uint32 if an id is >= 65536).

    Parameters
    ----------
    path : str or Path
        ``.tif``/``.ome.tif`` (OME-TIFF), ``.zarr`` (OME-Zarr) or ``.png``
        (2D, uint16 only). JPEG is refused: its compression changes ids.
    labels : numpy.ndarray
        Integer-valued array, 0 = background.
    axes : str, optional
        Axes string; default ``YX`` for 2D and ``ZYX`` for 3D.

    Returns
    -------
    Path
        The written path.
    """
    path = Path(path)
    fmt = require_format(path)
    if fmt == "jpeg":
        raise MicrosightError(
            f"{path.name}: JPEG compression would change label ids; write .png or .tif"
        )
    labels = _check_values(np.asarray(labels), path.name)
    axes = validate_axes(_label_axes(axes, labels.shape, path), labels.ndim, name=path.name)
    top = int(labels.max()) if labels.size else 0
    if top < 2**16:
        dtype = np.uint16
    elif top < 2**32 and fmt != "png":
        dtype = np.uint32
    else:
        limit = "65535 in PNG; write .tif" if fmt == "png" else "4294967295"
        raise MicrosightError(f"{path.name}: label id {top} is too large (max {limit})")
    return write_image(path, labels.astype(dtype), axes)
