"""Point-detection metrics: one-to-one matching within a distance tolerance.

Predicted and true points are matched by the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``): the largest number of pairs
closer than the tolerance, and among those the smallest total distance. A
matched prediction is a true positive, an unmatched prediction a false
positive, an unmatched true point a false negative.

Conventions for empty sets: precision is 1 when nothing is predicted, recall
is 1 when there is nothing to find, F1 is 1 when both are empty.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree


def match_points(pred: np.ndarray, true: np.ndarray, tolerance: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Match predicted to true points one-to-one within ``tolerance``.

    Parameters
    ----------
    pred, true : numpy.ndarray
        ``(N, D)`` and ``(M, D)`` coordinates.
    tolerance : float
        Largest distance (inclusive) of a matched pair.

    Returns
    -------
    pred_idx, true_idx : numpy.ndarray
        Indices of the matched pairs.
    """
    empty = np.zeros(0, np.int64)
    if len(pred) == 0 or len(true) == 0:
        return empty, empty
    pred = np.asarray(pred, np.float64).reshape(len(pred), -1)
    true = np.asarray(true, np.float64).reshape(len(true), -1)
    dist = cKDTree(pred).sparse_distance_matrix(cKDTree(true), tolerance,
                                                output_type="coo_matrix")
    # Zero distances are dropped by sparse matrices: find them explicitly.
    zero = cKDTree(pred).query_ball_tree(cKDTree(true), 0.0)
    rows = list(dist.row) + [i for i, js in enumerate(zero) for _ in js]
    cols = list(dist.col) + [j for js in zero for j in js]
    vals = list(dist.data) + [0.0] * (len(rows) - len(dist.row))
    if not rows:
        return empty, empty
    n, m = len(pred), len(true)
    # Bipartite graph of candidate pairs, split into independent components.
    graph = coo_matrix((np.ones(len(rows)), (rows, np.asarray(cols) + n)), shape=(n + m, n + m))
    _, comp = connected_components(graph, directed=False)
    big = 1e6 * (tolerance + 1) * max(n, m)
    pi_all, ti_all = [], []
    rows, cols, vals = np.asarray(rows), np.asarray(cols), np.asarray(vals)
    for label in np.unique(comp[rows]):
        p_ids = np.flatnonzero(comp[:n] == label)
        t_ids = np.flatnonzero(comp[n:] == label)
        cost = np.full((len(p_ids), len(t_ids)), big)
        sel = comp[rows] == label
        cost[np.searchsorted(p_ids, rows[sel]), np.searchsorted(t_ids, cols[sel])] = vals[sel]
        r, c = linear_sum_assignment(cost)
        ok = cost[r, c] < big
        pi_all.append(p_ids[r[ok]])
        ti_all.append(t_ids[c[ok]])
    return np.concatenate(pi_all).astype(np.int64), np.concatenate(ti_all).astype(np.int64)


def scores_from_counts(tp: int, n_pred: int, n_true: int) -> dict[str, float]:
    """Precision, recall and F1 from counts (see the module's empty-set conventions)."""
    precision = tp / n_pred if n_pred else 1.0
    recall = tp / n_true if n_true else 1.0
    f1 = 2 * tp / (n_pred + n_true) if (n_pred + n_true) else 1.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "tp": int(tp), "fp": int(n_pred - tp), "fn": int(n_true - tp)}


def detection_scores(pred: np.ndarray, true: np.ndarray, tolerance: float, *,
                     pred_classes: np.ndarray | None = None,
                     true_classes: np.ndarray | None = None) -> dict:
    """Precision, recall and F1 at ``tolerance``, overall and per class.

    With classes, points only match points of the same class; the overall
    counts are the sums over classes and ``per_class`` maps each class to its
    own scores.

    Returns
    -------
    dict
        ``precision, recall, f1, tp, fp, fn`` and ``per_class``.
    """
    pred = np.asarray(pred, np.float64)
    true = np.asarray(true, np.float64)
    dim = pred.shape[-1] if pred.size else (true.shape[-1] if true.size else 2)
    pred, true = pred.reshape(-1, dim), true.reshape(-1, dim)
    pc = np.zeros(len(pred), np.int64) if pred_classes is None else np.asarray(
        pred_classes, np.int64).reshape(-1)
    tc = np.zeros(len(true), np.int64) if true_classes is None else np.asarray(
        true_classes, np.int64).reshape(-1)
    per_class, tp_total = {}, 0
    for c in sorted(set(pc.tolist()) | set(tc.tolist())):
        p, t = pred[pc == c], true[tc == c]
        tp = len(match_points(p, t, tolerance)[0])
        tp_total += tp
        per_class[int(c)] = scores_from_counts(tp, len(p), len(t))
    return {**scores_from_counts(tp_total, len(pred), len(true)), "per_class": per_class}


def pooled_scores(results: list[dict]) -> dict[str, float]:
    """Precision, recall, F1 from counts summed over images (micro average)."""
    tp = sum(r["tp"] for r in results)
    n_pred = tp + sum(r["fp"] for r in results)
    n_true = tp + sum(r["fn"] for r in results)
    return scores_from_counts(tp, n_pred, n_true)
