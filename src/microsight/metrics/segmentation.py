"""Instance and semantic segmentation metrics (pure numpy/scipy).

Instance matching follows the conventions of ``stardist.matching`` (Schmidt et
al. 2018; Caicedo et al. 2019): objects are matched one-to-one by their
intersection over union (IoU); a match counts as a true positive when its IoU
reaches the threshold. Above 0.5 a match is unique by construction (two objects
cannot both overlap a third by more than half of their union), below it the
assignment maximizing the summed IoU is found with the Hungarian algorithm.

Scores at one threshold: TP/FP/FN, precision, recall, F1, average precision in
the sense of the Data Science Bowl and StarDist, ``AP = TP / (TP + FP + FN)``,
mean IoU of the matched pairs and panoptic quality
``PQ = sum(IoU of matches) / (TP + FP/2 + FN/2)`` (Kirillov et al. 2019).
Data-set scores pool the counts (and matched IoUs) over images.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

#: The IoU thresholds of the StarDist / DSB protocol.
DEFAULT_THRESHOLDS = tuple(round(0.1 * k, 1) for k in range(1, 10))


def _relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Consecutive ids 1..n (0 stays background) and n."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        if np.any(labels != np.round(labels)):
            raise ValueError("label images must hold whole numbers")
        labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError("label images must be >= 0")
    ids, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(labels.shape)
    if ids.size and ids[0] == 0:
        return inverse, len(ids) - 1
    return inverse + 1, len(ids)


def overlap_counts(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Pixels shared by every ground-truth object (rows) and predicted object (columns).

    Parameters
    ----------
    true, pred : numpy.ndarray
        Label images of the same shape (0 = background, ids need not be consecutive).

    Returns
    -------
    numpy.ndarray
        ``(n_true + 1, n_pred + 1)`` int64 counts; row and column 0 are the
        background, the others the objects with ids in increasing order.
    """
    true, pred = np.asarray(true), np.asarray(pred)
    if true.shape != pred.shape:
        raise ValueError(f"label images differ in shape: {true.shape} vs {pred.shape}")
    t, n_t = _relabel(true)
    p, n_p = _relabel(pred)
    return np.bincount((t.ravel().astype(np.int64) * (n_p + 1) + p.ravel()),
                       minlength=(n_t + 1) * (n_p + 1)).reshape(n_t + 1, n_p + 1)


