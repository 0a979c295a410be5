"""From an image's own axes to the channels-first layout a model needs.

A 2D model works on ``CYX`` items and a 3D model on ``CZYX`` items. Sample
and time axes (``S``, ``T``) of an image are looped over, item by item. A Z
axis given to a 2D model is an error, not a silent guess: the user says
with ``--axes`` whether those planes are time points (``TYX``) or something
else.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import product

import numpy as np

from microsight.axes import axis_sizes, transpose_to
from microsight.errors import MicrosightError


def item_axes(ndim: int) -> str:
    """Channels-first axes of one model item: ``CYX`` or ``CZYX``."""
    return "CYX" if ndim == 2 else "CZYX"


def loop_axes(axes: str, ndim: int, name: str = "image") -> str:
    """Axes of ``axes`` that are looped over for a ``ndim``-D model.

    Raises
    ------
    MicrosightError
        When the axes cannot feed the model (Z given to a 2D model, no Z for
        a 3D model).
    """
    axes = axes.upper()
    if ndim == 2 and "Z" in axes:
        raise MicrosightError(
            f"{name} has axes {axes} but the model is 2D (expects YX); "
            "pass --axes to call the Z planes time points (e.g. TYX) or use a 3D model"
        )
    if ndim == 3 and "Z" not in axes:
        raise MicrosightError(
            f"{name} has axes {axes} but the model is 3D (expects ZYX); "
            "pass --axes naming the depth axis Z"
        )
    return "".join(a for a in axes if a in "ST")


def item_indices(axes: str, shape: tuple[int, ...], ndim: int, name: str = "image"
                 ) -> list[dict[str, int]]:
    """Every combination of loop-axis indices, e.g. ``[{'T': 0}, {'T': 1}]``."""
    sizes = axis_sizes(axes, shape)
    loops = loop_axes(axes, ndim, name)
    ranges = [range(sizes[a]) for a in loops]
    return [dict(zip(loops, combo, strict=True)) for combo in product(*ranges)]


def check_channels(axes: str, shape: tuple[int, ...], expected: int, name: str = "image"
                   ) -> None:
    """Raise a clear error when an image's channel count differs from a model's.

    Parameters
    ----------
    axes : str
        Axes of the image (``C`` absent means one channel).
    shape : tuple of int
        Shape of the image.
    expected : int
        Input channels the model was trained with.
    name : str
        Image name used in the message.
    """
    got = axis_sizes(axes, shape).get("C", 1)
    if got == expected:
        return
    hint = ("if a colour (RGB) image shows a single stain, save one channel or a grey "
            "version of it" if got in (3, 4) and expected == 1 else
            "check the axes (--axes) and the channel order")
    raise MicrosightError(
        f"{name} has {got} channel(s) (axes {axes}, shape {tuple(shape)}) but the model was "
        f"trained on {expected}; {hint}")


def read_item(
    data, axes: str, ndim: int, index: dict[str, int], region: tuple[slice, ...] | None = None
) -> np.ndarray:
    """Read one channels-first item (optionally a spatial region) from an array.

    Parameters
    ----------
    data : array-like
        The image data, numpy or lazy (only the region is read).
    axes : str
        Axes of ``data``.
    ndim : int
        Spatial dimensions of the model.
    index : dict
        Index along each loop axis (from :func:`item_indices`).
    region : tuple of slice, optional
        Slices along the spatial axes (``YX`` or ``ZYX``).

    Returns
    -------
    numpy.ndarray
        Float32 array with axes ``CYX`` or ``CZYX``.
    """
    axes = axes.upper()
    spatial = "YX" if ndim == 2 else "ZYX"
    region = region or (slice(None),) * ndim
    key = []
    for a in axes:
        if a in index:
            key.append(index[a])
        elif a in spatial:
            key.append(region[spatial.index(a)])
        else:
            key.append(slice(None))
    block = np.asarray(data[tuple(key)], dtype=np.float32)
    kept = "".join(a for a in axes if a not in index)
    order = [kept.index(a) for a in spatial]
    if "C" in kept:
        return np.transpose(block, [kept.index("C"), *order])
    return np.transpose(block, order)[None]


def output_axes(axes: str, out_channels: int) -> str:
    """Axes of a prediction for an input with ``axes`` and ``out_channels`` channels."""
    axes = axes.upper()
    if "C" in axes or out_channels == 1:
        return axes
    spatial_start = min(axes.index(a) for a in "ZYX" if a in axes)
    return axes[:spatial_start] + "C" + axes[spatial_start:]


def output_shape(axes: str, shape: tuple[int, ...], out_axes: str, out_channels: int
                 ) -> tuple[int, ...]:
    """Shape of the prediction array (channel axis resized to ``out_channels``)."""
    sizes = axis_sizes(axes, shape)
    sizes["C"] = out_channels
    return tuple(sizes[a] for a in out_axes)


def write_key(out_axes: str, ndim: int, index: dict[str, int], region: tuple[slice, ...]
              ) -> tuple[slice, ...]:
    """Slices of the output array that one item's region occupies."""
    spatial = "YX" if ndim == 2 else "ZYX"
    key = []
    for a in out_axes:
        if a in index:
            key.append(slice(index[a], index[a] + 1))
        elif a in spatial:
            key.append(region[spatial.index(a)])
        else:
            key.append(slice(None))
    return tuple(key)


def item_to_output(block: np.ndarray, out_axes: str, ndim: int) -> np.ndarray:
    """Reorder a channels-first item block to the output's axes (loop axes of size 1)."""
    spatial = "YX" if ndim == 2 else "ZYX"
    return transpose_to(block, "C" + spatial, out_axes)


#: Pixels read to fit a per-image normalizer: a subsample of about this many.
SAMPLE_PIXELS = 4e6


def finite_region_reader(data, axes: str, ndim: int, index: dict[str, int], name: str
                         ) -> Callable[[tuple[slice, ...]], np.ndarray]:
    """``read(region)`` of one item that refuses NaN or infinite values with a clear error.

    Parameters
    ----------
    data : array-like
        The image data (numpy or lazy).
    axes : str
        Axes of ``data``.
    ndim : int
        Spatial dimensions of the model.
    index : dict
        The item (from :func:`item_indices`).
    name : str
        File name for the error message.

    Returns
    -------
    callable
        ``read(region) -> (C, *region)`` float32.
    """

    def read(region: tuple[slice, ...]) -> np.ndarray:
        block = read_item(data, axes, ndim, index, region)
        if not np.isfinite(block).all():
            raise MicrosightError(f"{name} contains NaN or infinite values; replace them "
                                  "(e.g. with 0) before predicting")
        return block

    return read


def item_sampler(data, axes: str, ndim: int, index: dict[str, int],
                 spatial: tuple[int, ...]) -> Callable[[], np.ndarray]:
    """``sample()`` of one item: every k-th pixel, about :data:`SAMPLE_PIXELS` in all."""
    step = max(1, int(np.ceil((np.prod(spatial) / SAMPLE_PIXELS) ** (1 / ndim))))
    return lambda: read_item(data, axes, ndim, index, (slice(None, None, step),) * ndim)
