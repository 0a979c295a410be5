"""Plain-words meanings of the metrics and table columns that reports show.

Every report's table headers carry the meaning as hover text, and the page
ends with a glossary of the terms it used, so a reader who does not know
what ``nrmse`` or ``AP@0.5`` means learns it, and which direction is better,
without leaving the report.
"""

from __future__ import annotations

import re

__all__ = ["describe", "glossary_entries", "label"]

_HIGHER, _LOWER = "Higher is better.", "Lower is better."

#: Term -> meaning; the matching in :func:`describe` ignores case, a
#: trailing ``@threshold`` and ``pooled`` / ``95% CI`` decorations.
TERMS: dict[str, str] = {
    "psnr": "Peak signal-to-noise ratio (dB): how close the image is to the target, "
            "pixel by pixel, on a log scale; +3 dB is about half the squared error. " + _HIGHER,
    "ssim": "Structural similarity (0 to 1): agreement of local brightness, contrast and "
            "structure with the target; 1 is identical. " + _HIGHER,
    "nrmse": "Normalized root-mean-square error: the typical pixel error as a fraction of "
             "the target's intensity range; 0 is perfect. " + _LOWER,
    "rmse": "Root-mean-square error: the typical distance between prediction and truth "
            "(pixels, or nm for localizations). " + _LOWER,
    "rmse_lateral": "Lateral RMSE (nm): typical in-plane distance between a matched "
                    "localization and its true emitter. " + _LOWER,
    "rmse_axial": "Axial RMSE (nm): typical error in depth of matched localizations. "
                  + _LOWER,
    "mae": "Mean absolute error: the average size of the pixel error. " + _LOWER,
    "nmse": "Normalized mean-square error of a reconstruction after the best gain. " + _LOWER,
    "rse": "Resolution-scaled error (SQUIRREL): the error left after blurring the image "
           "to the target's resolution and fitting gain and offset; large values point "
           "at artefacts. " + _LOWER,
    "rsp": "Resolution-scaled Pearson correlation (SQUIRREL, -1 to 1): agreement with the "
           "target after the same blur and fit. " + _HIGHER,
    "pearson": "Pearson correlation (-1 to 1) of the pixel values with the target. "
               + _HIGHER,
    "ap": "Average precision at an IoU threshold t (AP@t): matched objects / (matched + "
          "missed + false objects), where a predicted object matches a true one when their "
          "overlap (IoU) is at least t. " + _HIGHER,
    "f1": "F1 score (0 to 1): the balance of precision and recall of the objects or spots; "
          "1 means every object found and nothing extra. " + _HIGHER,
    "pq": "Panoptic quality (0 to 1): F1 of the objects times the mean overlap of the "
          "matched ones. " + _HIGHER,
    "precision": "Precision (0 to 1): the share of the predicted objects that are real. "
                 + _HIGHER,
    "recall": "Recall (0 to 1): the share of the real objects that were found. " + _HIGHER,
    "mean_matched_iou": "Mean IoU of the matched objects: how well the outlines of found "
                        "objects agree with the truth. " + _HIGHER,
    "iou": "Intersection over union (0 to 1): overlap of two regions divided by their "
           "combined area. " + _HIGHER,
    "mean_iou": "Mean IoU (0 to 1) of each class region with its true region. " + _HIGHER,
    "mean_dice": "Mean Dice coefficient (0 to 1) of each class region with its true region. "
                 + _HIGHER,
    "jaccard": "Jaccard index in % (0 to 100): matched localizations / (matched + missed + "
               "false); the localization version of AP. " + _HIGHER,
    "efficiency_lateral": "Localization efficiency (%): combines the Jaccard index and the "
                          "lateral RMSE into one score (Sage et al. 2019). " + _HIGHER,
    "tp": "Number of true positives: found objects that match a real one. More is better.",
    "fp": "Number of false positives: found objects with no real counterpart. Fewer is better.",
    "fn": "Number of false negatives: real objects that were missed. Fewer is better.",
    "frc_resolution": "Fourier ring correlation resolution (nm): the finest detail that is "
                      "consistent with the reference. " + _LOWER,
    "accuracy": "Accuracy: the share of samples put in the right class. " + _HIGHER,
    "balanced_accuracy": "Balanced accuracy: accuracy averaged over classes, so rare "
                         "classes count as much as common ones. " + _HIGHER,
    "macro_f1": "Macro F1: the F1 score averaged over classes. " + _HIGHER,
    "ece": "Expected calibration error: the gap between how sure the model says it is and "
           "how often it is right. " + _LOWER,
    "silhouette": "Silhouette (-1 to 1): how much closer samples lie to their own group than "
                  "to the others in the embedding. " + _HIGHER,
    "knn_accuracy": "Nearest-neighbour accuracy: how often a sample's closest neighbours in "
                    "the embedding share its class. " + _HIGHER,
    "adjusted_rand": "Adjusted Rand index (-1 to 1): agreement of the clusters found in the "
                     "embedding with the known classes; 0 is chance. " + _HIGHER,
    "nmi": "Normalized mutual information (0 to 1): how much the clusters tell about the "
           "known classes. " + _HIGHER,
    "images": "Number of test images the row is averaged over.",
    "seconds": "Time taken (seconds). " + _LOWER,
    "source": "What produced the result: the network or a classical baseline to compare "
              "it with.",
    "95% ci": "Bootstrap 95% interval of the mean over test images: the range the mean "
              "would probably fall in on other images like these (needs 3 images or more).",
}

