"""Point annotations: tables of coordinates, label-image centroids, heat-map targets.

A point table is a numpy structured array with fields ``y``, ``x`` (float
pixel coordinates), ``class`` (int, 0-based) and ``score`` (float; 1 for
annotations). Point detection trains on Gaussian heat-maps drawn at the
points (one channel per class) and turns predicted heat-maps back into
points by peak extraction and non-maximum suppression.
"""

from __future__ import annotations

import csv
import os
import uuid
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from microsight.errors import MicrosightError

POINT_DTYPE = np.dtype([("y", "f8"), ("x", "f8"), ("class", "i8"), ("score", "f8")])


def make_points(yx: np.ndarray | list, classes: np.ndarray | list | None = None,
                scores: np.ndarray | list | None = None) -> np.ndarray:
    """Build a point table from ``(N, 2)`` coordinates, optional classes and scores."""
    yx = np.asarray(yx, np.float64).reshape(-1, 2)
    out = np.zeros(len(yx), POINT_DTYPE)
    out["y"], out["x"] = yx[:, 0], yx[:, 1]
    out["class"] = 0 if classes is None else np.asarray(classes, np.int64)
    out["score"] = 1.0 if scores is None else np.asarray(scores, np.float64)
    return out


def coords(points: np.ndarray) -> np.ndarray:
    """``(N, 2)`` float array of the ``y, x`` coordinates of a point table."""
    return np.stack([points["y"], points["x"]], axis=1).astype(np.float64).reshape(-1, 2)


def label_centroids(labels: np.ndarray) -> np.ndarray:
    """Centroids of the objects of a ``YX`` label image as a point table (class 0)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise MicrosightError(f"point detection needs YX label images, got {labels.ndim}D")
    ids = np.unique(labels)
    ids = ids[ids > 0]
    if len(ids) == 0:
        return make_points(np.zeros((0, 2)))
    centres = ndimage.center_of_mass(np.ones(labels.shape), labels, ids)
    return make_points(np.asarray(centres, np.float64))


def read_points(path: str | Path) -> np.ndarray:
    """Read a CSV point table with columns ``y, x`` and optionally ``class`` and ``score``.

    A header row is required; column names are case-insensitive and other
    columns are ignored.
    """
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            fields = {(f or "").strip().lower(): f for f in (reader.fieldnames or [])}
            if "y" not in fields or "x" not in fields:
                raise MicrosightError(
                    f"{path.name}: a point table needs a header with columns y,x[,class]; "
                    f"found {', '.join(fields) or 'no header'}")
            rows = list(reader)
    except OSError as exc:
        raise MicrosightError(f"cannot read {path}: {exc.strerror}") from None

    def column(name: str, default: float, kind: type) -> list:
        key = fields.get(name)
        out = []
        for i, row in enumerate(rows):
            value = (row.get(key) or "").strip() if key else ""
            try:
                out.append(kind(float(value)) if value else default)
            except ValueError:
                raise MicrosightError(
                    f"{path.name}, row {i + 2}: {name}={value!r} is not a number") from None
        return out

    ys, xs = column("y", np.nan, float), column("x", np.nan, float)
    if any(np.isnan(ys)) or any(np.isnan(xs)):
        raise MicrosightError(f"{path.name}: every row needs y and x")
    classes = column("class", 0, int)
    if any(c < 0 for c in classes):
        raise MicrosightError(f"{path.name}: classes must be integers >= 0")
    return make_points(np.stack([ys, xs], 1) if rows else np.zeros((0, 2)), classes,
                       column("score", 1.0, float))


def write_points(path: str | Path, points: np.ndarray, *, item: np.ndarray | None = None
                 ) -> Path:
    """Write a point table as CSV (``[item,]y,x,class,score``) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow((["item"] if item is not None else []) + ["y", "x", "class", "score"])
            for i, p in enumerate(points):
                writer.writerow(([int(item[i])] if item is not None else [])
                                + [f"{p['y']:.2f}", f"{p['x']:.2f}", int(p["class"]),
                                   f"{p['score']:.4f}"])
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def heatmap(points: np.ndarray, shape: tuple[int, int], n_classes: int = 1,
            sigma: float = 2.0) -> np.ndarray:
    """Gaussian heat-map target ``(n_classes, Y, X)``: peak 1 at every point, max-combined."""
    out = np.zeros((n_classes, *shape), np.float32)
    radius = max(1, int(np.ceil(3 * sigma)))
    for p in points:
        c = int(p["class"])
        if c >= n_classes:
            raise MicrosightError(f"point of class {c} but only {n_classes} class(es)")
        cy, cx = float(p["y"]), float(p["x"])
        y0, y1 = max(0, int(cy) - radius), min(shape[0], int(cy) + radius + 2)
        x0, x1 = max(0, int(cx) - radius), min(shape[1], int(cx) + radius + 2)
        if y0 >= y1 or x0 >= x1:
            continue
        yy = np.arange(y0, y1)[:, None] - cy
        xx = np.arange(x0, x1)[None, :] - cx
        g = np.exp(-(yy ** 2 + xx ** 2) / (2 * sigma ** 2)).astype(np.float32)
        np.maximum(out[c, y0:y1, x0:x1], g, out=out[c, y0:y1, x0:x1])
    return out


