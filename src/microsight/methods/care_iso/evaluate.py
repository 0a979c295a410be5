"""Evaluation of isotropic restoration: anisotropic stacks against isotropic ground truth.

Each input is a ZYX stack sampled ``anisotropy`` times more coarsely along Z
than its target (an isotropic acquisition of the same volume, or the same
volume before a simulated axial degradation). The network's isotropic
prediction and two classical ways of filling in the missing planes (nearest
plane and linear interpolation along Z) are scored on the whole volume with
the restoration metrics (CARE's range-matched PSNR, SSIM, NRMSE), so the
report shows what the network adds over plain interpolation. Example panels
show an XZ section, where the anisotropy is visible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from microsight.data.degrade import resample_axis
from microsight.data.pairs import load_items
from microsight.engine.bundle import Model
from microsight.engine.evaluate import (
    Evaluation,
    ReportContext,
    score_sources,
    summarize,
    write_report,
)
from microsight.engine.predict import TileSettings
from microsight.errors import MicrosightError
from microsight.metrics.restoration import (
    affine_match,
    percentile_normalize,
    restoration_metrics,
)

MAX_PANELS = 4
METRICS = ("psnr", "ssim", "nrmse")


def z_baselines(anisotropy: float) -> dict[str, Any]:
    """Classical upsampling along Z every report compares the network with."""
    def along_z(order: int):
        def upsample(item: np.ndarray) -> np.ndarray:
            return resample_axis(item, 1, max(1, round(item.shape[1] * anisotropy)), order)
        return upsample

    return {"nearest plane along Z": along_z(0), "linear interpolation along Z": along_z(1)}


def score_volume(prediction: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Range-matched PSNR / SSIM / NRMSE of a ``(C, Z, Y, X)`` volume, averaged over channels."""
    per = [restoration_metrics(p, t, range_match=True)
           for p, t in zip(prediction, target, strict=True)]
    return {k: float(np.mean([m[k] for m in per])) for k in METRICS}


def xz_panels(upsampled: np.ndarray, prediction: np.ndarray, target: np.ndarray
              ) -> dict[str, np.ndarray]:
    """XZ sections through the middle row (first channel): interpolated, network, truth."""
    y = target.shape[2] // 2
    gt = percentile_normalize(target[0, :, y, :])
    pred = affine_match(prediction[0, :, y, :], gt)
    return {"input (linear along Z)": affine_match(upsampled[0, :, y, :], gt),
            "prediction": pred, "target": gt, "|prediction - target|": np.abs(pred - gt)}


def _stacks(path: str | Path, axes: str | None, what: str) -> tuple[list[np.ndarray], dict]:
    items, _, summary = load_items(path, None, ndim=3, axes=axes)
    if not items:
        raise MicrosightError(f"no {what} stacks in {path}")
    return items, summary


def evaluate_iso(model: Model, input_path: str | Path, target_path: str | Path, *,
                 axes: str | None = None, report: str | Path | None = None,
                 settings: TileSettings | None = None) -> Evaluation:
    """Score a care-iso model on anisotropic stacks against isotropic ground truth.

    Parameters
    ----------
    model : Model
        Loaded care-iso model (its anisotropy is in ``config.method``).
    input_path, target_path : str or Path
        Anisotropic ZYX stacks and their isotropic ground truth (files or
        folders paired by name); each target has ``round(Z * anisotropy)`` planes.
    axes : str, optional
        Axes override for both.
    report : str or Path, optional
        HTML report to write (``.pdf`` for a PDF).
    settings : TileSettings, optional
        Tiling of the 2D sections.

    Returns
    -------
    Evaluation
        Per-stack rows for the network and each baseline, and their means.
    """
    module_class = type(model.module)
    a = model.config.method.anisotropy
    if a is None:
        raise MicrosightError("this care-iso model has no anisotropy in its config; "
                              "set method.anisotropy in its config.yaml")
    inputs, summary = _stacks(input_path, axes, "input")
    targets, target_summary = _stacks(target_path, axes, "target")
    names = summary["item_names"]
    if names != target_summary["item_names"]:
        raise MicrosightError(f"inputs and targets do not pair up by name: {names} vs "
                              f"{target_summary['item_names']}")
    baselines = z_baselines(a)
    for name, x, y in zip(names, inputs, targets, strict=True):
        want = (round(x.shape[1] * a), *x.shape[2:])
        if y.shape[1:] != want:
            raise MicrosightError(
                f"target {name} has ZYX shape {y.shape[1:]}; an input of {x.shape[1:]} with "
                f"anisotropy {a:g} needs {want}")
    sources = {"network": lambda x: module_class.predict_item(model, x, settings), **baselines}
    linear = baselines["linear interpolation along Z"]
    scored = score_sources(
        zip(names, inputs, targets, strict=True), sources,
        lambda pred, y, *_: score_volume(pred, y),
        panel=lambda name, x, pred, y: (name, xz_panels(linear(x), pred, y)),
        max_panels=MAX_PANELS)
    rows, panels = scored.rows, scored.panels
    result = Evaluation(rows, summarize(rows, METRICS))
    if report is not None:
        summary = {**summary, "anisotropy": a}
        result.report_path = write_report(ReportContext(model, result, summary, panels), report)
    return result