_LABELS = {
    "pixel_sizes_um": "pixel size (µm)",
    "item_names": "items",
    "val_items": "validation items",
    "best_epoch": "best epoch",
    "best_val_loss": "best validation loss",
    "best_val_psnr": "best validation PSNR (dB)",
    "epochs_run": "epochs run",
    "stopped_early": "stopped early",
    "baseline_check": "baseline check",
    "val_frames": "validation frames",
}


def _key(column: str) -> str:
    """``column`` reduced to a glossary key: no @threshold, pooled or CI decoration."""
    key = column.strip().lower()
    key = re.sub(r"^(pooled|mean)\s+", "", key)
    key = re.sub(r"\s*95% ci$", "", key)
    key = re.sub(r"@[\d.]+", "", key)
    key = re.sub(r"\s*\((px|um|µm|nm|db)\)$", "", key)
    return key.strip()


def describe(column: str) -> str | None:
    """The plain-words meaning of a table column, or None if it is not a known term.

    Parameters
    ----------
    column : str
        A column or metric name as shown, e.g. ``"ap@0.5 95% CI"`` or ``"pooled f1@0.5"``.

    Returns
    -------
    str or None
    """
    if column.strip().lower().endswith("95% ci"):
        base = TERMS.get(_key(column))
        interval = TERMS["95% ci"]
        return f"{interval} {base}" if base else interval
    return TERMS.get(_key(column))


def glossary_entries(columns: list[str]) -> dict[str, str]:
    """Glossary entries (term -> meaning) of the known terms among ``columns``.

    Parameters
    ----------
    columns : list of str
        Column names as shown in the report's tables.

    Returns
    -------
    dict of str to str
        In first-seen order; ``AP@0.5`` and ``AP@0.75`` share one ``AP@t`` entry.
    """
    out: dict[str, str] = {}
    for column in columns:
        key = _key(column)
        if key in TERMS:
            name = f"{key}@t" if "@" in column else key
            out.setdefault(name, TERMS[key])
        if column.lower().endswith("95% ci"):
            out.setdefault("95% CI", TERMS["95% ci"])
    return out


def label(key: str) -> str:
    """A readable label for a setting or fact name (``pixel_sizes_um`` -> ``pixel size (µm)``).

    Parameters
    ----------
    key : str
        The name as stored.

    Returns
    -------
    str
    """
    return _LABELS.get(key, key.replace("_", " "))
