"""What every image-restoration method shares: paired data, metrics, baselines, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from microsight.config import Configuration
from microsight.data.baselines import (
    Baseline,
    gaussian_baseline,
    nlm_baseline,
    richardson_lucy_baseline,
)
from microsight.data.pairs import TrainingSet
from microsight.engine.training import prepare_supervised
from microsight.errors import MicrosightError
from microsight.metrics import affine_match, percentile_normalize, restoration_metrics
from microsight.metrics.resolution import decorrelation_resolution
from microsight.metrics.squirrel import resolution_scaled_error


def on_target_scale(image: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``image`` on the normalized target's intensity scale, so both share a display range.

    Least-squares range matching when the grids agree (as the metrics compare
    them), else percentile normalization.
    """
    if image.shape == target.shape:
        return affine_match(image, target)
    return percentile_normalize(image)


def resolution_comment(prediction: float | None, target: float | None) -> str:
    """Words on a prediction whose resolution estimate is finer than its ground truth's."""
    if prediction is None or target is None or not np.isfinite([prediction, target]).all():
        return ""
    if prediction < 0.9 * target:
        return ("finer than the ground truth: likely noise or invented detail, not real "
                "resolution")
    return ""


class RestorationMixin:
    """Hooks of image-to-image restoration methods used by training and evaluation."""

    report_family = "restoration"
    val_metrics = ("val_psnr",)

    @classmethod
    def prepare_training(cls, config: Configuration, input_path: str | Path,
                         target_path: str | Path | None, axes: str | None = None
                         ) -> tuple[TrainingSet, dict[str, Any]]:
        """Load and normalize training pairs (input -> target)."""
        return prepare_supervised(config, input_path, target_path, axes)

    @staticmethod
    def score(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
        """PSNR, SSIM, NRMSE after CARE's percentile normalization and range matching,
        and SQUIRREL's resolution-scaled error (RSE, normalized target units) and
        Pearson correlation (RSP).

        Channels-first arrays are scored channel by channel and averaged.
        """
        per_channel = []
        for p, t in zip(prediction, target, strict=True):
            m = restoration_metrics(p, t, range_match=True)
            sq = resolution_scaled_error(percentile_normalize(t), p)
            per_channel.append({**m, "rse": sq.rse, "rsp": sq.rsp})
        return {k: float(np.mean([m[k] for m in per_channel])) for k in per_channel[0]}

    @staticmethod
    def baselines(config: Configuration) -> dict[str, Baseline]:
        """Classical methods every report compares the network with."""
        return {
            "input (no restoration)": lambda x: x,
            "gaussian (sigma=1)": gaussian_baseline(),
            "non-local means": nlm_baseline(),
            "richardson-lucy (sigma=1, 10 it.)": richardson_lucy_baseline(),
        }

    @staticmethod
    def panels(input_item: np.ndarray, prediction: np.ndarray, target: np.ndarray
               ) -> dict[str, np.ndarray]:
        """Images shown side by side in the report for one item (first channel)."""
        gt = percentile_normalize(target[0])
        pred = affine_match(prediction[0], gt)
        return {"input": on_target_scale(input_item[0], gt), "prediction": pred, "target": gt,
                "|prediction - target|": np.abs(pred - gt),
                "resolution-scaled error": resolution_scaled_error(gt, prediction[0]).error_map}

    @classmethod
    def report_sections(cls, report: Any, context: Any) -> None:
        """Examples and per-image metrics, then the resolution of the example images."""
        super().report_sections(report, context)  # type: ignore[misc]
        pixel = context.pixel_size
        scale = int(context.model.module.output_scale)
        rows = []
        for name, images in context.panels:
            row: dict[str, Any] = {"image": name}
            for key in ("input", "prediction", "target"):
                if key in images:
                    try:
                        res = decorrelation_resolution(images[key])
                    except MicrosightError:  # too small (e.g. a thin stack)
                        res = float("nan")
                    row[f"{key} (px)"] = res
                    if pixel:
                        # Predictions and targets of super-resolution lie on a finer grid.
                        row[f"{key} (um)"] = res * pixel / (1 if key == "input" else scale)
            row["comment"] = resolution_comment(row.get("prediction (px)"),
                                                row.get("target (px)"))
            rows.append(row)
        if rows:
            report.add_table(
                "Resolution (decorrelation analysis)", rows,
                note="Single-image resolution estimate (Descloux et al. 2019): the period of the "
                     "highest spatial frequency still above the noise; smaller is finer. A "
                     "prediction cannot be truly sharper than its ground truth. RSE/RSP columns "
                     "of the metric tables: SQUIRREL resolution-scaled error and Pearson "
                     "correlation after the best blur, gain and offset (Culley et al. 2018).",
                missing="no signal peak was found (too little structure above the noise)")
