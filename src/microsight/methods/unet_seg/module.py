"""U-Net semantic segmentation: softmax class probabilities and a class map.

By default the classes are derived from instance label images (background,
object interior, object boundary): the boundary class separates touching
objects, so objects can also be recovered (connected interiors grown over the
object pixels by a watershed) and scored with the instance metrics. Class
weights counter the imbalance between the large background and the thin
boundaries.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from microsight.config import Configuration
from microsight.data.pairs import load_items
from microsight.data.shapes import inner_boundaries
from microsight.engine.bundle import Model
from microsight.engine.evaluate import (
    Evaluation,
    evaluation_report,
    model_sections,
    score_sources,
    summarize,
)
from microsight.engine.predict import TiledPredictor, TileSettings, input_normalizer
from microsight.families.segmentation.module import SegmentationModule
from microsight.methods.unet_seg.config import UNetSegConfig
from microsight.metrics.segmentation import semantic_scores
from microsight.nn import UNet

SEMANTIC_METRICS = ("mean_iou", "mean_dice", "accuracy")


def instances_from_classes(probabilities: np.ndarray, min_size: int = 0) -> np.ndarray:
    """Objects from class probabilities: connected interiors grown over object pixels."""
    from skimage.segmentation import watershed

    classes = np.argmax(probabilities, axis=0)
    markers, n = ndimage.label(classes == 1)
    if n == 0:
        return np.zeros(classes.shape, np.int32)
    labels = watershed(-probabilities[1], markers, mask=classes > 0).astype(np.int32)
    if min_size > 0:
        area = np.bincount(labels.ravel())
        labels[area[labels] < min_size] = 0
    return labels


class _ClassWriter:
    """Receives probability row bands and writes the class map (no objects to stitch)."""

    def __init__(self, put_labels: Callable, n_classes: int):
        self.put_labels, self.n_classes = put_labels, n_classes
        self.counts = np.zeros(n_classes, np.int64)
        self.polygons: dict = {}

    def add(self, region: tuple[slice, ...], dense: np.ndarray) -> None:
        classes = np.argmax(dense, axis=0).astype(np.int32)
        self.counts += np.bincount(classes.ravel(), minlength=self.n_classes)
        self.put_labels(region, classes)

    def table(self) -> dict[str, np.ndarray]:
        return {"label": np.arange(self.n_classes), "area": self.counts}


class UNetSegModule(SegmentationModule):
    """U-Net from an image to one logit per class."""

    table_suffix = "_classes.csv"
    #: Class maps, not objects: only the loss is shown during training.
    val_metrics = ()

    @classmethod
    def network_channels(cls, config: Configuration) -> int:
        return config.method.n_classes

    @classmethod
    def uses_instances(cls, config: Configuration) -> bool:
        return config.method.targets == "instances"

    @classmethod
    def prob_channels(cls, config: Configuration) -> tuple[int, ...]:
        return tuple(range(config.method.n_classes))

    def build_network(self, config: Configuration, in_channels: int, out_channels: int
                      ) -> nn.Module:
        m: UNetSegConfig = config.method
        return UNet(m.ndim, in_channels, out_channels, depth=m.depth,
                    base_channels=m.base_channels, kernel_size=3, batch_norm=m.batch_norm,
                    residual=False)

    @classmethod
    def fit_to_labels(cls, config: Configuration, labels: list[np.ndarray]) -> None:
        m: UNetSegConfig = config.method
        if m.class_weights != "balanced":
            return
        counts = np.zeros(m.n_classes)
        for lab in labels:
            classes = cls.target_classes(config, np.round(lab[0]).astype(np.int64)[None])
            counts += np.bincount(classes.ravel(), minlength=m.n_classes)[: m.n_classes]
        freq = np.maximum(counts / max(counts.sum(), 1), 1e-4)
        # Inverse square root: counters imbalance without letting rare classes dominate.
        w = 1 / np.sqrt(freq)
        m.class_weights = [round(float(v), 4) for v in w / w.mean()]

    @staticmethod
    def target_classes(config: Configuration, labels: np.ndarray) -> np.ndarray:
        """Class map ``(B, *S)`` of a batch of label (or class) patches."""
        m: UNetSegConfig = config.method
        if m.targets == "classes":
            return np.clip(labels, 0, m.n_classes - 1)
        classes = (labels > 0).astype(np.int64)
        if m.n_classes == 3:
            for b in range(len(labels)):
                classes[b][inner_boundaries(labels[b])] = 2
        return classes

    def make_targets(self, labels: np.ndarray) -> np.ndarray:
        classes = self.target_classes(self.config, labels)
        n = self.config.method.n_classes
        onehot = np.eye(n, dtype=np.float32)[classes]
        return np.moveaxis(onehot, -1, 1)

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        w = self.config.method.class_weights
        weight = None if isinstance(w, str) else torch.tensor(w, device=prediction.device)
        return nn.functional.cross_entropy(prediction.float(), target.argmax(dim=1),
                                           weight=weight)

    def point_estimate(self, output: torch.Tensor) -> torch.Tensor:
        return torch.softmax(output.float(), dim=1)

    # --- prediction -------------------------------------------------------------------
    @classmethod
    def run_item(cls, model: Model, read: Callable, shape: tuple[int, ...],
                 sample: Callable[[], np.ndarray], put_labels: Callable,
                 put_prob: Callable | None, settings: TileSettings | None = None,
                 advance: Callable | None = None) -> Any:
        """Class probabilities tile by tile; the class map is their arg-max per pixel."""
        settings = settings or TileSettings.default(len(shape))
        x_norm = input_normalizer(model.normalization, sample)
        writer = _ClassWriter(put_labels, model.config.method.n_classes)

        def write(region, dense):
            if put_prob is not None:
                put_prob(region, dense)
            writer.add(region, dense)

        TiledPredictor(model.module, settings).run(
            shape, lambda r: x_norm.apply(read(r)), write, advance=advance)
        return writer

    @classmethod
    def instance_labels(cls, model: Model, item: np.ndarray, settings: TileSettings | None
                        ) -> tuple[np.ndarray, np.ndarray | None]:
        seg = cls.segment(model, item, settings)
        return instances_from_classes(seg.probability, model.config.method.min_size), \
            seg.probability

    # --- evaluation -----------------------------------------------------------------
    @classmethod
    def extra_metrics(cls, model: Model) -> tuple[str, ...]:
        return ("mean_iou", "mean_dice")

    @classmethod
    def extra_scores(cls, model: Model, item: np.ndarray, truth: np.ndarray,
                     labels: np.ndarray, prob: np.ndarray | None, source: str
                     ) -> dict[str, float]:
        n = model.config.method.n_classes
        want = cls.target_classes(model.config, truth[None])[0]
        if prob is not None:
            got = np.argmax(prob, axis=0)
        else:
            got = cls.target_classes(model.config, labels[None].astype(np.int64))[0]
        s = semantic_scores(want, got, n)
        return {"mean_iou": s["mean_iou"], "mean_dice": s["mean_dice"]}

    @classmethod
    def evaluate_model(cls, model: Model, input: str | Path, target: str | Path, *,
                       axes: str | None = None, report: str | Path | None = None,
                       settings: TileSettings | None = None) -> Evaluation:
        """Instance and class metrics (instance targets), or class metrics (class maps)."""
        if cls.uses_instances(model.config):
            return super().evaluate_model(model, input, target, axes=axes, report=report,
                                          settings=settings)
        n = model.config.method.n_classes
        inputs, targets, summary = load_items(input, target, ndim=model.ndim, axes=axes)
        items = [(name, x, np.clip(np.round(y[0]).astype(np.int64), 0, n - 1))
                 for name, x, y in zip(summary["item_names"], inputs, targets, strict=True)]
        rows = score_sources(items, {"network": lambda x: cls.segment(model, x, settings)},
                             lambda seg, truth, *_: semantic_scores(truth, seg.labels, n)).rows
        result = Evaluation(rows, summarize(rows, SEMANTIC_METRICS))
        if report is not None:

            rep = evaluation_report(model, rows,
                                    subtitle="method unet-seg (semantic segmentation)")
            rep.add_table("Test metrics (mean over images)", result.summary,
                          note="IoU and Dice per class; means over the non-background classes.")
            rep.add_table("Per-image metrics", rows)
            model_sections(rep, model)
            result.report_path = rep.write(report)
        return result
