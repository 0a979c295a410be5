"""Evaluation of label-free models: per-target scores, error maps, both GAN outputs.

Every held-out pair is predicted by the model; a GAN-refined model is also
run as the U-Net it started from, because adversarial outputs can look
sharper while inventing structure: the report shows both side by side.
The linear baseline fitted at training time (stored in the bundle) shows
what the network adds. With a report, the absolute error maps of the
network (per target, target intensity units) are written next to it.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from microsight.config import get_method
from microsight.data.normalization import subsample
from microsight.engine.bundle import Model
from microsight.engine.evaluate import (
    Evaluation,
    data_facts,
    evaluation_report,
    model_sections,
    score_sources,
    summarize,
)
from microsight.engine.inference import predict_item
from microsight.engine.predict import TileSettings, input_normalizer, output_normalizer
from microsight.io import write_image
from microsight.methods.labelfree.baseline import apply_linear
from microsight.methods.labelfree.data import load_pairs, registration_report, target_names
from microsight.metrics.labelfree import METRICS, abs_error_map, per_target_metrics

# Example figures cost ~2 s each on a CPU: the first items only, every target.
MAX_PANELS = 2
NETWORK = "network"
UNET = "U-Net before GAN refinement"
LINEAR = "linear regression (inputs + smoothed copies)"


@contextmanager
def _as_reference(model: Model):
    """Predict with the U-Net a GAN model was refined from, for the duration."""
    model.module.use_reference = True
    try:
        yield
    finally:
        model.module.use_reference = False


def linear_prediction(model: Model, item: np.ndarray) -> np.ndarray | None:
    """The stored linear baseline applied to one item (target scale), or None if absent."""
    params = model.qc.get("data", {}).get("linear_baseline")
    if not params:
        return None
    x_norm = input_normalizer(model.normalization, lambda: subsample(item))
    y_norm = output_normalizer(model.normalization, x_norm, model.module.out_channels)
    return y_norm.invert(apply_linear(params, x_norm.apply(item)))


def predictions(model: Model, item: np.ndarray, settings: TileSettings | None
                ) -> dict[str, np.ndarray]:
    """Every source scored for one item: network, (U-Net before GAN), linear baseline."""
    out = {NETWORK: predict_item(model, item, settings)}
    if model.config.method.gan:
        with _as_reference(model):
            out[UNET] = predict_item(model, item, settings)
    linear = linear_prediction(model, item)
    if linear is not None:
        out[LINEAR] = linear
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "image"


def write_error_maps(folder: Path, name: str, error: np.ndarray) -> Path:
    """Write one item's ``|prediction - target|`` (channels first) as a TIFF."""
    axes = "CYX" if error.ndim == 3 else "CZYX"
    return write_image(folder / f"{_safe(name)}_abs_error.tif", error, axes)


