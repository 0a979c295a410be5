"""Evaluate a model on held-out pairs and write the HTML report.

The report is assembled from sections: data, metrics (network and the
method's classical baselines, per image and averaged), example panels,
training history and configuration. Methods contribute their metrics,
baselines and panels through hooks on their module class, so a new method
gets a full report without touching this file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microsight.config import config_to_yaml, get_method
from microsight.data.pairs import load_items
from microsight.engine.bundle import Model
from microsight.engine.inference import predict_item
from microsight.engine.predict import TileSettings
from microsight.qc import Report

MAX_PANELS = 3


@dataclass
class Evaluation:
    """Per-image and mean metrics of the network and of each baseline."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    report_path: Path | None = None

    def mean(self, source: str, metric: str) -> float:
        """Mean of ``metric`` over images for ``source`` ('network' or a baseline name)."""
        for row in self.summary:
            if row["source"] == source:
                return float(row[metric])
        raise KeyError(source)


def _bootstrap_ci(values: np.ndarray, rng: np.random.Generator, n: int = 1000
                  ) -> tuple[float, float]:
    if len(values) < 3:
        return float("nan"), float("nan")
    means = rng.choice(values, size=(n, len(values)), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarize(rows: list[dict[str, Any]], metrics: tuple[str, ...]) -> list[dict[str, Any]]:
    """Mean of each metric per source, with a bootstrap 95% interval over images."""
    rng = np.random.default_rng(0)
    out = []
    for source in dict.fromkeys(r["source"] for r in rows):
        sel = [r for r in rows if r["source"] == source]
        row: dict[str, Any] = {"source": source, "images": len(sel)}
        for m in metrics:
            vals = np.array([r[m] for r in sel], float)
            row[m] = float(np.mean(vals))
            lo, hi = _bootstrap_ci(vals, rng)
            row[f"{m} 95% CI"] = None if np.isnan(lo) else f"{lo:.4g} - {hi:.4g}"
        out.append(row)
    return out


def evaluate_model(
    model: Model,
    input_path: str | Path,
    target_path: str | Path,
    *,
    axes: str | None = None,
    report: str | Path | None = None,
    settings: TileSettings | None = None,
) -> Evaluation:
    """Score a model against ground truth and optionally write the HTML report.

    Parameters
    ----------
    model : Model
        Loaded model.
    input_path, target_path : str or Path
        Held-out inputs and ground truth (files or folders paired by name).
    axes : str, optional
        Axes override.
    report : str or Path, optional
        Where to write the HTML report.
    settings : TileSettings, optional
        Tiling used for prediction.

    Returns
    -------
    Evaluation
    """
    cls = get_method(model.method).module_class
    metrics = get_method(model.method).metrics
    scale = int(getattr(model.module, "output_scale", 1))
    inputs, targets, summary = load_items(input_path, target_path, ndim=model.ndim, axes=axes,
                                          target_scale=scale)
    names = summary["item_names"]
    rows, panels = [], []
    baselines = cls.baselines(model.config)
    for name, x, y in zip(names, inputs, targets, strict=True):
        pred = predict_item(model, x, settings)
        rows.append({"image": name, "source": "network", **cls.score(pred, y)})
        for label, fn in baselines.items():
            base = fn(x)
            if base.shape == y.shape:
                rows.append({"image": name, "source": label, **cls.score(base, y)})
        if len(panels) < MAX_PANELS:
            panels.append((name, cls.panels(x, pred, y)))
    result = Evaluation(rows, summarize(rows, metrics))
    if report is not None:
        result.report_path = write_report(model, result, summary, panels, report)
    return result


def write_report(model: Model, result: Evaluation, data_summary: dict[str, Any],
                 panels: list[tuple[str, dict[str, np.ndarray]]], path: str | Path) -> Path:
    """Assemble the evaluation report from its sections and write it."""
    info = get_method(model.method)
    rep = Report(f"{model.config.name}: evaluation",
                 subtitle=f"method {info.name} ({info.summary})")
    rep.add_table("Test metrics (mean over images)", result.summary,
                  note="CARE protocol: target percentile-normalized, prediction range-matched "
                       "by least squares. The baselines show what the network adds.")
    rep.add_key_values("Test data", {k: v for k, v in data_summary.items()
                                     if k != "item_names"})
    for name, images in panels:
        rep.add_image_panels(f"Example: {name}", images,
                             shared_range=[k for k in images if k in ("prediction", "target")])
    rep.add_table("Per-image metrics", result.rows)
    if model.history:
        rep.add_history("Training history", model.history)
    rep.add_key_values("Training", {k: v for k, v in model.qc.items() if k != "data"})
    rep.add_code("Configuration", config_to_yaml(model.config))
    return rep.write(path)
