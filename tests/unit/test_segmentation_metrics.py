"""Instance matching metrics against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from microsight.metrics.segmentation import (
    iou_matrix,
    matching,
    matching_dataset,
    semantic_scores,
)


def squares(*boxes: tuple[int, int, int, int], shape=(20, 20)) -> np.ndarray:
    lab = np.zeros(shape, np.int32)
    for i, (y0, y1, x0, x1) in enumerate(boxes, start=1):
        lab[y0:y1, x0:x1] = i
    return lab


def test_identical_labels_match_perfectly() -> None:
    lab = squares((0, 4, 0, 4), (10, 15, 10, 15))
    s = matching(lab, lab * 3, 0.9)[0.9]  # ids differ, objects do not
    assert (s["tp"], s["fp"], s["fn"]) == (2, 0, 0)
    assert s["ap"] == s["f1"] == s["pq"] == s["mean_matched_iou"] == 1.0


def test_empty_prediction_and_empty_truth() -> None:
    lab = squares((0, 4, 0, 4), (10, 15, 10, 15), (5, 8, 5, 8))
    empty = np.zeros_like(lab)
    s = matching(lab, empty, 0.5)[0.5]
    assert (s["tp"], s["fp"], s["fn"]) == (0, 0, 3)
    assert s["recall"] == s["ap"] == s["precision"] == 0.0
    s = matching(empty, lab, 0.5)[0.5]
    assert (s["tp"], s["fp"], s["fn"]) == (0, 3, 0)
    assert s["precision"] == 0.0
    s = matching(empty, empty, 0.5)[0.5]
    assert s["ap"] == 1.0 and s["tp"] + s["fp"] + s["fn"] == 0


def test_partial_overlap_iou_by_hand() -> None:
    true = squares((0, 4, 0, 4))              # 16 px
    pred = squares((0, 4, 2, 6))              # 16 px, 8 shared -> IoU 8 / 24
    assert iou_matrix(true, pred)[0, 0] == pytest.approx(1 / 3)
    res = matching(true, pred, (0.3, 0.5))
    assert res[0.3]["tp"] == 1 and res[0.3]["mean_matched_iou"] == pytest.approx(1 / 3)
    # PQ = IoU sum / (TP + FP/2 + FN/2) = (1/3) / 1
    assert res[0.3]["pq"] == pytest.approx(1 / 3)
    assert (res[0.5]["tp"], res[0.5]["fp"], res[0.5]["fn"]) == (0, 1, 1)
    assert res[0.5]["ap"] == 0.0


def test_one_truth_split_into_two_predictions() -> None:
    true = squares((0, 4, 0, 8))                       # 32 px
    pred = squares((0, 4, 0, 4), (0, 4, 4, 8))         # two halves, IoU 0.5 each
    res = matching(true, pred, (0.4, 0.5, 0.6))
    # Low thresholds: Hungarian, one-to-one: one half matches, the other is a FP.
    for thr in (0.4, 0.5):
        assert (res[thr]["tp"], res[thr]["fp"], res[thr]["fn"]) == (1, 1, 0)
        assert res[thr]["ap"] == pytest.approx(0.5)
        assert res[thr]["f1"] == pytest.approx(2 / 3)
    assert (res[0.6]["tp"], res[0.6]["fp"], res[0.6]["fn"]) == (0, 2, 1)


def test_hungarian_prefers_the_better_assignment() -> None:
    # Greedy on the largest IoU would pair t1-p1 and leave t2 unmatched at 0.3.
    true = squares((0, 10, 0, 10), (0, 10, 10, 14))
    pred = squares((0, 10, 3, 13), (0, 10, 0, 3))
    iou = iou_matrix(true, pred)
    assert iou[0, 0] > iou[0, 1] and iou[1, 0] > 0.2
    s = matching(true, pred, 0.2)[0.2]
    assert s["tp"] == 2


def test_dataset_pools_counts() -> None:
    a = squares((0, 4, 0, 4), (10, 14, 10, 14))
    b = squares((0, 4, 0, 4))
    res = matching_dataset([a, b], [a, np.zeros_like(b)], (0.5,))[0.5]
    assert (res["tp"], res["fp"], res["fn"]) == (2, 0, 1)
    assert res["ap"] == pytest.approx(2 / 3)
    # Mean over images would be (1 + 0) / 2: pooling differs on purpose.


def test_semantic_scores() -> None:
    true = np.array([[0, 1, 1, 2]])
    pred = np.array([[0, 1, 2, 2]])
    s = semantic_scores(true, pred, 3)
    assert s["iou class 1"] == pytest.approx(0.5)
    assert s["iou class 2"] == pytest.approx(0.5)
    assert s["dice class 1"] == pytest.approx(2 / 3)
    assert s["accuracy"] == pytest.approx(0.75)
    assert s["mean_iou"] == pytest.approx(0.5)
