"""The :class:`Image` container and the file formats microsight reads and writes.

An :class:`Image` is an array plus the two facts needed to use it correctly:
its axes string (see :mod:`microsight.axes`) and its physical pixel sizes.
The array may be lazy (a ``zarr.Array`` for OME-Zarr) so that large images are
only read region by region.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microsight.axes import validate_axes
from microsight.errors import MicrosightError

#: File suffixes (lower case) that :func:`read_image` understands.
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".tif",
    ".tiff",
    ".ome.tif",
    ".ome.tiff",
    ".png",
    ".jpg",
    ".jpeg",
    ".zarr",
    ".ome.zarr",
    ".nd2",
    ".lif",
    ".czi",
)

# Longest suffix first, so that "a.ome.tif" is matched as ".ome.tif" and not ".tif".
_SUFFIX_FORMAT: tuple[tuple[str, str], ...] = (
    (".ome.tiff", "tiff"),
    (".ome.zarr", "zarr"),
    (".ome.tif", "tiff"),
    (".tiff", "tiff"),
    (".zarr", "zarr"),
    (".jpeg", "jpeg"),
    (".tif", "tiff"),
    (".png", "png"),
    (".jpg", "jpeg"),
    (".nd2", "nd2"),
    (".lif", "lif"),
    (".czi", "czi"),
)

#: Human-readable format names used in error messages.
FORMAT_NAMES = {"tiff": "TIFF", "zarr": "OME-Zarr", "png": "PNG", "jpeg": "JPEG",
                "nd2": "Nikon ND2", "lif": "Leica LIF", "czi": "Zeiss CZI"}


def image_format(path: str | Path) -> str | None:
    """Return the format key of ``path`` (``'tiff'``, ``'zarr'``, ``'png'``, ``'jpeg'``,
    ``'nd2'``, ``'lif'``, ``'czi'``), or None.

    Parameters
    ----------
    path : str or Path
        File or directory name; only its suffix (case-insensitive) is used.

    Returns
    -------
    str or None
        The format key, or None if the suffix is not supported.
    """
    name = Path(path).name.lower()
    for suffix, fmt in _SUFFIX_FORMAT:
        if name.endswith(suffix) and len(name) > len(suffix):
            return fmt
    return None


def require_format(path: str | Path) -> str:
    """Like :func:`image_format`, but raise :class:`MicrosightError` if unsupported."""
    fmt = image_format(path)
    if fmt is None:
        raise MicrosightError(
            f"{Path(path).name}: unsupported file type; use one of "
            f"{', '.join(SUPPORTED_EXTENSIONS)}"
        )
    return fmt


def image_suffix(path: str | Path) -> str:
    """Return the image suffix as written (``cells.OME.tif`` -> ``.OME.tif``), or the last one."""
    name = Path(path).name
    return name[len(image_stem(name)):] if image_format(name) else Path(name).suffix


def image_stem(path: str | Path) -> str:
    """Return the file name without its image suffix (``cells.ome.tif`` -> ``cells``)."""
    name = Path(path).name
    lower = name.lower()
    for suffix, _ in _SUFFIX_FORMAT:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


@dataclass
class Image:
    """An image array with its axes and physical pixel sizes.

    Parameters
    ----------
    data : numpy.ndarray or zarr.Array
        The pixels. A lazy array must support ``shape``, ``dtype``, ``ndim``
        and slicing with a tuple of slices (returning numpy).
    axes : str
        Axes string with one letter from ``STCZYX`` per dimension of ``data``.
        Validated and upper-cased on construction.
    pixel_sizes : dict of str to float
        Physical size in micrometres for spatial axis letters (``Z``, ``Y``,
        ``X``) that are known; empty if unknown.
    path : Path, optional
        The file the image was read from.
    """

    data: Any
    axes: str
    pixel_sizes: dict[str, float] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        name = self.path.name if self.path is not None else "image"
        self.axes = validate_axes(self.axes, int(self.data.ndim), name=name)
        sizes = {}
        for key, value in (self.pixel_sizes or {}).items():
            letter = key.upper()
            if letter not in "ZYX":
                raise MicrosightError(
                    f"{name}: pixel size given for axis '{key}'; pixel sizes are only "
                    "for the spatial axes Z, Y, X"
                )
            # Sizes of axes the image lacks are dropped so that a Z plane cut
            # from a ZYX image can be built with the stack's pixel_sizes.
            if letter in self.axes:
                sizes[letter] = float(value)
        self.pixel_sizes = sizes
        if self.path is not None:
            self.path = Path(self.path)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the data as a tuple of ints."""
        return tuple(int(s) for s in self.data.shape)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        """Numpy dtype of the data."""
        return np.dtype(self.data.dtype)

    @property
    def name(self) -> str:
        """File name without image suffixes, or ``''`` when there is no path."""
        return image_stem(self.path) if self.path is not None else ""

    def numpy(self) -> np.ndarray:
        """Load the whole image into memory.

        Returns
        -------
        numpy.ndarray
            The data itself if it already is a numpy array, else a new array.
        """
        if isinstance(self.data, np.ndarray):
            return self.data
        return np.asarray(self.data[(slice(None),) * self.ndim])


def is_colour(image: Image) -> bool:
    """Whether ``image`` is an 8-bit colour (RGB or RGBA) image; reads no pixels.

    Parameters
    ----------
    image : Image
        The image as read (its data may be lazy).

    Returns
    -------
    bool
    """
    return ("C" in image.axes and np.dtype(image.data.dtype) == np.uint8
            and image.data.shape[image.axes.index("C")] in (3, 4))


def colour_to_grey(image: Image) -> Image | None:
    """The grey version of an 8-bit colour (RGB or RGBA) image, or None for other images.

    Grey is the mean of R, G and B (alpha dropped), the conversion microsight's
    one-channel models for colour stains (H&E) were trained with. Only 8-bit images
    with 3 or 4 channels count as colour: three 16-bit fluorescence channels are
    not a colour photograph and are left alone.

    Parameters
    ----------
    image : Image
        The image as read.

    Returns
    -------
    Image or None
        The grey image (axes without ``C``), or None when ``image`` is not colour.
    """
    if not is_colour(image):
        return None
    c = image.axes.index("C")
    return Image(mean_of_rgb(np.asarray(image.data), c), image.axes.replace("C", ""),
                 dict(image.pixel_sizes), image.path)


def mean_of_rgb(data: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """Grey as microsight makes it: the float32 mean of R, G and B along ``axis``.

    Parameters
    ----------
    data : numpy.ndarray
        Pixels with 3 (RGB) or 4 (RGBA, alpha dropped) samples along ``axis``.
    axis : int
        The colour axis.
    keepdims : bool
        Keep ``axis`` with length 1 (a channels-first block stays channels-first).

    Returns
    -------
    numpy.ndarray
    """
    rgb = np.take(data, [0, 1, 2], axis=axis).astype(np.float32)
    return rgb.mean(axis=axis, keepdims=keepdims)
