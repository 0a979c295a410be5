"""ImageJ ROI sets: written with roifile, opened by roifile, and painted back to the labels."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from microsight.engine.rois import label_rois
from microsight.errors import MicrosightError
from microsight.io.rois import read_rois, rois_to_labels, write_rois

roifile = pytest.importorskip("roifile")


def _objects(shape=(64, 80), seed=0) -> np.ndarray:
    """Disks, an ellipse, a concave L, a one-pixel-wide bar and an object on the border."""
    from skimage.draw import disk, ellipse

    labels = np.zeros(shape, np.int32)
    rng = np.random.default_rng(seed)
    # One disk per quadrant of the upper half, so that none cuts another in pieces.
    for i, (y, x) in enumerate([(14, 14), (14, 34), (30, 40), (36, 62)], start=1):
        rr, cc = disk((y + rng.uniform(-2, 2), x + rng.uniform(-2, 2)), rng.uniform(3, 6.5),
                      shape=shape)
        labels[rr, cc] = i
    rr, cc = ellipse(50, 20, 5, 11, shape=shape, rotation=0.6)
    labels[rr, cc] = 5
    labels[2:12, 60:63] = 6
    labels[9:12, 63:72] = 6
    labels[30, 2:14] = 7
    labels[0:5, 0:6] = 8
    return labels


def _ious(a: np.ndarray, b: np.ndarray) -> dict[int, float]:
    out = {}
    for i in np.unique(a)[1:]:
        m, n = a == i, b == i
        out[int(i)] = (m & n).sum() / (m | n).sum()
    return out


def test_roi_set_opens_with_roifile_and_round_trips(tmp_path):
    labels = _objects()
    path = write_rois(tmp_path / "cells.roi.zip", label_rois(labels, "YX"))
    assert zipfile.is_zipfile(path)
    opened = roifile.roiread(path)
    assert len(opened) == labels.max()
    assert all(r.subpixel_coordinates is not None for r in opened)
    assert [r.name for r in opened] == [f"{i:04d}" for i in range(1, 9)]
    back = rois_to_labels(read_rois(path), labels.shape)
    ious = _ious(labels, back)
    assert min(ious.values()) == pytest.approx(1.0), ious


def test_stack_rois_carry_their_plane(tmp_path):
    stack = np.stack([_objects(seed=0), np.zeros((64, 80), np.int32), _objects(seed=3)])
    rois = label_rois(stack, "ZYX")
    path = write_rois(tmp_path / "stack.zip", rois)
    read = read_rois(path)
    assert {r.position for r in read} == {0, 2}
    for z in (0, 2):
        plane = [r for r in read if r.position == z]
        assert all(r.name.endswith(f"-z{z:02d}") for r in plane)
        back = rois_to_labels(plane, stack.shape[1:])
        assert min(_ious(stack[z], back).values()) == pytest.approx(1.0)
    hyper = label_rois(stack[None], "TZYX")
    assert {(r.plane["T"], r.plane["Z"]) for r in hyper} == {(0, 0), (0, 2)}
    opened = roifile.roiread(write_rois(tmp_path / "hyper.zip", hyper))
    assert {(r.t_position, r.z_position) for r in opened} == {(1, 1), (1, 3)}


def test_empty_labels_and_bad_names(tmp_path):
    path = write_rois(tmp_path / "none.zip", label_rois(np.zeros((8, 8), np.int32), "YX"))
    assert zipfile.ZipFile(path).namelist() == []
    with pytest.raises(MicrosightError, match=r"\.zip"):
        write_rois(tmp_path / "cells.roi", [])
    with pytest.raises(MicrosightError, match="ending in YX"):
        label_rois(np.zeros((4, 4, 4), np.int32), "YXZ")
