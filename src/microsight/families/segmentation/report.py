"""The segmentation report and the object outputs of segmentation predictions."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from microsight.data.shapes import label_outlines, object_table
from microsight.engine.bundle import Model
from microsight.engine.evaluate import Evaluation, data_facts, evaluation_report, model_sections
from microsight.errors import MicrosightError
from microsight.io import Image, open_image_writer
from microsight.io.image import image_stem, image_suffix
from microsight.io.shapes import write_geojson, write_table
from microsight.qc.overlay import segmentation_figure


def export_objects(labels: np.ndarray, *, csv: str | Path | None = None,
                   geojson: str | Path | None = None,
                   scores: dict[int, float] | None = None) -> dict[str, np.ndarray]:
    """Convert a label image to an object table (CSV) and outline polygons (GeoJSON).

    Parameters
    ----------
    labels : numpy.ndarray
        2D or 3D label image (0 = background).
    csv : str or Path, optional
        Write the table (label, area, centroid, bounding box[, score]) here.
    geojson : str or Path, optional
        Write the outlines as a QuPath-compatible FeatureCollection here (2D only).
    scores : dict, optional
        Object id -> score, added to the table and the GeoJSON measurements.

    Returns
    -------
    dict of str to numpy.ndarray
        The object table.
    """
    labels = np.asarray(labels)
    table = object_table(labels, scores)
    if csv is not None:
        write_table(csv, table)
    if geojson is not None:
        if labels.ndim != 2:
            raise MicrosightError("GeoJSON outlines need a 2D label image; write a CSV for 3D")
        props = {int(k): {"score": v} for k, v in (scores or {}).items()}
        write_geojson(geojson, label_outlines(labels), properties=props)
    return table


def write_segmentation_report(method: str, model: Model, result: Evaluation,
                              data_summary: dict[str, Any], panels: list,
                              curves: dict[str, dict], path: str | Path) -> Path:
    """HTML report: metrics, AP curves, example segmentations, history, configuration."""

    rep = evaluation_report(model, result.rows,
                            subtitle=f"method {method} (instance segmentation)")
    rep.add_table("Test metrics (mean over images)", result.summary,
                  note="Objects matched one-to-one by IoU (Hungarian below 0.5); AP = TP / "
                       "(TP + FP + FN) as in the DSB 2018 and StarDist; PQ = panoptic "
                       "quality; 'pooled' sums the counts over all images.")
    rep.add_figure("Average precision over IoU thresholds (pooled)", ap_figure(curves))
    rep.add_key_values("Test data", data_facts(data_summary))
    for name, x, truth, labels, prob in panels:
        foreground = None
        if prob is not None:
            # Class probabilities (summing to 1, class 0 the background) or, first, the
            # object probability.
            classes = len(prob) > 1 and np.allclose(prob.sum(axis=0), 1, atol=1e-3)
            foreground = 1 - prob[0] if classes else prob[0]
        fig, region = segmentation_figure(np.asarray(x, np.float32).mean(axis=0), truth, labels,
                                          probability=foreground)
        rep.add_figure(f"Example: {name}", fig, caption=(
            "Network objects matched one-to-one to the ground truth at IoU 0.5 (as AP@0.5 "
            "counts them): outlines of matched objects, of true objects the network missed "
            f"and of objects it found that are not in the ground truth. {region}").strip())
    rep.add_table("Per-image metrics", [_at_half(r) for r in result.rows],
                  note="Scores at IoU 0.5; the mean table above has the other thresholds.")
    model_sections(rep, model)
    return rep.write(path)


def _at_half(row: dict[str, Any]) -> dict[str, Any]:
    """A per-image row without the scores at IoU thresholds other than 0.5."""
    return {k: v for k, v in row.items() if "@" not in k or k.endswith("@0.5")}


def flat_scores(res: dict[float, dict[str, float]]) -> dict[str, float]:
    """``{"ap@0.5": ..., "f1@0.5": ...}`` from :func:`matching` output."""
    out = {}
    for thr, s in res.items():
        for k in ("ap", "f1", "pq", "precision", "recall", "mean_matched_iou"):
            out[f"{k}@{thr:g}"] = float(s[k])
    return out


def ap_figure(curves: dict[str, dict[float, dict[str, float]]]) -> Any:
    """Matplotlib figure: pooled AP against the IoU threshold, one line per source."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for source, res in curves.items():
        thr = sorted(res)
        # Whole names, wrapped: a cut legend entry cannot be told from another.
        ax.plot(thr, [res[t]["ap"] for t in thr], marker="o",
                label=textwrap.fill(source, 60))
    ax.set_xlabel("IoU threshold (how much a found object must overlap a true one)")
    ax.set_ylabel("AP = TP / (TP + FP + FN)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False)
    return fig


def open_outputs(out: str | Path | None, lab_shape: tuple[int, ...], lab_axes: str,
                  prob_shape: tuple[int, ...], prob_axes: str, image: Image) -> list:
    """Writers for the label image and the probability image next to it."""
    if out is None:
        return []
    out = Path(out)
    suffix = image_suffix(out).lower()
    if suffix in (".jpg", ".jpeg"):
        raise MicrosightError(
            f"{out.name}: JPEG compression would change label ids; write .tif, .png or .zarr")
    if suffix == ".csv":
        raise MicrosightError(
            f"{out.name}: segmentation writes a label image (the object table goes next to "
            "it as <name>_objects.csv); give an output ending in .tif, .png or .ome.zarr")
    dtype = np.uint16 if suffix == ".png" else np.uint32
    sizes = {a: v for a, v in image.pixel_sizes.items() if a in lab_axes}
    labels = open_image_writer(out, lab_shape, dtype, lab_axes, sizes)
    prob_suffix = ".tif" if suffix == ".png" else image_suffix(out)
    prob_path = out.parent / f"{image_stem(out)}_prob{prob_suffix}"
    prob = open_image_writer(prob_path, prob_shape, np.float32, prob_axes, sizes)
    return [labels, prob]
