"""PNG previews of microscopy images: any dtype, planes of 3D and time series, contrast.

A browser shows 8-bit pictures; microscopy images are 16-bit, float, 3D,
time series and often large. A preview takes one YX plane (the slider picks
which), reads it with a stride so the longer side stays under a budget, maps
the chosen percentiles to black and white, and encodes a grayscale PNG.
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any

import numpy as np

MAX_SIDE = 640


def display_axes(axes: str, shape: tuple[int, ...], dtype: Any) -> str:
    """Axes to preview with: an 8-bit colour image's ``C`` becomes ``S``, shown in colour.

    A colour photograph (H&E, brightfield camera) is one picture, not three planes.
    """
    if ("C" in axes and np.dtype(dtype) == np.uint8
            and shape[axes.index("C")] in (3, 4)):
        return axes.replace("C", "S")
    return axes


def plane_axes(axes: str, shape: tuple[int, ...]) -> list[tuple[str, int]]:
    """The axes (letter, size) a plane index runs over, in the image's order.

    All but Y and X, and the colour samples ``S`` of :func:`display_axes`.
    """
    return [(a, int(s)) for a, s in zip(axes, shape, strict=True) if a not in "YXS"]


def plane_count(axes: str, shape: tuple[int, ...]) -> int:
    """Number of YX planes of an image (1 for a 2D image)."""
    return math.prod(s for _, s in plane_axes(axes, shape)) or 1


def plane_label(axes: str, shape: tuple[int, ...], plane: int) -> str:
    """Words for a plane index, e.g. ``"Z 3/20, C 1/2"``."""
    index = _unravel(axes, shape, plane)
    return ", ".join(f"{a} {index[a] + 1}/{s}" for a, s in plane_axes(axes, shape)) or "2D"


def _unravel(axes: str, shape: tuple[int, ...], plane: int) -> dict[str, int]:
    lead = plane_axes(axes, shape)
    plane = min(max(int(plane), 0), plane_count(axes, shape) - 1)
    sizes = [s for _, s in lead]
    coords = np.unravel_index(plane, sizes) if sizes else ()
    return {a: int(c) for (a, _), c in zip(lead, coords, strict=True)}


def read_plane(data: Any, axes: str, plane: int = 0, max_side: int = MAX_SIDE) -> np.ndarray:
    """One YX plane of ``data`` (numpy or lazy array), strided to at most ``max_side``.

    Only the strided plane is read, so an OME-Zarr image never loads whole.
    """
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"an image with axes {axes} has no YX plane to show")
    index = _unravel(axes, tuple(data.shape), plane)
    step = max(1, math.ceil(max(data.shape[axes.index("Y")], data.shape[axes.index("X")])
                            / max_side))
    key = tuple(slice(None, None, step) if a in "YX" else slice(0, 3) if a == "S"
                else index[a] for a in axes)
    out = np.asarray(data[key])
    # After integer indexing the remaining axes keep their order in ``axes``.
    kept = [a for a in axes if a in "YXS"]
    return np.transpose(out, [kept.index(a) for a in "YXS" if a in kept])


def intensity_range(data: Any, axes: str, max_planes: int = 8) -> dict[str, float]:
    """Min, max and 1/99.8 percentiles over a few strided planes (cheap on large images)."""
    count = plane_count(axes, tuple(data.shape))
    picks = np.unique(np.linspace(0, count - 1, min(count, max_planes)).round().astype(int))
    values = np.concatenate([read_plane(data, axes, int(p), 256).ravel() for p in picks])
    values = values[np.isfinite(values)] if values.dtype.kind == "f" else values
    if values.size == 0:
        return {"min": math.nan, "max": math.nan, "p1": math.nan, "p99_8": math.nan}
    low, high = np.percentile(values, [1, 99.8])
    return {"min": float(values.min()), "max": float(values.max()),
            "p1": float(low), "p99_8": float(high)}


def to_8bit(plane: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.8) -> np.ndarray:
    """Map the ``low_pct``/``high_pct`` percentiles of a plane to 0/255."""
    plane = np.asarray(plane, np.float64)
    finite = plane[np.isfinite(plane)]
    if finite.size == 0:
        return np.zeros(plane.shape, np.uint8)
    low, high = np.percentile(finite, [low_pct, high_pct])
    if high <= low:
        high = low + 1.0
    scaled = (np.nan_to_num(plane, nan=low) - low) / (high - low)
    return (np.clip(scaled, 0, 1) * 255 + 0.5).astype(np.uint8)


def png_bytes(gray: np.ndarray) -> bytes:
    """Encode a uint8 array as a PNG: grayscale (YX) or RGB (YX3); no imaging library."""
    gray = np.ascontiguousarray(gray, np.uint8)
    height, width = gray.shape[:2]
    colour_type = 2 if gray.ndim == 3 else 0  # PNG: 2 = RGB, 0 = grey
    raw = b"".join(b"\x00" + gray[row].tobytes() for row in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def preview_png(data: Any, axes: str, plane: int = 0, low: float = 0.5,
                high: float = 99.8) -> bytes:
    """PNG of one plane of an image with percentile contrast (colour shown as it is)."""
    shown = read_plane(data, axes, plane)
    return png_bytes(shown if shown.ndim == 3 else to_8bit(shown, low, high))
