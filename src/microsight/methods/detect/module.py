"""Point detection: a U-Net predicts a Gaussian centre heat-map per class.

Training targets are drawn from point annotations (CSV tables ``y,x[,class]``)
or from the centroids of label images. Prediction runs the network tile by
tile, extracts heat-map peaks (threshold, minimum distance, cross-class
non-maximum suppression) and returns or writes a table ``y,x,class,score``.
Evaluation matches points to the ground truth within a distance tolerance
(Hungarian matching) against a Laplacian-of-Gaussian blob detector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from microsight.config import Configuration
from microsight.data.layout import check_channels, item_indices, read_item
from microsight.data.normalization import subsample
from microsight.data.pairs import TrainingSet, load_items
from microsight.data.points import (
    coords,
    find_peaks,
    heatmap,
    label_centroids,
    make_points,
    object_heatmap,
    read_points,
    write_points,
)
from microsight.data.split import load_and_split
from microsight.engine.bundle import Model
from microsight.engine.evaluate import (
    Evaluation,
    data_facts,
    evaluation_report,
    model_sections,
    score_sources,
    summarize,
)
from microsight.engine.module import MicrosightModule
from microsight.engine.predict import TiledPredictor, TileSettings, input_normalizer
from microsight.engine.progress import progress_bar
from microsight.engine.training import normalize_inputs
from microsight.errors import MicrosightError
from microsight.io import Image
from microsight.io.image import image_stem
from microsight.io.labels import read_labels
from microsight.io.readers import list_images
from microsight.methods.detect.config import DetectConfig
from microsight.metrics.detection import detection_scores, pooled_scores
from microsight.nn import UNet

METRICS = ("precision", "recall", "f1")
def target_file(target: str | Path, image_name: str, n_inputs: int) -> Path:
    """The annotation of ``image_name``: a CSV or label image of the same stem."""
    target = Path(target)
    if target.is_file():
        if n_inputs != 1:
            raise MicrosightError(
                f"{target.name} is one file but there are {n_inputs} input images; give a "
                "folder of targets named like the inputs")
        return target
    if not target.is_dir():
        raise MicrosightError(f"target {target} not found")
    stem = image_stem(image_name)
    csv_file = target / f"{stem}.csv"
    if csv_file.is_file():
        return csv_file
    if (target / image_name).exists():
        return target / image_name
    try:
        same = [p for p in list_images(target) if image_stem(p.name) == stem]
    except MicrosightError:
        same = []
    if not same:
        raise MicrosightError(
            f"{image_name} has no target in {target}: expected {stem}.csv (points y,x[,class]) "
            "or a label image with the same name")
    return same[0]


def target_points(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Point table of one annotation file (CSV table or label image)."""
    if path.suffix.lower() == ".csv":
        points = read_points(path)
        inside = ((points["y"] >= -0.5) & (points["y"] < shape[0] - 0.5)
                  & (points["x"] >= -0.5) & (points["x"] < shape[1] - 0.5))
        if not inside.all():
            raise MicrosightError(
                f"{path.name}: {int((~inside).sum())} point(s) lie outside the "
                f"{shape[0]}x{shape[1]} image; are y and x swapped?")
        return points
    labels = read_labels(path)
    if labels.shape != tuple(shape):
        raise MicrosightError(
            f"{path.name} has shape {labels.shape} but its image is {tuple(shape)}; label "
            "images must match their images")
    return label_centroids(labels)


def load_detection_data(input_path: str | Path, target_path: str | Path,
                        axes: str | None = None
                        ) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """Read inputs as ``(C, Y, X)`` items and their point tables."""
    inputs, _, summary = load_items(input_path, None, ndim=2, axes=axes)
    names = summary["item_names"]
    if len(names) != summary["files"]:
        raise MicrosightError(
            "point detection needs one YX (or CYX) plane per input file; split stacks "
            "into single planes first")
    points = [target_points(target_file(target_path, n, len(names)), x.shape[1:])
              for n, x in zip(names, inputs, strict=True)]
    summary["target"] = str(target_path)
    summary["points"] = int(sum(len(p) for p in points))
    return inputs, points, summary


