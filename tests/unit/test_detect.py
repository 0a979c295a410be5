"""Point detection building blocks: matching, NMS, peaks, heat-maps, point tables."""

from __future__ import annotations

import numpy as np
import pytest

from microsight.data.points import (
    coords,
    find_peaks,
    heatmap,
    label_centroids,
    make_points,
    nms,
    object_heatmap,
    read_points,
    write_points,
)
from microsight.errors import MicrosightError
from microsight.metrics.detection import detection_scores, match_points, pooled_scores


def test_match_exact_and_tolerance():
    pred = np.array([[10, 10], [20, 20], [50, 50]])
    true = np.array([[10, 13], [20, 20], [80, 80]])
    pi, ti = match_points(pred, true, 5.0)
    assert sorted(zip(pi.tolist(), ti.tolist(), strict=True)) == [(0, 0), (1, 1)]
    s = detection_scores(pred, true, 5.0)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 1, 1)
    assert s["precision"] == pytest.approx(2 / 3) and s["f1"] == pytest.approx(2 / 3)
    # Tolerance is inclusive; just beyond it nothing matches.
    assert detection_scores([[0, 0]], [[0, 5]], 5.0)["tp"] == 1
    assert detection_scores([[0, 0]], [[0, 5.01]], 5.0)["tp"] == 0


def test_empty_prediction_and_empty_truth():
    s = detection_scores(np.zeros((0, 2)), np.array([[1, 1], [5, 5]]), 3)
    assert (s["precision"], s["recall"], s["f1"], s["fn"]) == (1.0, 0.0, 0.0, 2)
    s = detection_scores(np.array([[1, 1]]), np.zeros((0, 2)), 3)
    assert (s["precision"], s["recall"], s["f1"], s["fp"]) == (0.0, 1.0, 0.0, 1)
    s = detection_scores(np.zeros((0, 2)), np.zeros((0, 2)), 3)
    assert (s["precision"], s["recall"], s["f1"]) == (1.0, 1.0, 1.0)


def test_one_point_near_two():
    # One true point between two predictions: one match, one false positive.
    s = detection_scores(np.array([[0, 0], [0, 4]]), np.array([[0, 2]]), 3)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 0)
    # Greedy nearest matching would take A-t1 and leave B unmatched; Hungarian finds 2.
    pred = np.array([[0, 1.0], [0, -3.0]])  # A near t1 (1) and t0 (3); B near t0 only
    true = np.array([[0, 0.0], [0, 2.0]])
    pi, ti = match_points(pred, true, 3.5)
    assert len(pi) == 2
    assert dict(zip(pi.tolist(), ti.tolist(), strict=True)) == {0: 1, 1: 0}


def test_per_class_matching():
    pred = np.array([[0, 0], [10, 10]])
    true = np.array([[0, 1], [10, 10]])
    s = detection_scores(pred, true, 3, pred_classes=[0, 1], true_classes=[1, 1])
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 1)
    assert s["per_class"][0]["precision"] == 0.0 and s["per_class"][1]["f1"] == pytest.approx(
        2 / 3)
    pooled = pooled_scores([s, detection_scores([[0, 0]], [[0, 0]], 1)])
    assert (pooled["tp"], pooled["fp"], pooled["fn"]) == (2, 1, 1)


def test_matching_many_points_components():
    rng = np.random.default_rng(0)
    true = rng.uniform(0, 500, (400, 2))
    pred = true + rng.normal(0, 0.5, true.shape)
    s = detection_scores(pred, true, 3)
    assert s["tp"] == 400


def test_nms_keeps_best_within_radius_across_classes():
    pts = make_points([[0, 0], [0, 2], [0, 10]], classes=[0, 1, 0], scores=[0.5, 0.9, 0.7])
    kept = nms(pts, 3.0)
    assert coords(kept).tolist() == [[0, 2], [0, 10]]
    assert kept["class"].tolist() == [1, 0]
    assert len(nms(pts, 0)) == 3 and len(nms(pts[:0], 3)) == 0


def test_heatmap_and_peaks_round_trip():
    pts = make_points([[10.3, 12.6], [30, 40], [31, 8]], classes=[0, 1, 0])
    heat = heatmap(pts, (48, 56), n_classes=2, sigma=2.0)
    assert heat.shape == (2, 48, 56) and heat.max() <= 1 and heat[1, 30, 40] == 1
    found = find_peaks(heat, threshold=0.5, min_distance=3)
    assert len(found) == 3
    s = detection_scores(coords(found), coords(pts), 0.5, pred_classes=found["class"],
                         true_classes=pts["class"])
    assert s["f1"] == 1.0
    assert len(find_peaks(np.zeros((1, 20, 20)), threshold=0.5)) == 0


def test_label_centroids():
    labels = np.zeros((20, 20), np.int32)
    labels[2:5, 2:5] = 1
    labels[10:12, 14:18] = 7
    c = coords(label_centroids(labels))
    np.testing.assert_allclose(c, [[3, 3], [10.5, 15.5]])
    assert len(label_centroids(np.zeros((5, 5), np.int32))) == 0


def test_point_table_csv(tmp_path):
    pts = make_points([[1.25, 2.5], [3, 4]], classes=[0, 2], scores=[0.9, 0.8])
    path = write_points(tmp_path / "p.csv", pts)
    back = read_points(path)
    np.testing.assert_allclose(coords(back), coords(pts))
    assert back["class"].tolist() == [0, 2]
    (tmp_path / "q.csv").write_text("Y,X\n1,2\n")
    assert read_points(tmp_path / "q.csv")["class"].tolist() == [0]
    (tmp_path / "bad.csv").write_text("row,col\n1,2\n")
    with pytest.raises(MicrosightError, match="y,x"):
        read_points(tmp_path / "bad.csv")
    assert not list(tmp_path.glob(".*tmp"))


def test_object_heatmap_one_peak_per_object_of_any_size():
    from skimage.draw import disk

    labels = np.zeros((120, 120), np.int32)
    labels[disk((40, 40), 30)] = 1  # large nucleus: a fixed sigma-2 map would be flat there
    labels[disk((100, 20), 4)] = 2
    # Two small touching objects: masking keeps their peaks apart.
    labels[disk((100, 90), 6)] = 3
    labels[disk((100, 101), 6)] = 4
    heat = object_heatmap(labels, scale=0.5, min_sigma=1.0)
    assert heat.shape == (1, 120, 120) and heat.max() <= 1
    assert np.all(heat[0][labels == 0] == 0)
    found = find_peaks(heat, threshold=0.5, min_distance=2)
    s = detection_scores(coords(found), coords(label_centroids(labels)), 1.5)
    assert (s["tp"], s["fp"], s["fn"]) == (4, 0, 0)
    # The large object's map is broad: half height about 0.5 x 1.18 x radius from its centre.
    assert heat[0, 40, 40 + 15] > 0.5 > heat[0, 40, 40 + 25]
    assert object_heatmap(np.zeros((5, 5), np.int32)).max() == 0
