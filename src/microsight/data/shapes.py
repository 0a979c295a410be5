"""Object geometry: label images, star-convex polygons, boxes, centroids (numpy only).

Conventions: coordinates are ``(y, x)`` in pixels with the pixel centre at
integer positions. A star-convex polygon is a centre and ``n_rays`` radial
distances along the angles ``2 pi k / n_rays`` measured from the +x axis
towards +y (:func:`ray_angles`); vertex ``k`` lies at
``centre + d_k * (sin a_k, cos a_k)``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def ray_angles(n_rays: int) -> np.ndarray:
    """Angles (radians) of ``n_rays`` equally spaced rays, starting along +x."""
    return np.arange(n_rays) * (2 * np.pi / n_rays)


def star_distances(labels: np.ndarray, n_rays: int = 32, *, max_steps: int | None = None
                   ) -> np.ndarray:
    """Distance from every object pixel to its object's border along each ray.

    Rays march in unit steps (positions rounded to the nearest pixel); the
    distance is the first step that leaves the object (another id, background
    or the image edge) minus half a pixel, where the border lies between the
    last step inside and the first outside. Background pixels get 0.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(Y, X)`` or a batch ``(B, Y, X)`` of label images.
    n_rays : int
        Number of rays.
    max_steps : int, optional
        Longest ray (default: the larger image side).

    Returns
    -------
    numpy.ndarray
        float32 distances ``(n_rays, Y, X)`` (or ``(B, n_rays, Y, X)``).
    """
    labels = np.asarray(labels)
    batch = labels if labels.ndim == 3 else labels[None]
    b, h, w = batch.shape
    out = np.zeros((b, n_rays, h, w), np.float32)
    bi, yi, xi = np.nonzero(batch)
    if len(bi) == 0:
        return out if labels.ndim == 3 else out[0]
    steps = max_steps or max(h, w)
    # A one-pixel background frame ends every ray at the image edge: a step moves
    # at most one pixel along each axis, so no ray can jump over the frame. Rays
    # then march on flat indices, one added offset per step.
    flat = np.pad(batch, ((0, 0), (1, 1), (1, 1))).ravel()
    row = w + 2
    t = np.arange(1, steps + 1)
    angles = ray_angles(n_rays)
    offsets = (np.rint(np.sin(angles)[:, None] * t).astype(np.int64) * row
               + np.rint(np.cos(angles)[:, None] * t).astype(np.int64))  # (R, steps)
    start = (bi * (h + 2) + yi + 1) * row + xi + 1
    own = batch[bi, yi, xi]
    for k in range(n_rays):
        out[bi, k, yi, xi] = _march(flat, start, own, offsets[k])
    return out if labels.ndim == 3 else out[0]


def _march(flat: np.ndarray, start: np.ndarray, own: np.ndarray, offsets: np.ndarray
           ) -> np.ndarray:
    """Steps (minus half a pixel) until each ray from ``start`` leaves its object."""
    steps = len(offsets)
    dist = np.full(len(start), steps, np.float32)
    index = np.arange(len(start))
    alive = np.ones(len(start), bool)
    n_alive = len(start)
    for k, offset in enumerate(offsets):
        # Ended rays keep marching until the next compaction; clipping keeps their
        # (ignored) reads inside the array.
        left = np.take(flat, start + offset, mode="clip") != own
        left &= alive
        n_left = np.count_nonzero(left)
        if n_left == 0:
            continue
        dist[index[left]] = k + 0.5
        alive &= ~left
        n_alive -= n_left
        if n_alive == 0:
            break
        if n_alive < len(index) // 2:  # compacting every step would cost more than it saves
            index, start, own = index[alive], start[alive], own[alive]
            alive = np.ones(n_alive, bool)
    return dist


def normalized_edt(labels: np.ndarray) -> np.ndarray:
    """Euclidean distance to the object border, divided by each object's maximum.

    Works for 2D and 3D label images; touching objects are separated (a
    pixel's distance is to the nearest pixel not of its own object). Values lie
    in (0, 1] inside objects and are 0 on background.
    """
    labels = np.asarray(labels)
    out = np.zeros(labels.shape, np.float32)
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        mask = labels[grown] == i
        # Pad so that objects touching the image edge end there too.
        dist = ndimage.distance_transform_edt(np.pad(mask, 1))[(slice(1, -1),) * mask.ndim]
        top = dist.max()
        if top > 0:
            out[grown][mask] = (dist[mask] / top).astype(np.float32)
    return out


def contact_zones(labels: np.ndarray, radius: int = 2) -> np.ndarray:
    """Pixels within ``radius`` of two different objects: where touching objects meet.

    Marks object pixels next to another object and background pixels in
    narrow gaps between objects (2D or 3D). These few pixels decide whether
    two touching nuclei come out as one or two, so losses can weight them up
    (as the U-Net paper's border weights do).
    """
    labels = np.asarray(labels).astype(np.int64)
    size = 2 * radius + 1
    top = ndimage.maximum_filter(labels, size=size)
    # Background counts as "above every id" so that the minimum is the smallest id near.
    big = int(labels.max(initial=0)) + 1
    low = ndimage.minimum_filter(np.where(labels > 0, labels, big), size=size)
    return (low < big) & (top != low)


def inner_boundaries(labels: np.ndarray) -> np.ndarray:
    """Object pixels with a neighbour (along any axis) of another id or background."""
    labels = np.asarray(labels)
    edge = np.zeros(labels.shape, bool)
    for axis in range(labels.ndim):
        for shift in (1, -1):
            neighbour = np.roll(labels, shift, axis=axis)
            # np.roll wraps around; the image edge is not an object border here.
            border = [slice(None)] * labels.ndim
            border[axis] = slice(0, 1) if shift == 1 else slice(-1, None)
            neighbour[tuple(border)] = labels[tuple(border)]
            edge |= neighbour != labels
    return edge & (labels > 0)


def polygon_vertices(centres: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Vertices ``(N, n_rays, 2)`` (y, x) of star-convex polygons."""
    centres = np.asarray(centres, np.float64).reshape(-1, 2)
    distances = np.asarray(distances, np.float64).reshape(len(centres), -1)
    angles = ray_angles(distances.shape[1])
    dirs = np.stack([np.sin(angles), np.cos(angles)], axis=-1)
    return centres[:, None, :] + distances[:, :, None] * dirs[None]


def rasterize_polygon(vertices: np.ndarray, shape: tuple[int, int]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels whose centres lie inside a polygon (clipped)."""
    from skimage.draw import polygon

    v = np.asarray(vertices, np.float64)
    return polygon(v[:, 0], v[:, 1], shape=shape)


def polygons_to_labels(vertices: np.ndarray, shape: tuple[int, int],
                       scores: np.ndarray | None = None) -> np.ndarray:
    """Paint polygons into a label image (id = index + 1); higher scores win overlaps."""
    labels = np.zeros(shape, np.int32)
    order = np.arange(len(vertices)) if scores is None else np.argsort(-np.asarray(scores))
    for i in order:
        rr, cc = rasterize_polygon(vertices[i], shape)
        free = labels[rr, cc] == 0
        labels[rr[free], cc[free]] = i + 1
    return labels


def polygon_nms(vertices: np.ndarray, scores: np.ndarray, shape: tuple[int, int],
                iou_threshold: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """Greedy non-maximum suppression of polygons by their rasterized IoU.

    Candidates are visited by decreasing score; one is dropped when its IoU
    with an already kept polygon exceeds ``iou_threshold``. Kept polygons are
    painted into a label image as they are accepted (a pixel belongs to the
    first, highest-scoring polygon covering it), so the overlap of a candidate
    with kept polygons is read off the painted image.

    Parameters
    ----------
    vertices : numpy.ndarray
        ``(N, n_rays, 2)`` polygon vertices (y, x).
    scores : numpy.ndarray
        ``(N,)`` candidate scores.
    shape : tuple of int
        Image shape (polygons are clipped to it).
    iou_threshold : float
        Largest IoU between two kept polygons.

    Returns
    -------
    kept : numpy.ndarray
        Indices of the kept candidates, by decreasing score.
    labels : numpy.ndarray
        int32 label image; kept candidate ``kept[j]`` has id ``j + 1``.
    """
    labels = np.zeros(shape, np.int32)
    areas = [0]
    kept: list[int] = []
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        rr, cc = rasterize_polygon(vertices[i], shape)
        if len(rr) == 0:
            continue
        under = labels[rr, cc]
        hit = under[under > 0]
        if len(hit):
            ids, inter = np.unique(hit, return_counts=True)
            union = len(rr) + np.asarray(areas)[ids] - inter
            if np.max(inter / union) > iou_threshold:
                continue
        free = under == 0
        if not free.any():
            continue
        kept.append(int(i))
        areas.append(len(rr))
        labels[rr[free], cc[free]] = len(kept)
    return np.asarray(kept, np.int64), labels


def object_table(labels: np.ndarray, scores: dict[int, float] | None = None
                 ) -> dict[str, np.ndarray]:
    """Centroid, bounding box and size of every object of a label image.

    Parameters
    ----------
    labels : numpy.ndarray
        2D or 3D label image.
    scores : dict, optional
        Object id -> score, added as a ``score`` column (NaN where missing).

    Returns
    -------
    dict of str to numpy.ndarray
        Columns ``label``, ``area`` (pixels or voxels), centroid ``z, y, x`` and
        box ``min_*`` / ``max_*`` (exclusive) for the spatial axes present,
        optionally ``score``.
    """
    labels = np.asarray(labels)
    axes = "yx" if labels.ndim == 2 else "zyx"
    slices = ndimage.find_objects(labels)
    ids = np.array([i for i, s in enumerate(slices, start=1) if s is not None], np.int64)
    table: dict[str, np.ndarray] = {"label": ids}
    area = np.bincount(labels.ravel(), minlength=len(slices) + 1)
    table["area"] = area[ids] if len(ids) else np.zeros(0, np.int64)
    centres = (np.asarray(ndimage.center_of_mass(labels > 0, labels, ids)).reshape(-1, labels.ndim)
               if len(ids) else np.zeros((0, labels.ndim)))
    for a, axis in enumerate(axes):
        table[axis] = centres[:, a]
    for a, axis in enumerate(axes):
        table[f"min_{axis}"] = np.array([slices[i - 1][a].start for i in ids], np.int64)
        table[f"max_{axis}"] = np.array([slices[i - 1][a].stop for i in ids], np.int64)
    if scores is not None:
        table["score"] = np.array([scores.get(int(i), np.nan) for i in ids], np.float64)
    return table


def label_outlines(labels: np.ndarray) -> dict[int, np.ndarray]:
    """Outline polygon ``(n, 2)`` (y, x) of every object of a 2D label image.

    The outline is the longest iso-contour at 0.5 of the object's mask, which
    runs half a pixel outside the object's pixel centres; an object made of
    several pieces is represented by its largest piece.
    """
    from skimage.measure import find_contours

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError("outlines need a 2D label image")
    out = {}
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        mask = np.pad(labels[sl] == i, 1).astype(np.float32)
        contours = find_contours(mask, 0.5)
        if not contours:
            continue
        best = max(contours, key=len)
        out[i] = best + np.array([sl[0].start - 1, sl[1].start - 1], np.float64)
    return out


def relabel_random(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Give the objects consecutive ids 1..n in random order (background stays 0).

    The patch sampler centres patches on the highest target values; random ids
    make those a random subset of the objects instead of the last-numbered ones.
    """
    ids, inverse = np.unique(np.asarray(labels), return_inverse=True)
    inverse = inverse.reshape(np.shape(labels))
    n = len(ids) - 1 if ids.size and ids[0] == 0 else len(ids)
    first = 0 if ids.size and ids[0] == 0 else 1
    perm = np.concatenate([[0], rng.permutation(n) + 1]) if first == 0 \
        else rng.permutation(n) + 1
    return perm[inverse].astype(np.int32)
