"""Scores for trust checks: AUROC of an out-of-distribution score, rank correlation.

Pure numpy (no torch): used by the trust benchmark and usable on any scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats


def auroc(in_scores: Sequence[float], out_scores: Sequence[float]) -> float:
    """Area under the ROC curve of separating ``out_scores`` (positives) from ``in_scores``.

    The probability that a random out-of-distribution sample scores higher than a
    random in-distribution one (ties count one half): the Mann-Whitney U statistic
    divided by the number of pairs.

    Parameters
    ----------
    in_scores, out_scores : sequence of float
        Scores of in-distribution (negative) and out-of-distribution (positive) samples.

    Returns
    -------
    float
        AUROC in [0, 1]; 0.5 is chance.
    """
    neg = np.asarray(in_scores, np.float64).ravel()
    pos = np.asarray(out_scores, np.float64).ravel()
    if neg.size == 0 or pos.size == 0:
        raise ValueError("auroc needs at least one score on each side")
    ranks = stats.rankdata(np.concatenate([neg, pos]))
    u = ranks[neg.size:].sum() - pos.size * (pos.size + 1) / 2
    return float(u / (neg.size * pos.size))


def detection_rate(in_scores: Sequence[float], out_scores: Sequence[float],
                   threshold: float = 1.0) -> dict[str, float]:
    """Share of each side flagged by ``score > threshold``.

    Returns
    -------
    dict
        ``false_alarm_rate`` (in-distribution flagged) and ``detection_rate``
        (out-of-distribution flagged).
    """
    neg = np.asarray(in_scores, np.float64)
    pos = np.asarray(out_scores, np.float64)
    return {"false_alarm_rate": float((neg > threshold).mean()) if neg.size else float("nan"),
            "detection_rate": float((pos > threshold).mean()) if pos.size else float("nan")}


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation of two equally long arrays (flattened)."""
    x = np.asarray(a, np.float64).ravel()
    y = np.asarray(b, np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"spearman needs equal sizes, got {x.size} and {y.size}")
    return float(stats.spearmanr(x, y).statistic)
