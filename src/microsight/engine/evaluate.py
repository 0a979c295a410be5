"""Evaluate a model on held-out pairs and write the HTML report.

The report is assembled from sections: data, metrics (network and the
method's classical baselines, per image and averaged), example panels,
training history and configuration. Methods contribute their metrics,
baselines and panels through hooks on their module class, so a new method
gets a full report without touching this file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microsight.config import config_to_yaml, get_method
from microsight.data.pairs import load_items
from microsight.engine.bundle import Model
from microsight.engine.files import atomic_write_text
from microsight.engine.inference import predict_image, predict_item
from microsight.engine.predict import TileSettings
from microsight.engine.progress import progress_bar, progress_shown
from microsight.io import Image
from microsight.metrics.calibration import regression_calibration
from microsight.qc import Report
from microsight.qc.figures import reliability_figure
from microsight.qc.overfitting import add_training_sections
from microsight.qc.verdict import RULE, Verdict, network_verdict

MAX_PANELS = 3
# Pixels sampled over all test images for the calibration of uncertainty maps.
CALIBRATION_PIXELS = 200_000


@dataclass
class Evaluation:
    """Per-image and mean metrics of the network and of each baseline."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    report_path: Path | None = None
    #: The network against the best classical baseline, in words (set by ``api.evaluate``).
    verdict: Verdict | None = None

    #: The method's declared metrics, the verdict's first (set by ``api.evaluate``).
    metrics: tuple[str, ...] = ()
    #: The full tables written by :meth:`write_tables` (CSV, JSON), if any.
    table_paths: tuple[Path, ...] = ()

    def mean(self, source: str, metric: str) -> float:
        """Mean of ``metric`` over images for ``source`` ('network' or a baseline name)."""
        for row in self.summary:
            if row["source"] == source:
                return float(row[metric])
        raise KeyError(source)

    def write_tables(self, path: str | Path) -> tuple[Path, Path]:
        """Write every metric: the means per source as CSV, everything as JSON.

        Parameters
        ----------
        path : str or Path
            The CSV file (``.csv``); the JSON file takes its name with ``.json``
            and holds the means, the per-image rows and the verdict.

        Returns
        -------
        tuple of Path
            The CSV and JSON files written.
        """
        csv_path = Path(path).with_suffix(".csv")
        json_path = csv_path.with_suffix(".json")
        columns = list(dict.fromkeys(k for row in self.summary for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(self.summary)
        atomic_write_text(csv_path, buf.getvalue())
        record = {"summary": self.summary, "rows": self.rows,
                  "verdict": None if self.verdict is None else self.verdict.to_dict()}
        atomic_write_text(json_path, json.dumps(_finite(record), indent=2, default=_plain))
        self.table_paths = (csv_path, json_path)
        return self.table_paths


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float as None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value


def _plain(value: Any) -> Any:
    """JSON for numpy numbers and anything else a row may hold."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


@dataclass
class Scored:
    """What the shared evaluation loop gathered: rows, example panels, raw outputs."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    panels: list[Any] = field(default_factory=list)
    #: Per source, whatever ``score`` returned beside the row (e.g. matchings to pool).
    extras: dict[str, list[Any]] = field(default_factory=dict)


def score_sources(items: Iterable[tuple[str, Any, Any]],
                  sources: dict[str, Callable[[Any], Any]],
                  score: Callable[..., dict[str, Any] | tuple[dict[str, Any], Any] | None], *,
                  panel: Callable[[str, Any, Any, Any], Any] | None = None,
                  max_panels: int = MAX_PANELS) -> Scored:
    """The evaluation loop every method shares: every item, every source, one scored row.

    Parameters
    ----------
    items : iterable of (name, input, truth)
        The test items.
    sources : dict of name to callable
        ``source(input) -> output``: the network first, then the baselines. A
        source may return None for an item it cannot handle (no row then).
    score : callable
        ``score(output, truth, source, input) -> metrics`` or ``(metrics, extra)``; extras are
        kept per source (e.g. matchings that the summary pools). None: no row
        (a source that cannot answer for this item).
    panel : callable, optional
        ``panel(name, input, network output, truth)``: example material for the
        report, made for the first ``max_panels`` items.
    max_panels : int
        How many items get a panel.

    Returns
    -------
    Scored
    """
    result = Scored(extras={s: [] for s in sources})
    first = next(iter(sources))
    items = list(items)
    with progress_bar(progress_shown(), "images", transient=True) as bar:
        task = bar.add_task("scoring", total=len(items))
        for name, x, truth in items:
            bar.update(task, description=f"scoring {name}")
            _score_item(result, name, x, truth, sources, score, first, panel, max_panels)
            bar.advance(task, 1)
    return result


def _score_item(result: Scored, name: str, x: Any, truth: Any,
                sources: dict[str, Callable[[Any], Any]], score: Callable[..., Any], first: str,
                panel: Callable[[str, Any, Any, Any], Any] | None, max_panels: int) -> None:
    """Every source on one item: its rows, extras and (for the first items) its panel."""
    for source, predict in sources.items():
        out = predict(x)
        if out is None:
            continue
        scored = score(out, truth, source, x)
        if scored is None:
            continue
        metrics, extra = scored if isinstance(scored, tuple) else (scored, None)
        result.rows.append({"image": name, "source": source, **metrics})
        result.extras[source].append(extra)
        if source == first and panel is not None and len(result.panels) < max_panels:
            result.panels.append(panel(name, x, out, truth))


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


def _numeric_columns(rows: list[dict[str, Any]], metrics: tuple[str, ...]) -> tuple[str, ...]:
    """The registered metrics, then every other numeric column the scores hold (e.g. RSE)."""
    extra = [k for row in rows for k, v in row.items()
             if k not in metrics and isinstance(v, (int, float, np.floating))
             and not isinstance(v, bool)]
    present = [m for m in metrics if all(m in r for r in rows)]
    return tuple(dict.fromkeys([*present, *(k for k in extra if all(k in r for r in rows))]))


@dataclass
class ReportContext:
    """What an evaluation hands to the report hooks of its method.

    Attributes
    ----------
    model : Model
        The evaluated model.
    evaluation : Evaluation
        Per-image rows and the summary with bootstrap intervals.
    data_summary : dict
        What was read (files, axes, shapes, pixel sizes).
    panels : list of (str, dict)
        Example images per item, from the method's ``panels`` hook.
    uncertainty : tuple of numpy.ndarray, optional
        ``(scale, error)`` pixel samples for the calibration section, when the
        model predicts an uncertainty.
    """

    model: Model
    evaluation: Evaluation
    data_summary: dict[str, Any]
    panels: list[tuple[str, dict[str, np.ndarray]]] = field(default_factory=list)
    uncertainty: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def pixel_size(self) -> float | None:
        """Pixel size along X of the inputs (micrometres), if the files say."""
        sizes = self.data_summary.get("pixel_sizes_um") or {}
        return sizes.get("X")


def _predict_with_spread(model: Model, item: np.ndarray, settings: TileSettings | None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Prediction and per-pixel uncertainty of one channels-first item."""
    axes = "CYX" if item.ndim == 3 else "CZYX"
    pred, spread = predict_image(model, Image(item, axes), settings=settings, uncertainty=True)
    return np.asarray(pred), np.asarray(spread)


def _pixel_sample(arrays: list[np.ndarray], rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """The same random ``n`` pixels (at most) of equally shaped arrays, flattened."""
    size = arrays[0].size
    pick = rng.choice(size, n, replace=False) if size > n else slice(None)
    return [a.ravel()[pick] for a in arrays]


def evaluate_model(
    model: Model,
    input_path: str | Path,
    target_path: str | Path,
    *,
    axes: str | None = None,
    report: str | Path | None = None,
    settings: TileSettings | None = None,
) -> Evaluation:
    """Score a model against ground truth and optionally write the report.

    Parameters
    ----------
    model : Model
        Loaded model.
    input_path, target_path : str or Path
        Held-out inputs and ground truth (files or folders paired by name).
    axes : str, optional
        Axes override.
    report : str or Path, optional
        Where to write the report (HTML; a ``.pdf`` path writes a PDF).
    settings : TileSettings, optional
        Tiling used for prediction.

    Returns
    -------
    Evaluation
    """
    cls = get_method(model.method).module_class
    metrics = get_method(model.method).metrics
    scale = int(model.module.output_scale)
    inputs, targets, summary = load_items(input_path, target_path, ndim=model.ndim, axes=axes,
                                          target_scale=scale)
    names = summary["item_names"]
    with_spread = bool(model.module.has_uncertainty)
    rng = np.random.default_rng(0)
    spread_samples: list[np.ndarray] = []
    error_samples: list[np.ndarray] = []

    def network(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if with_spread:
            return _predict_with_spread(model, x, settings)
        return predict_item(model, x, settings), None

    def score(out: Any, y: np.ndarray, *_: Any) -> dict[str, float] | None:
        pred, spread = out if isinstance(out, tuple) else (out, None)
        if pred.shape != y.shape:
            return None  # a baseline that cannot reach the target's grid (no upsampling)
        if spread is not None:
            s, e = _pixel_sample([spread, pred - y], rng, CALIBRATION_PIXELS // len(names))
            spread_samples.append(s)
            error_samples.append(e)
        return cls.score(pred, y)

    scored = score_sources(zip(names, inputs, targets, strict=True),
                           {"network": network, **cls.baselines(model.config)}, score,
                           panel=lambda name, x, out, y: (name, cls.panels(x, out[0], y)))
    rows, panels = scored.rows, scored.panels
    result = Evaluation(rows, summarize(rows, _numeric_columns(rows, metrics)))
    if report is not None:
        samples = ((np.concatenate(spread_samples), np.concatenate(error_samples))
                   if spread_samples else None)
        context = ReportContext(model, result, summary, panels, samples)
        result.report_path = write_report(context, report)
    return result


def data_facts(summary: dict[str, Any]) -> dict[str, Any]:
    """What was read, in words: no item list, pixel sizes and warnings said plainly.

    Parameters
    ----------
    summary : dict
        A data summary (``load_items`` or the bundle's ``qc.json`` ``data``).

    Returns
    -------
    dict
        Ready for :meth:`~microsight.qc.Report.add_key_values`.
    """
    out = {k: v for k, v in summary.items()
           if k not in ("item_names", "val_items", "val_names")}
    if "pixel_sizes_um" in out:
        sizes = out["pixel_sizes_um"] or {}
        out["pixel_sizes_um"] = (", ".join(f"{ax} {v:g}" for ax, v in sizes.items()
                                           if isinstance(v, (int, float)))
                                 or "not recorded in the files")
    if "warnings" in out and not out["warnings"]:
        out["warnings"] = "none"
    pairs = out.get("registration")
    if isinstance(pairs, list) and all(isinstance(p, dict) for p in pairs):
        bad = sum(bool(p.get("misaligned")) for p in pairs)
        out["registration"] = f"{len(pairs)} pair(s) checked, {bad} misaligned"
    return out


def model_sections(report: Report, model: Model) -> None:
    """Sections every model's report ends with: training data and QC, configuration.

    Methods that write their own evaluation report call this too, so every
    report shows the training history with its over-fitting verdict, the
    noise of the validation estimate, the checks of the data split and the
    configuration.

    Parameters
    ----------
    report : Report
        The report to extend.
    model : Model
        The model (its ``history`` and ``qc.json`` are read).
    """
    data = data_facts(model.qc.get("data") or {})
    if data:
        report.add_key_values("Training data", data)
    add_training_sections(report, model.history, model.qc)
    report.add_code("Configuration", config_to_yaml(model.config))


def calibration_section(report: Report, model: Model, scale: np.ndarray,
                        error: np.ndarray) -> None:
    """Reliability diagram, ECE and interval coverage of a model's uncertainty.

    Parameters
    ----------
    report : Report
        The report to extend.
    model : Model
        The model; ``module.uncertainty_distribution`` names the predictive
        distribution (default Laplace, as probabilistic CARE).
    scale, error : numpy.ndarray
        Predicted scale and signed error per sampled pixel (output units).
    """
    distribution = model.module.uncertainty_distribution
    cal = regression_calibration(np.maximum(scale, 1e-12), error, distribution=distribution)
    report.add_figure(
        "Uncertainty calibration", reliability_figure(cal),
        caption=f"Pixels binned by predicted {distribution} scale: the mean |error| the scale "
                "promises against the mean |error| observed on the evaluation data (left), "
                "and the share of errors inside central intervals (right). Points on the "
                "diagonal: calibrated; below: the model is under-confident; above: "
                "over-confident.")
    report.add_key_values("Calibration summary", cal.summary())


def key_metric(model: Model) -> str:
    """The metric a method's verdict is based on (the first it declares)."""
    return get_method(model.method).metrics[0]


def evaluation_report(model: Model, rows: list[dict[str, Any]], *, subtitle: str,
                      title: str = "evaluation") -> Report:
    """A new evaluation report that opens with the verdict in words.

    Parameters
    ----------
    model : Model
        The evaluated model.
    rows : list of dict
        Per-image rows of every source (``Evaluation.rows``).
    subtitle : str
        What the method is.
    title : str
        Second part of the title, after the model's name.

    Returns
    -------
    Report
        With the verdict (network against the best classical baseline) as its
        first section; the caller adds the rest.
    """
    rep = Report(f"{model.config.name}: {title}", subtitle=subtitle)
    verdict = network_verdict(rows, key_metric(model))
    rule = f"\nRule: {RULE}" if verdict.baseline is not None else ""
    rep.add_verdict("Verdict", verdict.kind, f"{verdict.text}{rule}", level=verdict.level)
    return rep


def write_report(context: ReportContext, path: str | Path) -> Path:
    """Assemble the evaluation report from its sections and write it.

    The method contributes its sections through its module's
    ``report_sections(report, context)`` hook; the calibration and the
    training sections are shared by every method.
    """
    model = context.model
    info = get_method(model.method)
    rep = evaluation_report(model, context.evaluation.rows,
                            subtitle=f"method {info.name} ({info.summary})")
    rep.add_table("Test metrics (mean over images)", context.evaluation.summary,
                  note="Mean over test images with a bootstrap 95% interval over images. "
                       "CARE protocol: target percentile-normalized, prediction range-matched "
                       "by least squares. The baselines show what the network adds.")
    rep.add_key_values("Test data", data_facts(context.data_summary))
    info.module_class.report_sections(rep, context)
    if context.uncertainty is not None:
        calibration_section(rep, model, *context.uncertainty)
    model_sections(rep, model)
    return rep.write(path)


def write_training_report(model: Model, path: str | Path) -> Path:
    """The report written into every bundle after training (no test data needed).

    Parameters
    ----------
    model : Model
        The trained model.
    path : str or Path
        Destination (``report.html`` in the bundle).

    Returns
    -------
    Path
    """
    info = get_method(model.method)
    rep = Report(f"{model.config.name}: training report",
                 subtitle=f"method {info.name} ({info.summary})")
    rep.add_text("About this report",
                 "Training quality control: the data, the training history with an "
                 "over-fitting verdict, how precise the validation score is, and checks of the "
                 "training/validation split. Test metrics need held-out data: run "
                 "'microsight evaluate' for the full report.")
    model_sections(rep, model)
    return rep.write(path)