def iou_matrix(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of every ground-truth object (rows) with every predicted object (columns).

    Parameters
    ----------
    true, pred : numpy.ndarray
        Label images of the same shape (0 = background, ids need not be consecutive).
        Ids are taken in increasing order.

    Returns
    -------
    numpy.ndarray
        ``(n_true, n_pred)`` float64 matrix.
    """
    overlap = overlap_counts(true, pred)
    area_t = overlap.sum(axis=1, keepdims=True)
    area_p = overlap.sum(axis=0, keepdims=True)
    union = area_t + area_p - overlap
    iou = np.divide(overlap, union, out=np.zeros(overlap.shape, np.float64), where=union > 0)
    return iou[1:, 1:]


def match_ious(iou: np.ndarray, threshold: float) -> np.ndarray:
    """IoUs of the one-to-one matches reaching ``threshold``.

    Parameters
    ----------
    iou : numpy.ndarray
        ``(n_true, n_pred)`` IoU matrix.
    threshold : float
        Smallest IoU of a match, in (0, 1].

    Returns
    -------
    numpy.ndarray
        The IoU of each matched pair (its length is the number of true positives).
    """
    if iou.size == 0:
        return np.zeros(0)
    if threshold > 0.5:
        # Unique without an assignment: IoU > 0.5 with one object excludes any other.
        return iou[iou >= threshold]
    candidate = iou >= threshold
    rows = np.flatnonzero(candidate.any(axis=1))
    cols = np.flatnonzero(candidate.any(axis=0))
    if len(rows) == 0:
        return np.zeros(0)
    sub = np.where(candidate[np.ix_(rows, cols)], iou[np.ix_(rows, cols)], 0.0)
    r, c = linear_sum_assignment(sub, maximize=True)
    matched = sub[r, c]
    return matched[matched >= threshold]


def matched_pairs(true: np.ndarray, pred: np.ndarray, threshold: float = 0.5
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Ids of the objects matched one-to-one at an IoU threshold (as :func:`matching` counts).

    Parameters
    ----------
    true, pred : numpy.ndarray
        Label images of the same shape (0 = background).
    threshold : float
        Smallest IoU of a match, in (0, 1].

    Returns
    -------
    true_ids, pred_ids : numpy.ndarray
        The label ids of each matched pair; every other object is a miss
        (true) or a false positive (predicted).
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"IoU thresholds must lie in (0, 1], got {threshold}")
    iou = iou_matrix(true, pred)
    ids_t = np.unique(true[true > 0])
    ids_p = np.unique(pred[pred > 0])
    if iou.size == 0:
        return ids_t[:0], ids_p[:0]
    if threshold > 0.5:
        r, c = np.nonzero(iou >= threshold)
    else:
        candidate = np.where(iou >= threshold, iou, 0.0)
        r, c = linear_sum_assignment(candidate, maximize=True)
        keep = candidate[r, c] >= threshold
        r, c = r[keep], c[keep]
    return ids_t[r], ids_p[c]


def scores_from_counts(tp: int, fp: int, fn: int, iou_sum: float) -> dict[str, float]:
    """Precision, recall, F1, AP, mean matched IoU and PQ from counts.

    With nothing to find and nothing found every score is 1 (a perfect result);
    a ratio whose denominator is otherwise 0 is 0.
    """
    def ratio(a: float, b: float) -> float:
        return float(a / b) if b > 0 else 0.0

    if tp + fp + fn == 0:
        perfect = {k: 1.0 for k in ("precision", "recall", "f1", "ap", "mean_matched_iou", "pq")}
        return {"tp": 0, "fp": 0, "fn": 0, **perfect}
    return {
        "tp": int(tp), "fp": int(fp), "fn": int(fn),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "ap": ratio(tp, tp + fp + fn),
        "mean_matched_iou": ratio(iou_sum, tp),
        "pq": ratio(iou_sum, tp + fp / 2 + fn / 2),
    }


def matching(true: np.ndarray, pred: np.ndarray,
             thresholds: float | Sequence[float] = DEFAULT_THRESHOLDS
             ) -> dict[float, dict[str, float]]:
    """Match the objects of two label images at one or several IoU thresholds.

    Parameters
    ----------
    true, pred : numpy.ndarray
        Ground-truth and predicted label images (2D or 3D, 0 = background).
    thresholds : float or sequence of float
        IoU thresholds (default 0.1, 0.2, ..., 0.9).

    Returns
    -------
    dict
        Threshold -> scores (``tp``, ``fp``, ``fn``, ``precision``, ``recall``,
        ``f1``, ``ap``, ``mean_matched_iou``, ``pq``) plus ``iou_sum``,
        ``n_true`` and ``n_pred`` (used to pool images).
    """
    iou = iou_matrix(true, pred)
    n_true, n_pred = iou.shape
    out = {}
    for thr in np.atleast_1d(thresholds):
        thr = float(thr)
        if not 0 < thr <= 1:
            raise ValueError(f"IoU thresholds must lie in (0, 1], got {thr}")
        matched = match_ious(iou, thr)
        tp = len(matched)
        s = scores_from_counts(tp, n_pred - tp, n_true - tp, float(matched.sum()))
        out[thr] = {**s, "iou_sum": float(matched.sum()), "n_true": n_true, "n_pred": n_pred}
    return out


def pool_matching(results: Iterable[dict[float, dict[str, float]]]
                  ) -> dict[float, dict[str, float]]:
    """Data-set scores: counts and matched IoUs summed over images, then scored."""
    total: dict[float, list[float]] = {}
    for res in results:
        for thr, s in res.items():
            acc = total.setdefault(thr, [0, 0, 0, 0.0])
            acc[0] += s["tp"]
            acc[1] += s["fp"]
            acc[2] += s["fn"]
            acc[3] += s["iou_sum"]
    return {thr: {**scores_from_counts(tp, fp, fn, iou_sum), "iou_sum": iou_sum}
            for thr, (tp, fp, fn, iou_sum) in sorted(total.items())}


def matching_dataset(trues: Sequence[np.ndarray], preds: Sequence[np.ndarray],
                     thresholds: float | Sequence[float] = DEFAULT_THRESHOLDS
                     ) -> dict[float, dict[str, float]]:
    """:func:`matching` pooled over a data set (counts summed over images)."""
    if len(trues) != len(preds):
        raise ValueError(f"{len(trues)} ground-truth but {len(preds)} predicted label images")
    return pool_matching(matching(t, p, thresholds) for t, p in zip(trues, preds, strict=True))


def semantic_scores(true: np.ndarray, pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """Per-class IoU and Dice of two class maps, and their means over foreground classes.

    Parameters
    ----------
    true, pred : numpy.ndarray
        Integer class maps (0 = background) of the same shape.
    n_classes : int
        Number of classes including background.

    Returns
    -------
    dict
        ``iou class k`` / ``dice class k`` for every class, ``mean_iou`` and
        ``mean_dice`` over classes 1..n-1, and the pixel ``accuracy``. A class
        absent from both maps scores 1.
    """
    true = np.asarray(true, np.int64).ravel()
    pred = np.asarray(pred, np.int64).ravel()
    if true.shape != pred.shape:
        raise ValueError("class maps differ in shape")
    conf = np.bincount(true * n_classes + pred, minlength=n_classes ** 2)
    conf = conf[: n_classes ** 2].reshape(n_classes, n_classes)
    inter = np.diag(conf).astype(np.float64)
    area_t, area_p = conf.sum(axis=1), conf.sum(axis=0)
    union = area_t + area_p - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    dice = np.where(area_t + area_p > 0, 2 * inter / np.maximum(area_t + area_p, 1), 1.0)
    out = {"accuracy": float(inter.sum() / max(true.size, 1))}
    for k in range(n_classes):
        out[f"iou class {k}"] = float(iou[k])
        out[f"dice class {k}"] = float(dice[k])
    fg = slice(1, None) if n_classes > 1 else slice(None)
    out["mean_iou"] = float(np.mean(iou[fg]))
    out["mean_dice"] = float(np.mean(dice[fg]))
    return out
