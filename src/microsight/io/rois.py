"""ImageJ/Fiji ROI sets (``.zip`` of ``.roi`` files), written and read with ``roifile``.

Fiji's ROI Manager opens such a set (File > Open, or drag the .zip onto Fiji).
Polygons are ``(n, 2)`` arrays of ``(y, x)`` pixel coordinates with pixel
centres at integers, as everywhere in microsight; ImageJ puts a pixel's
top-left corner at integers, so half a pixel is added on writing and taken off
on reading. Coordinates are stored with sub-pixel precision.

``roifile`` comes with the optional extra ``microsight[formats]``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from microsight.errors import MicrosightError


@dataclass
class Roi:
    """One polygon ROI: its name, ``(n, 2)`` (y, x) vertices and plane of a stack.

    ``plane`` maps axis letters (``T``, ``C``, ``Z``) to 0-based indices; empty
    for a 2D image. ``position`` is the 0-based stack slice ImageJ shows it on
    (None for a 2D image).
    """

    name: str
    vertices: np.ndarray
    plane: dict[str, int]
    position: int | None = None


def _roifile():
    try:
        import roifile
    except ImportError:
        raise MicrosightError('writing or reading ImageJ ROI sets needs the roifile package; '
                              'install it with pip install "microsight[formats]"') from None
    return roifile


def is_roi_set(path: str | Path) -> bool:
    """True for names ending in ``.zip`` or ``.roi.zip`` (an ROI set's names)."""
    return Path(path).name.lower().endswith(".zip")


def write_rois(path: str | Path, rois: Iterable[Roi]) -> Path:
    """Write polygons as an ImageJ ROI set (a ``.zip``), atomically.

    Parameters
    ----------
    path : str or Path
        Output ``.zip`` (``.roi.zip`` is a common name).
    rois : iterable of Roi
        The polygons; each needs at least three vertices (smaller ones are skipped).

    Returns
    -------
    Path
    """
    roifile = _roifile()
    path = Path(path)
    if not is_roi_set(path):
        raise MicrosightError(f"{path.name}: an ImageJ ROI set is a .zip; name it e.g. "
                              "cells.roi.zip")
    items = []
    for roi in rois:
        v = np.asarray(roi.vertices, np.float64)
        if len(v) < 3:
            continue
        plane = {k.lower(): int(i) for k, i in roi.plane.items() if k in "TCZ"}
        items.append(roifile.ImagejRoi.frompoints(v[:, ::-1] + 0.5, name=roi.name,
                                                  position=roi.position, **plane))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.zip")
    tmp.unlink(missing_ok=True)
    try:
        if items:
            roifile.roiwrite(tmp, items, mode="w")
        else:
            # An empty set: a valid zip with no member, which Fiji opens as no ROI.
            import zipfile

            zipfile.ZipFile(tmp, "w").close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_rois(path: str | Path) -> list[Roi]:
    """Read an ImageJ ROI set (``.zip``) or one ``.roi`` file as polygons.

    Only area ROIs with vertices (polygon, freehand, traced, rectangle) are kept.
    """
    roifile = _roifile()
    path = Path(path)
    if not path.is_file():
        raise MicrosightError(f"{path}: file not found; check the path")
    try:
        found = roifile.roiread(path)
    except Exception as exc:
        raise MicrosightError(f"{path.name} is not a readable ImageJ ROI file ({exc})") from None
    out = []
    for roi in found if isinstance(found, list) else [found]:
        xy = np.asarray(roi.coordinates(), np.float64)
        if xy.ndim != 2 or len(xy) < 3:
            continue
        plane = {a: getattr(roi, f"{a.lower()}_position") - 1 for a in "TCZ"
                 if getattr(roi, f"{a.lower()}_position", 0) > 0}
        position = roi.position - 1 if roi.position > 0 else None
        out.append(Roi(roi.name, xy[:, ::-1] - 0.5, plane, position))
    return out


def rois_to_labels(rois: Iterable[Roi], shape: tuple[int, int]) -> np.ndarray:
    """Paint the polygons of one plane into a label image (id = order + 1).

    A pixel belongs to a polygon when its centre lies inside; later ROIs win
    where they overlap.
    """
    from skimage.draw import polygon

    labels = np.zeros(shape, np.int32)
    for n, roi in enumerate(rois, start=1):
        v = np.asarray(roi.vertices, np.float64)
        rr, cc = polygon(v[:, 0], v[:, 1], shape=shape)
        labels[rr, cc] = n
    return labels