def training_heatmaps(method: DetectConfig, target_path: str | Path, names: list[str],
                      inputs: list[np.ndarray], points: list[np.ndarray], n_classes: int
                      ) -> list[np.ndarray]:
    """Heat-map targets: object-sized from label images ('object' mode), else fixed sigma."""
    out = []
    for name, x, pts in zip(names, inputs, points, strict=True):
        path = target_file(target_path, name, len(names))
        if method.sigma_mode == "object" and path.suffix.lower() != ".csv":
            out.append(object_heatmap(read_labels(path), scale=method.object_scale,
                                      min_sigma=method.sigma))
        else:
            out.append(heatmap(pts, x.shape[1:], n_classes, method.sigma))
    return out


def log_points(item: np.ndarray, *, threshold: float = 0.05, min_sigma: float = 2.0,
               max_sigma: float = 8.0, num_sigma: int = 7) -> np.ndarray:
    """Laplacian-of-Gaussian blob detector (``skimage.feature.blob_log``) as points.

    The channels are averaged and the image is scaled by its own 1 / 99.8
    percentiles, so ``threshold`` is in units of the image's dynamic range.
    """
    from skimage.feature import blob_log

    img = np.asarray(item, np.float32)
    img = img.mean(axis=0) if img.ndim == 3 else img
    lo, hi = np.percentile(img, (1, 99.8))
    img = np.clip((img - lo) / max(hi - lo, 1e-12), 0, 1)
    blobs = blob_log(img, min_sigma=min_sigma, max_sigma=max_sigma, num_sigma=num_sigma,
                     threshold=threshold, overlap=0.5, exclude_border=False)
    if len(blobs) == 0:
        return make_points(np.zeros((0, 2)))
    return make_points(blobs[:, :2])


