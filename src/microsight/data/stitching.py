"""Objects extracted block by block and stitched across block borders (numpy only).

Large images are turned into objects in overlapping blocks of rows; each
object is kept by the block that owns its seed, so an object crossing a
border comes out whole and once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

# Extract objects from dense maps ``(C, *block)``: local labels, seeds ``(N, ndim)``
# (block coordinates), one score per object (label k is object k - 1) and optional
# polygons ``(N, n, 2)``.
Extractor = Callable[[np.ndarray], "Objects"]


@dataclass
class Objects:
    """Objects extracted from one block."""

    labels: np.ndarray
    seeds: np.ndarray
    scores: np.ndarray
    polygons: np.ndarray | None = None


@dataclass
class Segmentation:
    """Result of segmenting one item: labels, dense probability maps, object table."""

    labels: np.ndarray
    probability: np.ndarray | None = None
    table: dict[str, np.ndarray] = field(default_factory=dict)
    polygons: dict[int, np.ndarray] | None = None


def empty_objects(shape: tuple[int, ...], ndim: int) -> Objects:
    """No object in a block of ``shape``."""
    return Objects(np.zeros(shape, np.int32), np.zeros((0, ndim)), np.zeros(0))


def drop_small(objects: Objects, min_size: int) -> Objects:
    """Remove objects smaller than ``min_size`` pixels; keep ids consecutive."""
    if min_size <= 0 or len(objects.scores) == 0:
        return objects
    area = np.bincount(objects.labels.ravel(), minlength=len(objects.scores) + 1)[1:]
    keep = area[: len(objects.scores)] >= min_size
    if keep.all():
        return objects
    lut = np.zeros(len(objects.scores) + 1, np.int32)
    lut[1:][keep] = np.arange(1, int(keep.sum()) + 1)
    return Objects(lut[objects.labels], objects.seeds[keep], objects.scores[keep],
                   None if objects.polygons is None else objects.polygons[keep])


class BlockStitcher:
    """Turn row bands of dense maps into stitched labels, block by block.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the item.
    extract : callable
        ``extract(dense_block) -> Objects``.
    block : int
        Rows (planes) owned by one block.
    margin : int
        Rows of context on each side of a block.
    write_labels : callable
        ``write_labels(region, labels)`` receives finished label rows (int32).
    """

    def __init__(self, shape: tuple[int, ...], extract: Extractor, block: int, margin: int,
                 write_labels: Callable[[tuple[slice, ...], np.ndarray], None]):
        self.shape, self.extract = tuple(shape), extract
        self.block, self.margin = max(int(block), 1), int(margin)
        self.write_labels = write_labels
        self.chunks: list[tuple[int, np.ndarray]] = []  # (first row, dense rows)
        self.rows_in = 0
        self.next_start = 0
        self.labels = np.zeros((0, *shape[1:]), np.int32)
        self.labels_start = 0
        self.next_id = 1
        self.row_blocks: list[dict[str, np.ndarray]] = []
        self.polygons: dict[int, np.ndarray] = {}

    def add(self, region: tuple[slice, ...], dense: np.ndarray) -> None:
        """Receive the dense maps of rows ``region[0]`` (in order, full extent otherwise)."""
        start = region[0].start
        if start != self.rows_in:
            raise RuntimeError(f"rows arrive out of order: {start} after {self.rows_in}")
        self.chunks.append((start, dense))
        self.rows_in = start + dense.shape[1]
        n0 = self.shape[0]
        while self.next_start < n0 and self.rows_in >= min(
                self.next_start + self.block + self.margin, n0):
            self._process()

    def _dense(self, lo: int, hi: int) -> np.ndarray:
        parts = [c[:, max(lo - s, 0): hi - s] for s, c in self.chunks
                 if s < hi and s + c.shape[1] > lo]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def _process(self) -> None:
        n0, m = self.shape[0], self.margin
        a = self.next_start
        b = min(a + self.block, n0)
        lo, hi = max(a - m, 0), min(b + m, n0)
        objects = self.extract(self._dense(lo, hi))
        owned = (objects.seeds[:, 0] >= a - lo) & (objects.seeds[:, 0] < b - lo)
        self._paint(objects, np.flatnonzero(owned), lo, hi)
        self.next_start = b
        keep_from = b - m if b < n0 else n0
        self.chunks = [(s, c) for s, c in self.chunks if s + c.shape[1] > keep_from]
        self._flush(min(keep_from, n0))

    def _paint(self, objects: Objects, kept: np.ndarray, lo: int, hi: int) -> None:
        grow = hi - (self.labels_start + len(self.labels))
        if grow > 0:
            self.labels = np.concatenate(
                [self.labels, np.zeros((grow, *self.shape[1:]), np.int32)])
        if len(kept) == 0:
            return
        lut = np.zeros(len(objects.scores) + 1, np.int32)
        lut[kept + 1] = np.arange(self.next_id, self.next_id + len(kept))
        canvas = self.labels[lo - self.labels_start: hi - self.labels_start]
        local = np.where(lut[objects.labels] > 0, objects.labels, 0)
        local[canvas != 0] = 0
        canvas[local > 0] = lut[local[local > 0]]
        slices = ndimage.find_objects(local, max_label=len(objects.scores))
        area = np.bincount(local.ravel(), minlength=len(objects.scores) + 1)
        self.next_id += len(kept)
        # An object wholly painted over by a neighbour's block keeps its id unused.
        kept = np.array([k for k in kept if slices[k] is not None], np.int64)
        offset = np.zeros(len(self.shape), np.int64)
        offset[0] = lo
        # Columns as arrays, one block at a time: a big image holds 10^5+ objects.
        boxes = np.array([[(sl.start, sl.stop) for sl in slices[k]] for k in kept],
                         np.int64).reshape(len(kept), len(self.shape), 2)
        self.row_blocks.append({
            "label": lut[kept + 1].astype(np.int64), "area": area[kept + 1].astype(np.int64),
            "score": np.asarray(objects.scores, np.float64)[kept],
            "seed": np.asarray(objects.seeds, np.float64)[kept] + offset,
            "min": boxes[..., 0] + offset, "max": boxes[..., 1] + offset})
        if objects.polygons is not None:
            for k in kept:
                self.polygons[int(lut[k + 1])] = (objects.polygons[k] + np.array(
                    [lo, 0.0])).astype(np.float32)

    def _flush(self, upto: int) -> None:
        n = upto - self.labels_start
        if n <= 0:
            return
        region = (slice(self.labels_start, upto),) + tuple(slice(0, s) for s in self.shape[1:])
        self.write_labels(region, self.labels[:n])
        self.labels = self.labels[n:]
        self.labels_start = upto

    def table(self) -> dict[str, np.ndarray]:
        """Object table: label, area, score, seed position, bounding box."""
        axes = "yx" if len(self.shape) == 2 else "zyx"
        nd = len(axes)
        blocks = self.row_blocks or [{
            "label": np.zeros(0, np.int64), "area": np.zeros(0, np.int64),
            "score": np.zeros(0), "seed": np.zeros((0, nd)),
            "min": np.zeros((0, nd), np.int64), "max": np.zeros((0, nd), np.int64)}]
        cols = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
        table = {"label": cols["label"], "area": cols["area"], "score": cols["score"]}
        table.update({a: cols["seed"][:, i] for i, a in enumerate(axes)})
        table.update({f"min_{a}": cols["min"][:, i] for i, a in enumerate(axes)})
        table.update({f"max_{a}": cols["max"][:, i] for i, a in enumerate(axes)})
        return table
