"""Regions of interest: large or elongated images are shown as a readable crop.

A panel drawn from a 128 x 512 strip, or from a 4000-pixel field, would be a
thin line or a blur on the page; instead the report shows a window of at most
256 pixels a side where the image varies most (or where the objects are) and
says which rows and columns it shows.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["crop_like", "crop_region", "describe_crop"]

# Larger or more elongated images are shown as a region of interest of this size.
CROP_SIDE = 256
CROP_ASPECT = 1.5
# The region is searched on a grid of at most about this many pixels a side.
SEARCH_SIDE = 1024


def crop_region(image: np.ndarray, *, max_side: int = CROP_SIDE,
                max_aspect: float = CROP_ASPECT) -> tuple[slice, slice] | None:
    """The region of interest shown of a large or elongated image, or None for all of it.

    The window is at most ``max_side`` pixels per side and at most
    ``max_aspect`` times longer than wide; it is put where the image varies
    most (the most structure), found on a coarse grid of positions.

    Parameters
    ----------
    image : numpy.ndarray
        A 2D image (the reference panel, e.g. the target).
    max_side : int
        Longest window side.
    max_aspect : float
        Largest ratio of the window's long to short side.

    Returns
    -------
    tuple of slice, or None
        Row and column slices, or None when the whole image fits.
    """
    h, w = image.shape
    rows, cols = min(h, max_side), min(w, max_side)
    rows = min(rows, math.ceil(max_aspect * cols))
    cols = min(cols, math.ceil(max_aspect * rows))
    if (rows, cols) == (h, w):
        return None
    # Searched on a grid of at most about 1024 pixels a side: cheap for any image.
    step = max(1, math.ceil(max(h, w) / SEARCH_SIDE))
    img = np.asarray(image[::step, ::step], np.float64)
    img = np.where(np.isfinite(img), img, 0.0)
    sr, sc = max(1, rows // step), max(1, cols // step)
    y, x = _busiest_window(img, sr, sc)
    y, x = min(y * step, h - rows), min(x * step, w - cols)
    return slice(y, y + rows), slice(x, x + cols)


def _busiest_window(img: np.ndarray, rows: int, cols: int) -> tuple[int, int]:
    """Top-left corner of the ``rows`` x ``cols`` window of largest variance."""
    h, w = img.shape
    # Integral images of x and x^2 give every window's variance at once.
    s1 = np.pad(img, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    s2 = np.pad(img**2, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    ys = np.unique(np.r_[np.arange(0, h - rows + 1, max(1, rows // 8)), h - rows])
    xs = np.unique(np.r_[np.arange(0, w - cols + 1, max(1, cols // 8)), w - cols])
    y0, x0 = np.meshgrid(ys, xs, indexing="ij")

    def box(t: np.ndarray) -> np.ndarray:
        return t[y0 + rows, x0 + cols] - t[y0, x0 + cols] - t[y0 + rows, x0] + t[y0, x0]

    n = rows * cols
    var = box(s2) / n - (box(s1) / n) ** 2
    i, j = np.unravel_index(int(np.argmax(var)), var.shape)
    return int(ys[i]), int(xs[j])


def crop_like(image: np.ndarray, region: tuple[slice, slice] | None,
               shape: tuple[int, int]) -> np.ndarray:
    """``image`` cropped to ``region`` of a reference of ``shape`` (scaled to its grid)."""
    if region is None:
        return image
    fy, fx = image.shape[0] / shape[0], image.shape[1] / shape[1]
    r, c = region
    return image[int(r.start * fy):max(int(r.stop * fy), int(r.start * fy) + 1),
                 int(c.start * fx):max(int(c.stop * fx), int(c.start * fx) + 1)]


def describe_crop(region: tuple[slice, slice] | None, shape: tuple[int, int], *,
                  where: str = "where it varies most") -> str:
    """Words for a caption: which part of the image the panels show."""
    if region is None:
        return ""
    r, c = region
    return (f"Region of interest shown: rows {r.start}-{r.stop - 1}, columns {c.start}-"
            f"{c.stop - 1} of the {shape[0]} x {shape[1]} pixel image ({where}).")
