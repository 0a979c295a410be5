"""Classification metrics: accuracy, balanced accuracy, per-class precision/recall, confusion.

Pure numpy: labels are integer class indices ``0 .. n_classes-1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Counts ``(n_classes, n_classes)``: rows are true classes, columns predicted ones."""
    t = np.asarray(y_true, np.int64).ravel()
    p = np.asarray(y_pred, np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes)


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Share of correct predictions (nan for no samples)."""
    t, p = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    return float(np.mean(t == p)) if t.size else float("nan")


def balanced_accuracy(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> float:
    """Mean recall over the classes present in ``y_true`` (rare classes count as much)."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    support = cm.sum(axis=1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(cm)[present] / support[present]))


def per_class_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                      class_names: Sequence[str]) -> list[dict[str, float | str | int]]:
    """One row per class: support, precision, recall and F1 (nan where undefined)."""
    n = len(class_names)
    cm = confusion_matrix(y_true, y_pred, n).astype(np.float64)
    tp = np.diag(cm)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(support > 0, tp / support, np.nan)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall),
                      np.nan)
    return [{"class": str(name), "support": int(support[i]), "predicted": int(predicted[i]),
             "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i])}
            for i, name in enumerate(class_names)]


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int
                           ) -> dict[str, float]:
    """Accuracy, balanced accuracy and macro F1 over classes present in ``y_true``."""
    rows = per_class_metrics(y_true, y_pred, [str(i) for i in range(n_classes)])
    f1 = [r["f1"] if np.isfinite(r["f1"]) else 0.0 for r in rows if r["support"]]
    return {"accuracy": accuracy(y_true, y_pred),
            "balanced_accuracy": balanced_accuracy(y_true, y_pred, n_classes),
            "macro_f1": float(np.mean(f1)) if f1 else float("nan")}