def evaluate_labelfree(model: Model, input_path: str | Path, target_path: str | Path, *,
                       axes: str | None = None, report: str | Path | None = None,
                       settings: TileSettings | None = None) -> Evaluation:
    """Score a label-free model on held-out pairs; optionally write report and error maps.

    Parameters
    ----------
    model : Model
        Loaded label-free model.
    input_path, target_path : str or Path
        Held-out transmitted-light inputs and fluorescence targets.
    axes : str, optional
        Axes of the input files.
    report : str or Path, optional
        HTML report; the error maps go to ``<report stem>_error_maps/``.
    settings : TileSettings, optional
        Tiling of the prediction.

    Returns
    -------
    Evaluation
        Rows per image and source with ``pearson``, ``ssim``, ``nrmse`` (means
        over targets) and ``"<metric> <target>"`` per target.
    """
    m = model.config.method
    inputs, targets, summary = load_pairs(m, input_path, target_path, ndim=model.ndim,
                                          axes=axes)
    names = target_names(m, targets[0].shape[0])
    metrics = METRICS + tuple(f"{k} {n}" for n in names for k in METRICS)
    maps_dir = None
    if report is not None:
        report = Path(report)
        maps_dir = report.with_name(report.name.split(".")[0] + "_error_maps")
    # One call predicts every source of an item (network, reference U-Net, linear
    # baseline); the shared loop then asks for them one by one. Items carry their name
    # so that the network's error maps can be written as it is scored.
    last: dict[str, Any] = {}

    def source(key: str) -> Any:
        def predict(item: tuple[str, np.ndarray]) -> np.ndarray | None:
            if last.get("item") is not item:
                last.update(item=item, preds=predictions(model, item[1], settings))
            return last["preds"].get(key)
        return predict

    def score(pred: np.ndarray, y: np.ndarray, key: str, item: tuple[str, np.ndarray]
              ) -> dict[str, float]:
        if key == NETWORK and maps_dir is not None:
            write_error_maps(maps_dir, item[0], abs_error_map(pred, y))
        return per_target_metrics(pred, y, names)

    items = [(name, (name, x), y)
             for name, x, y in zip(summary["item_names"], inputs, targets, strict=True)]
    scored = score_sources(
        items, {k: source(k) for k in (NETWORK, UNET, LINEAR)}, score,
        panel=lambda name, item, pred, y: (name, item[1], y, {
            k: v for k, v in last["preds"].items() if k != LINEAR}),
        max_panels=MAX_PANELS)
    rows, panels = scored.rows, scored.panels
    result = Evaluation(rows, summarize(rows, metrics))
    if report is not None:
        registration = registration_report(inputs, targets, m, summary["item_names"])
        result.report_path = _write_report(model, result, summary, names, panels,
                                           registration, maps_dir, report)
    return result


def _panel_row(x: np.ndarray, y: np.ndarray, preds: dict[str, np.ndarray], c: int
               ) -> dict[str, np.ndarray]:
    row = {"input (middle channel)": x[x.shape[0] // 2]}
    for source, pred in preds.items():
        label = "GAN-refined" if source == NETWORK and UNET in preds else (
            "U-Net" if source in (NETWORK, UNET) else source)
        row[label] = pred[c]
    row["target"] = y[c]
    row["|network - target|"] = np.abs(preds[NETWORK][c] - y[c])
    return row


def _write_report(model: Model, result: Evaluation, summary: dict[str, Any],
                  names: list[str], panels: list, registration: list[dict],
                  maps_dir: Path | None, path: Path) -> Path:
    info = get_method(model.method)
    rep = evaluation_report(model, result.rows,
                            subtitle=f"method {info.name} ({info.summary})")
    means = [{k: v for k, v in r.items() if k in ("source", "images", *METRICS)}
             for r in result.summary]
    rep.add_table("Test metrics (mean over images and targets)", means,
                  note="Pearson r is pixel-wise; SSIM and NRMSE use each target's 1 / 99.8 "
                       "percentile scale, without fitting the prediction.")
    per_target = []
    for r in result.summary:
        for n in names:
            per_target.append({"source": r["source"], "target": n,
                               **{k: r[f"{k} {n}"] for k in METRICS},
                               "pearson 95% CI": r.get(f"pearson {n} 95% CI")})
    rep.add_table("Test metrics per target", per_target)
    if model.config.method.gan:
        rep.add_text("Adversarial refinement",
                     "This model was refined with a conditional GAN (pix2pix). GAN outputs can "
                     "look sharper while showing structure that is not in the sample: compare "
                     "the GAN-refined and U-Net columns below with the target before trusting "
                     "fine detail.")
    rep.add_table("Registration of the test pairs", registration,
                  note="shift_px registers the target onto the input (phase correlation of "
                       "gradient-magnitude maps); misaligned pairs lower every score.")
    rep.add_key_values("Test data", data_facts(summary))
    if maps_dir is not None:
        rep.add_text("Error maps", f"|network - target| per target (target units): {maps_dir}")
    for item_name, x, y, preds in panels:
        for c, n in enumerate(names):
            row = _panel_row(x, y, preds, c)
            shared = [k for k in row if k not in ("input (middle channel)",
                                                  "|network - target|")]
            error = "|network - target|"
            rep.add_image_panels(f"Example: {item_name}, {n}", row, shared_range=shared,
                                 cmaps={error: "magma"}, from_zero=[error],
                                 labels={error: "error (target units)"})
    rep.add_table("Per-image metrics", result.rows)
    model_sections(rep, model)
    return rep.write(path)
