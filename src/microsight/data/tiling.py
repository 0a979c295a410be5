"""Tile grids and blending weights for prediction on images of any size."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``[0, size)``.

    Consecutive tiles overlap by at least ``overlap``; the last tile ends
    exactly at ``size``. An axis shorter than ``tile`` gets one tile.
    """
    if tile >= size:
        return [0]
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap}) must be smaller than the tile ({tile})")
    step = tile - overlap
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def ramp(length: int, overlap: int) -> np.ndarray:
    """1D blending weight: rises linearly over ``overlap`` pixels at both ends, never 0."""
    w = np.ones(length, np.float32)
    n = min(overlap, length // 2)
    if n > 0:
        edge = (np.arange(1, n + 1, dtype=np.float32)) / (n + 1)
        w[:n] = edge
        w[length - n:] = edge[::-1]
    return w


def blend_weights(shape: Sequence[int], overlap: Sequence[int]) -> np.ndarray:
    """Separable blending weights for a tile of ``shape`` (outer product of ramps)."""
    w = np.ones((), np.float32)
    for length, ov in zip(shape, overlap, strict=True):
        w = np.multiply.outer(w, ramp(length, ov))
    return w.astype(np.float32)


def pad_to_multiple(shape: Sequence[int], divisor: int) -> tuple[int, ...]:
    """Smallest shape ``>= shape`` whose sizes are multiples of ``divisor``."""
    return tuple(int(-(-s // divisor) * divisor) for s in shape)