def object_heatmap(labels: np.ndarray, *, scale: float = 0.5, min_sigma: float = 1.0
                   ) -> np.ndarray:
    """Centre heat-map ``(1, Y, X)`` of a label image whose width follows each object's size.

    Every object gets a Gaussian at its centroid with sigma ``scale`` times its
    equivalent radius (``sqrt(area / pi)``, at least ``min_sigma``), drawn only on
    the object's own pixels. A fixed-width Gaussian is either too narrow for large
    nuclei (a flat interior with many local maxima) or merges small touching ones;
    scaling with the object keeps one peak per object at any size, and masking
    keeps touching objects apart.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise MicrosightError(f"point detection needs YX label images, got {labels.ndim}D")
    out = np.zeros((1, *labels.shape), np.float32)
    n = int(labels.max()) if labels.size else 0
    if n == 0:
        return out
    index = np.arange(1, n + 1)
    area = ndimage.sum_labels(np.ones(labels.shape), labels, index)
    centres = np.asarray(ndimage.center_of_mass(np.ones(labels.shape), labels, index))
    sigma = np.maximum(scale * np.sqrt(area / np.pi), min_sigma)
    # Lookup tables indexed by label id (0 = background, never used below).
    cy = np.concatenate([[0.0], np.nan_to_num(centres[:, 0])])
    cx = np.concatenate([[0.0], np.nan_to_num(centres[:, 1])])
    s2 = 2 * np.concatenate([[1.0], sigma]) ** 2
    yy, xx = np.nonzero(labels)
    ids = labels[yy, xx]
    d2 = (yy - cy[ids]) ** 2 + (xx - cx[ids]) ** 2
    out[0, yy, xx] = np.exp(-d2 / s2[ids])
    return out


def nms(points: np.ndarray, radius: float) -> np.ndarray:
    """Greedy non-maximum suppression: keep the best-scoring point within ``radius``.

    Applies across classes (one object, one point). Returns the kept points,
    best score first.
    """
    if len(points) == 0 or radius <= 0:
        return points[np.argsort(-points["score"], kind="stable")]
    order = np.argsort(-points["score"], kind="stable")
    pts = points[order]
    xy = coords(pts)
    tree = cKDTree(xy)
    suppressed = np.zeros(len(pts), bool)
    keep = []
    for i in range(len(pts)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed[tree.query_ball_point(xy[i], radius)] = True
    return pts[keep]


def find_peaks(heat: np.ndarray, *, threshold: float = 0.5, min_distance: int = 3
               ) -> np.ndarray:
    """Points at the local maxima of a heat-map ``(C, Y, X)``, one class per channel.

    Peaks above ``threshold`` at least ``min_distance`` pixels apart are found
    per channel, then suppressed across channels (:func:`nms`). Each point is
    refined to sub-pixel precision by the heat-weighted centroid of its 3x3
    neighbourhood; its score is the heat-map value at the peak.
    """
    from skimage.feature import peak_local_max

    heat = np.asarray(heat, np.float32)
    if heat.ndim == 2:
        heat = heat[None]
    tables = []
    for c, channel in enumerate(heat):
        peaks = peak_local_max(channel, min_distance=max(1, int(min_distance)),
                               threshold_abs=threshold, exclude_border=False)
        if len(peaks) == 0:
            continue
        padded = np.pad(channel, 1, mode="edge")
        offs = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
        w = np.stack([padded[peaks[:, 0] + 1 + dy, peaks[:, 1] + 1 + dx] for dy, dx in offs], 1)
        w = np.clip(w, 0, None)
        shift = (w @ offs) / np.maximum(w.sum(1, keepdims=True), 1e-12)
        tables.append(make_points(peaks + shift, np.full(len(peaks), c),
                                  channel[peaks[:, 0], peaks[:, 1]]))
    if not tables:
        return make_points(np.zeros((0, 2)))
    return nms(np.concatenate(tables), float(min_distance))


def points_to_records(points: np.ndarray) -> list[dict]:
    """Point table as a list of plain dicts (``y, x, class, score``)."""
    return [{"y": float(p["y"]), "x": float(p["x"]), "class": int(p["class"]),
             "score": float(p["score"])} for p in points]
