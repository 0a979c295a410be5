"""Arrays read region by region from a file (vendor formats), like a zarr array.

A :class:`RegionArray` holds no pixels: slicing it reads the region's
bounding box through a reader function and returns numpy. It can present
the file's own axes reordered, with some axes fixed at one index (a scene, or
size-1 axes dropped), so that a reader hands microsight's ``TCZYX`` view of
one scene without reading it. Tiled prediction, the intensity sampler and
``Image.numpy()`` all slice it, so a large file is only read tile by tile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: Reader of a box: one ``slice(start, stop)`` per axis of the file's array.
BoxReader = Callable[[tuple[slice, ...]], np.ndarray]

#: A strided read (every k-th pixel) whose box is larger than this many pixels
#: is read in groups of rows or planes along its slowest strided axis, so a
#: sample of a huge image never holds the whole image.
STRIDED_BOX_PIXELS = 1 << 22


class RegionArray:
    """A read-only lazy array: ``shape``, ``dtype``, ``ndim`` and slicing to numpy.

    Parameters
    ----------
    read : callable
        ``read(box) -> numpy.ndarray`` for a box of plain slices over the
        source axes (every axis, start and stop within the source shape).
    shape : tuple of int
        Shape of the source (the file's array).
    dtype : numpy dtype
        Its data type.
    order : sequence of int, optional
        Source axes shown, in the order shown (default all, as they are).
    fixed : dict, optional
        Source axes not shown, each read at the given index.
    """

    def __init__(self, read: BoxReader, shape: tuple[int, ...], dtype: Any, *,
                 order: tuple[int, ...] | None = None, fixed: dict[int, int] | None = None):
        self.read = read
        self.source_shape = tuple(int(s) for s in shape)
        self.order = tuple(range(len(shape))) if order is None else tuple(order)
        self.fixed = dict(fixed or {})
        if sorted([*self.order, *self.fixed]) != list(range(len(shape))):
            raise ValueError("every source axis must be shown or fixed, once")
        self.shape = tuple(self.source_shape[i] for i in self.order)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)

    def __repr__(self) -> str:
        return f"RegionArray(shape={self.shape}, dtype={self.dtype})"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = self[...]
        return data if dtype is None else data.astype(dtype, copy=False)

    def _normalize(self, key: Any) -> list:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1:]
        key = key + (slice(None),) * (self.ndim - len(key))
        if len(key) != self.ndim:
            raise IndexError(f"too many indices for an array of {self.ndim} dimensions")
        out = []
        for k, n in zip(key, self.shape, strict=True):
            if isinstance(k, slice):
                start, stop, step = k.indices(n)
                if step < 1:
                    raise IndexError("a RegionArray is read with positive steps only")
                out.append(range(start, max(start, stop), step))
            else:
                i = int(k)
                if not -n <= i < n:
                    raise IndexError(f"index {i} is out of bounds for an axis of size {n}")
                out.append(i % n)
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        return self._get(self._normalize(key))

    def _get(self, key: list) -> np.ndarray:
        ranges = [k for k in key if isinstance(k, range)]
        if any(len(r) == 0 for r in ranges):
            return np.empty([len(r) for r in ranges], self.dtype)
        strided = [i for i, k in enumerate(key) if isinstance(k, range) and k.step > 1]
        box_pixels = np.prod([k[-1] - k[0] + 1 if isinstance(k, range) else 1 for k in key])
        if strided and box_pixels > STRIDED_BOX_PIXELS:
            # Along the file's slowest strided axis, in groups of rows or planes whose
            # boxes fit the limit.
            axis = min(strided, key=lambda i: self.order[i])
            rows = key[axis]
            per_row = box_pixels / (rows[-1] - rows[0] + 1)
            n = max(1, int(STRIDED_BOX_PIXELS // per_row) // rows.step)
            parts = [self._get(key[:axis] + [rows[i:i + n]] + key[axis + 1:])
                     for i in range(0, len(rows), n)]
            position = sum(isinstance(k, range) for k in key[:axis])
            return np.concatenate(parts, axis=position)
        box = [slice(0, 1)] * len(self.source_shape)
        pick: list[Any] = [0] * len(self.source_shape)
        for j, index in self.fixed.items():
            box[j] = slice(index, index + 1)
        for k, j in zip(key, self.order, strict=True):
            if isinstance(k, range):
                box[j], pick[j] = slice(k[0], k[-1] + 1), slice(None, None, k.step)
            else:
                box[j] = slice(k, k + 1)
        block = np.asarray(self.read(tuple(box)))[tuple(pick)]
        shown = [j for k, j in zip(key, self.order, strict=True) if isinstance(k, range)]
        return np.transpose(block, np.argsort(np.argsort(shown)))


def memmap_reader(array: np.ndarray) -> BoxReader:
    """A box reader over a memory-mapped (or in-memory) array: copies only the box."""
    return lambda box: np.array(array[box])