class DetectModule(MicrosightModule):
    """U-Net from an image to one centre heat-map (logits) per class."""

    report_family = "detection"
    #: Validation finds the points: F1 within ``method.tolerance`` pixels, beside the loss.
    val_metrics = ("val_f1",)

    def build_network(self, config: Configuration, in_channels: int, out_channels: int
                      ) -> nn.Module:
        m: DetectConfig = config.method
        net = UNet(2, in_channels, out_channels, depth=m.depth, base_channels=m.base_channels,
                   kernel_size=3, batch_norm=m.batch_norm, residual=False)
        # Start near "no object anywhere" (sigmoid(-4) ~ 0.02): stable early training.
        nn.init.constant_(net.head.bias, -4.0)
        return net

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float()
        bce = nn.functional.binary_cross_entropy_with_logits(
            prediction.float(), target, reduction="none")
        weight = 1 + self.config.method.pos_weight * target
        return torch.mean(weight * bce)

    def point_estimate(self, output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(output.float())

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._val_points: list[dict] = []

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        m: DetectConfig = self.config.method
        x, y = self.prepare_batch(*batch)
        out = self(x)
        n = y.numel()
        self._val["loss"] += float(self.loss(out, y)) * n
        heat_t = self.point_estimate(out)
        self._val["sq"] += float(torch.sum((heat_t - y.float()) ** 2))
        self._val["n"] += n
        heat = heat_t.cpu().numpy()
        # The target heat-maps peak at 1 on every annotated point: their peaks are the truth.
        for found, target in zip(heat, y.float().cpu().numpy(), strict=True):
            pred = find_peaks(found, threshold=m.threshold, min_distance=m.min_distance)
            true = find_peaks(target, threshold=0.5, min_distance=1)
            self._val_points.append(detection_scores(
                coords(pred), coords(true), m.tolerance, pred_classes=pred["class"],
                true_classes=true["class"]))

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self._val_points:
            self.log("val_f1", pooled_scores(self._val_points)["f1"], prog_bar=True)

    # --- training data --------------------------------------------------------------
    @classmethod
    def prepare_training(cls, config: Configuration, input_path: str | Path,
                         target_path: str | Path | None, axes: str | None = None
                         ) -> tuple[TrainingSet, dict[str, Any]]:
        """Images and heat-map targets (from points or label centroids), inputs normalized.

        Heat-maps are not percentile-normalized: they already lie in [0, 1], and the
        bundle stores the identity as the 'target' normalization.
        """
        if target_path is None:
            raise MicrosightError(
                "method detect learns from annotations: pass --target with label images or "
                "CSV point tables (y,x[,class]) named like the images")
        m: DetectConfig = config.method
        classes: list[int] = []  # set by the training data, kept for the validation data

        def load(images: str | Path, annotations: str | Path):
            inputs, points, summary = load_detection_data(images, annotations,
                                                          axes or config.data.axes)
            n = 1 + max([int(p["class"].max()) for p in points if len(p)] + [0])
            if classes and n > classes[0]:
                raise MicrosightError(
                    f"the validation points have class {n - 1}, which no training point has; "
                    "give validation data with the training classes")
            classes[:] = classes or [n]
            summary["classes"] = classes[0]
            return inputs, training_heatmaps(m, annotations, summary["item_names"], inputs,
                                             points, classes[0]), summary

        data = load_and_split(config, load, input_path, target_path)
        return data, cls.normalize(data, config, classes[0])

    @staticmethod
    def normalize(data: TrainingSet, config: Configuration, n_classes: int) -> dict[str, Any]:
        """Percentile-normalize the inputs of ``data`` in place (never the heat-maps).

        Returns the bundle's normalization parameters, with the identity as 'target'.
        """
        return normalize_inputs(data, config, n_classes)

    # --- prediction -----------------------------------------------------------------
    @classmethod
    def predict_heatmap(cls, model: Model, item: np.ndarray,
                        settings: TileSettings | None = None) -> np.ndarray:
        """Heat-map ``(classes, Y, X)`` in [0, 1] of one ``(C, Y, X)`` item (raw intensities)."""
        settings = settings or TileSettings.default(2)
        x_norm = input_normalizer(model.normalization, lambda: subsample(item))
        normalized = x_norm.apply(item)
        out = np.zeros((model.module.out_channels, *item.shape[1:]), np.float32)

        def write(region: tuple[slice, ...], block: np.ndarray) -> None:
            out[(slice(None),) + region] = block

        TiledPredictor(model.module, settings).run(
            item.shape[1:], lambda r: normalized[(slice(None),) + r], write)
        return out

    @classmethod
    def detect_item(cls, model: Model, item: np.ndarray,
                    settings: TileSettings | None = None) -> np.ndarray:
        """Point table of one item: heat-map peaks above the threshold, suppressed."""
        m: DetectConfig = model.config.method
        heat = cls.predict_heatmap(model, item, settings)
        return find_peaks(heat, threshold=m.threshold, min_distance=m.min_distance)

    @classmethod
    def predict_image(cls, model: Model, image: Image, out: str | Path | None = None, *,
                      settings: TileSettings | None = None, progress: bool = False
                      ) -> np.ndarray | list[np.ndarray] | Path:
        """Detect points in every YX plane of an image.

        Returns
        -------
        numpy.ndarray, list or Path
            The point table (structured array ``y, x, class, score``) of a single
            plane, a list of tables for a stack, or the CSV written to ``out``
            (an ``item`` column numbers the planes of a stack).
        """
        if out is not None and Path(out).suffix.lower() != ".csv":
            raise MicrosightError(
                f"point detection writes a table of points: give an output ending in .csv, "
                f"not {Path(out).name}")
        name = image.path.name if image.path else "image"
        check_channels(image.axes, image.shape, model.module.in_channels, name)
        tables = []
        indices = item_indices(image.axes, image.shape, 2, name)
        with progress_bar(progress, "planes") as bar:
            task = bar.add_task(f"detecting points in {name}", total=len(indices))
            for index in indices:
                item = read_item(image.data, image.axes, 2, index)
                if not np.isfinite(item).all():
                    raise MicrosightError(
                        f"{name} contains NaN or infinite values; replace them (e.g. with 0) "
                        "before predicting")
                tables.append(cls.detect_item(model, item, settings))
                bar.advance(task, 1)
        if out is None:
            return tables[0] if len(tables) == 1 else tables
        points = np.concatenate(tables) if tables else make_points(np.zeros((0, 2)))
        item_col = None if len(tables) == 1 else np.concatenate(
            [np.full(len(t), i) for i, t in enumerate(tables)])
        return write_points(out, points, item=item_col)

    # --- evaluation -----------------------------------------------------------------
    @classmethod
    def baselines(cls, config: Configuration) -> dict[str, Any]:
        """The classical detector the report compares with."""
        m: DetectConfig = config.method
        label = (f"LoG blobs (sigma {m.log_min_sigma:g}-{m.log_max_sigma:g}, "
                 f"threshold {m.log_threshold:g})")
        return {label: lambda x: log_points(x, threshold=m.log_threshold,
                                            min_sigma=m.log_min_sigma,
                                            max_sigma=m.log_max_sigma)}

    @classmethod
    def evaluate_model(cls, model: Model, input: str | Path, target: str | Path, *,
                       axes: str | None = None, report: str | Path | None = None,
                       settings: TileSettings | None = None) -> Evaluation:
        """Precision, recall and F1 at ``method.tolerance`` pixels, network and LoG baseline.

        Rows are per image and source; the summary holds the mean over images (with
        a bootstrap interval) and the pooled (micro-averaged) scores.
        """
        m: DetectConfig = model.config.method
        inputs, truths, summary = load_detection_data(input, target, axes)
        detectors = {"network": lambda x: cls.detect_item(model, x, settings),
                     **cls.baselines(model.config)}

        def score(pts: np.ndarray, truth: np.ndarray, *_: Any) -> dict[str, Any]:
            s = detection_scores(coords(pts), coords(truth), m.tolerance,
                                 pred_classes=pts["class"], true_classes=truth["class"])
            row = {k: v for k, v in s.items() if k != "per_class"}
            if len(s["per_class"]) > 1:
                row.update({f"f1 class {c}": v["f1"] for c, v in s["per_class"].items()})
            return row

        scored = score_sources(zip(summary["item_names"], inputs, truths, strict=True),
                               detectors, score,
                               panel=lambda name, x, pts, truth: (name, x, pts, truth))
        rows, panels = scored.rows, scored.panels
        result = Evaluation(rows, summarize(rows, METRICS))
        for row in result.summary:
            pooled = pooled_scores([r for r in rows if r["source"] == row["source"]])
            row.update({f"pooled {k}": pooled[k] for k in METRICS})
        if report is not None:
            result.report_path = cls.write_report(model, result, summary, panels, report)
        return result

    @classmethod
    def write_report(cls, model: Model, result: Evaluation, data_summary: dict[str, Any],
                     panels: list, path: str | Path) -> Path:
        """HTML report: metrics, example images with points, history, configuration."""

        m: DetectConfig = model.config.method
        rep = evaluation_report(model, result.rows, subtitle="method detect (point detection)")
        rep.add_table("Test metrics (mean over images)", result.summary,
                      note=f"One-to-one (Hungarian) matching within {m.tolerance:g} pixels; "
                           "'pooled' sums true/false positives over all images.")
        rep.add_key_values("Test data", data_facts(data_summary))
        for name, x, pts, truth in panels:
            rep.add_figure(f"Example: {name}", points_figure(x, pts, truth),
                           caption="Circles: ground-truth points; crosses: the network's "
                                   "detections.")
        rep.add_table("Per-image metrics", result.rows)
        model_sections(rep, model)
        return rep.write(path)


def points_figure(item: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> Any:
    """Matplotlib figure of an image with true (circles) and predicted (crosses) points."""
    from matplotlib.figure import Figure

    img = np.asarray(item, np.float32).mean(axis=0)
    lo, hi = np.percentile(img, (1, 99.8))
    fig = Figure(figsize=(6, 6 * img.shape[0] / max(img.shape[1], 1)))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
    # Okabe-Ito yellow and sky blue: told apart with the common colour blindnesses.
    ax.scatter(truth["x"], truth["y"], s=40, facecolors="none", edgecolors="#F0E442",
               linewidths=1.2, label="ground truth")
    ax.scatter(pred["x"], pred["y"], s=24, c="#56B4E9", marker="x", linewidths=1.2,
               label="network")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2, fontsize=9,
              frameon=False)
    ax.set_axis_off()
    fig.tight_layout()
    return fig
