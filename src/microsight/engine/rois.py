"""Segmentation results as ImageJ/Fiji ROI sets: one outline polygon per object and plane.

The outlines are those of the GeoJSON export (:func:`microsight.data.shapes.label_outlines`):
the iso-contour at 0.5 of each object's mask, so that painting each polygon's
inside pixels gives the object back.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from microsight.config import get_method
from microsight.data.shapes import label_outlines
from microsight.errors import MicrosightError
from microsight.io import read_image
from microsight.io.rois import Roi, is_roi_set, write_rois


def label_rois(labels: np.ndarray, axes: str) -> list[Roi]:
    """Outline ROIs of every object in every YX plane of a label image.

    Parameters
    ----------
    labels : numpy.ndarray
        Label image (0 = background) whose last two axes are Y and X.
    axes : str
        Its axes, e.g. ``YX``, ``ZYX`` or ``TZYX``.

    Returns
    -------
    list of Roi
        Named by object id (and plane, e.g. ``0012-z03``), in plane order. With one
        axis before Y and X the ROI is put on that stack slice; with several, on
        its hyperstack position (T, C, Z).
    """
    labels = np.asarray(labels)
    if axes[-2:] != "YX" or len(axes) != labels.ndim:
        raise MicrosightError(f"ROI sets need a label image ending in YX, got axes {axes}")
    lead = axes[:-2]
    rois = []
    for index in itertools.product(*(range(s) for s in labels.shape[:-2])):
        plane = dict(zip(lead, index, strict=True))
        suffix = "".join(f"-{a.lower()}{i:02d}" for a, i in plane.items())
        position = index[0] if len(index) == 1 else None
        for oid, verts in label_outlines(labels[index]).items():
            rois.append(Roi(f"{oid:04d}{suffix}", verts, plane if len(index) > 1 else {},
                            position))
    return rois


def check_rois_request(model: Any, path: str | Path) -> None:
    """Refuse an ROI set before predicting: a non-segmentation model or a non-zip name."""
    if "labels" not in get_method(model.method).outputs:
        raise MicrosightError(f"--rois needs a segmentation model (label image output); "
                              f"method {model.method} does not make objects")
    if not is_roi_set(path):
        raise MicrosightError(f"{Path(path).name}: an ImageJ ROI set is a .zip; name it e.g. "
                              "cells.roi.zip")


def write_prediction_rois(result: Any, image_axes: str, out: str | Path | None,
                          path: str | Path) -> Path:
    """Write the ROI set of a segmentation prediction (returned labels or the file ``out``)."""
    if out is None:
        labels, axes = np.asarray(result), image_axes.replace("C", "")
    else:
        written = read_image(out)
        labels, axes = written.numpy(), written.axes
    return write_rois(path, label_rois(labels, axes))
