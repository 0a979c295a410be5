"""Classification of crops, images and the objects of a label image with a small ResNet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from microsight.config import Configuration, get_method
from microsight.data.crops import extract_crop, object_crops, pad_value
from microsight.data.layout import item_indices, read_item
from microsight.engine.bundle import Model
from microsight.engine.evaluate import Evaluation, evaluation_report, model_sections
from microsight.engine.files import atomic_write_text
from microsight.engine.module import MicrosightModule
from microsight.engine.progress import progress_bar
from microsight.errors import MicrosightError
from microsight.families.crops.module import (
    CropMixin,
    class_names,
    model_crops,
    model_folder_crops,
)
from microsight.io import Image, read_image
from microsight.io.labels import read_labels
from microsight.methods.classify.config import ClassifyConfig
from microsight.metrics.classification import (
    balanced_accuracy,
    classification_metrics,
    confusion_matrix,
    per_class_metrics,
)
from microsight.nn.resnet import ResNet

PREDICT_BATCH = 256


def dihedral_views(x: torch.Tensor) -> list[torch.Tensor]:
    """The 8 flips/rotations of a batch ``(B, C, Y, X)`` (square YX)."""
    views = []
    for k in range(4):
        r = torch.rot90(x, k, dims=(-2, -1))
        views += [r, torch.flip(r, dims=(-1,))]
    return views


@torch.inference_mode()
def predict_probabilities(model: Model, crops: np.ndarray, *, tta: bool | None = None
                          ) -> np.ndarray:
    """Class probabilities ``(N, K)`` of normalized crops ``(N, C, S, S)``."""
    module = model.module
    module.eval()
    tta = bool(model.config.method.tta) if tta is None else tta
    device = next(module.parameters()).device
    out = []
    for i in range(0, len(crops), PREDICT_BATCH):
        x = torch.from_numpy(np.ascontiguousarray(crops[i:i + PREDICT_BATCH])).to(device)
        views = dihedral_views(x) if tta and x.shape[-1] == x.shape[-2] else [x]
        p = sum(torch.softmax(module(v).float(), dim=1) for v in views) / len(views)
        out.append(p.cpu().numpy())
    k = int(model.info["out_channels"])
    return np.concatenate(out) if out else np.zeros((0, k), np.float32)


def _result(names: list[str], p: np.ndarray, **extra: Any) -> dict[str, Any]:
    best = int(np.argmax(p))
    return {**extra, "class": names[best], "class_index": best, "probability": float(p[best]),
            "probabilities": {n: float(v) for n, v in zip(names, p, strict=True)}}


def _as_image(image: str | Path | np.ndarray | Image, axes: str | None) -> Image:
    if isinstance(image, Image):
        return image
    if isinstance(image, np.ndarray):
        from microsight.axes import validate_axes

        if axes is None and image.ndim != 2:
            raise MicrosightError(f"a {image.ndim}D array needs axes, e.g. axes='CYX'")
        return Image(image, validate_axes(axes or "YX", image.ndim), {})
    return read_image(image, axes=axes)


def classify_crops(model: Model, raw: np.ndarray, *, tta: bool | None = None
                   ) -> list[dict[str, Any]]:
    """Classify raw crops ``(N, C, S, S)`` (training size and channels)."""
    probs = predict_probabilities(model, model_crops(model, raw), tta=tta)
    names = class_names(model)
    return [_result(names, p, index=i) for i, p in enumerate(probs)]


def classify_folder(model: Model, folder: str | Path, *, axes: str | None = None,
                    tta: bool | None = None) -> list[dict[str, Any]]:
    """Classify every image of a folder (flat, or with class subfolders): one dict each."""
    raw, _, _, samples = model_folder_crops(model, folder, axes)
    probs = predict_probabilities(model, model_crops(model, raw), tta=tta)
    names = class_names(model)
    return [_result(names, p, sample=s) for s, p in zip(samples, probs, strict=True)]


def classify_objects(model: Model, image: str | Path | np.ndarray | Image,
                     labels: str | Path | np.ndarray, *, axes: str | None = None,
                     tta: bool | None = None) -> list[dict[str, Any]]:
    """Classify every object of a label image from a crop centred on it.

    Parameters
    ----------
    model : Model
        A ``classify`` model (crop size and channels as in training).
    image : path, array or Image
        The image (``YX`` or ``CYX``; arrays need ``axes`` unless 2D).
    labels : path or array
        ``YX`` label image of the same size (0 = background), e.g. from a segmentation.
    axes : str, optional
        Axes of ``image``.
    tta : bool, optional
        Override the model's test-time augmentation setting.

    Returns
    -------
    list of dict
        Per object: ``label`` (object id), ``centroid_y``, ``centroid_x``, ``class``,
        ``probability`` and all ``probabilities``.
    """
    img = _as_image(image, axes)
    indices = item_indices(img.axes, img.shape, 2, img.name)
    if len(indices) != 1:
        raise MicrosightError(
            f"{img.name} holds {len(indices)} planes; classify objects one YX/CYX image at a time")
    item = np.asarray(read_item(img.data, img.axes, 2, indices[0]), np.float32)
    lab = read_labels(labels) if not isinstance(labels, np.ndarray) else np.asarray(labels)
    lab = np.squeeze(lab)
    size = int(model.normalization["crop_size"])
    ids, centroids, raw = object_crops(item, lab, size)
    if not len(ids):
        return []
    probs = predict_probabilities(model, model_crops(model, raw), tta=tta)
    names = class_names(model)
    return [_result(names, p, label=int(i), centroid_y=float(c[0]), centroid_x=float(c[1]))
            for i, c, p in zip(ids, centroids, probs, strict=True)]


def write_results(results: list[dict[str, Any]], out: str | Path) -> Path:
    """Write results as ``.json`` or as a flat ``.csv`` table (one row per result)."""
    out = Path(out)
    if out.suffix.lower() == ".json":
        return atomic_write_text(out, json.dumps(results, indent=2))
    if out.suffix.lower() != ".csv":
        raise MicrosightError(f"{out.name}: classification results are written as .csv or .json")
    import csv
    import io

    rows = [{**{k: v for k, v in r.items() if k != "probabilities"},
             **{f"p_{n}": v for n, v in r.get("probabilities", {}).items()}} for r in results]
    buf = io.StringIO()
    cols = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(buf, fieldnames=cols)
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(out, buf.getvalue())


def confusion_figure(cm: np.ndarray, names: list[str]) -> Any:
    """Confusion matrix: colour = share of the true class (row), text = counts."""
    from matplotlib.figure import Figure

    k = len(names)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    fig = Figure(figsize=(1.2 + 0.7 * k, 1.0 + 0.6 * k))
    ax = fig.add_subplot()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of true class")
    fig.tight_layout()
    return fig


class ClassifyModule(CropMixin, MicrosightModule):
    """A small ResNet trained with cross-entropy on fixed-size crops.

    ``val_loss`` is the class-balanced cross-entropy (mean over classes of the per-class
    mean), so best-epoch selection and early stopping favour rare classes as much as the
    balanced accuracy does; ``val_accuracy`` and ``val_balanced_accuracy`` are logged as
    well, the latter shown.
    """

    val_metrics = ("val_balanced_accuracy",)

    def __init__(self, config: Configuration, in_channels: int = 1, out_channels: int = 2):
        super().__init__(config, in_channels, out_channels)
        self._val_logits: list[torch.Tensor] = []
        self._val_labels: list[torch.Tensor] = []
        self._loss_weight = None

    @property
    def n_classes(self) -> int:
        return self.out_channels

    def build_network(self, config: Configuration, in_channels: int, out_channels: int
                      ) -> nn.Module:
        m: ClassifyConfig = config.method
        return ResNet(in_channels, out_channels, tuple(m.widths), m.blocks, m.dropout)

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(
            prediction.float(), target, weight=self._loss_weight,
            label_smoothing=self.config.method.label_smoothing)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        idx = self.draw_indices(self.config.data.batch_size)
        x, y = self.augmented(idx), self._labels[idx]
        loss = self.loss(self(x), y)
        self._train_loss_sum += float(loss.detach())
        self._train_loss_n += 1
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False,
                 batch_size=x.shape[0])
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_logits, self._val_labels = [], []

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self._val_logits.append(self(x).float().detach())
        self._val_labels.append(y[:, 0, 0, 0].long())

    def on_validation_epoch_end(self) -> None:
        logits, labels = torch.cat(self._val_logits), torch.cat(self._val_labels)
        ce = nn.functional.cross_entropy(logits, labels, reduction="none")
        present = torch.unique(labels)
        val_loss = float(torch.stack([ce[labels == c].mean() for c in present]).mean())
        pred = logits.argmax(1).cpu().numpy()
        true = labels.cpu().numpy()
        self.log("val_loss", val_loss, prog_bar=True)
        self.log("val_accuracy", float(np.mean(pred == true)), prog_bar=False)
        self.log("val_balanced_accuracy", balanced_accuracy(true, pred, self.n_classes),
                 prog_bar=True)

    @torch.inference_mode()
    def predict_batch(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self(x).float(), dim=1)

    # --- prediction and evaluation hooks (api.predict / api.evaluate) ------------------
    @classmethod
    def predict_image(cls, model: Model, image: Image, out: str | Path | None = None, *,
                      settings: Any = None, progress: bool = False) -> Any:
        """Classify an image (each S/T plane is one sample) -> dict (or list of dicts).

        The image is centre-cropped or padded to the training crop size. With ``out``
        (.csv or .json) the results are written there and the path is returned.
        """
        size = int(model.normalization["crop_size"])
        raw, names = [], []
        for ix in item_indices(image.axes, image.shape, 2, image.name):
            item = np.asarray(read_item(image.data, image.axes, 2, ix), np.float32)
            _, h, w = item.shape
            raw.append(extract_crop(item, ((h - size) // 2 + size // 2,
                                           (w - size) // 2 + size // 2), size, pad_value(item)))
            names.append(image.name + ("[" + ",".join(f"{a}={i}" for a, i in ix.items()) + "]"
                                       if ix else ""))
        with progress_bar(progress, "crops") as bar:
            task = bar.add_task(f"classifying {image.name}", total=len(raw))
            results = classify_crops(model, np.stack(raw))
            bar.advance(task, len(raw))
        for r, n in zip(results, names, strict=True):
            r.pop("index")
            r["image"] = n
        if out is not None:
            return write_results(results, out)
        return results[0] if len(results) == 1 else results

    @classmethod
    def evaluate_model(cls, model: Model, input: str | Path, target: str | Path | None = None,
                       *, axes: str | None = None, report: str | Path | None = None,
                       settings: Any = None) -> Evaluation:
        """Score the model on a folder of class subfolders (``input``); ``target`` is
        ignored (the labels are the subfolder names)."""
        raw, y, names, samples = model_folder_crops(model, input, axes)
        if names != class_names(model) or len(names) < 2:
            raise MicrosightError(
                f"{input}: evaluation needs a folder with one subfolder per class of the model "
                f"({', '.join(class_names(model))})")
        probs = predict_probabilities(model, model_crops(model, raw))
        pred = probs.argmax(1)
        rows = [{"image": s, "source": "network", "true": names[t], "predicted": names[p],
                 "probability": float(pr[p]), "correct": float(t == p)}
                for s, t, p, pr in zip(samples, y, pred, probs, strict=True)]
        k = len(names)
        summary = [{"source": "network", "images": len(y),
                    **classification_metrics(y, pred, k)}]
        result = Evaluation(rows, summary)
        result.per_class = per_class_metrics(y, pred, names)
        result.confusion = confusion_matrix(y, pred, k)
        if report is not None:
            result.report_path = write_classification_report(model, result, names, report)
        return result


def write_classification_report(model: Model, result: Evaluation, names: list[str],
                                path: str | Path) -> Path:
    """Summary, per-class table, confusion matrix, history and configuration."""
    info = get_method(model.method)
    rep = evaluation_report(model, result.rows,
                            subtitle=f"method {info.name} ({info.summary})")
    rep.add_table("Test metrics", result.summary,
                  note="Balanced accuracy is the mean recall over classes: rare classes count "
                       "as much as common ones.")
    rep.add_figure("Confusion matrix", confusion_figure(result.confusion, names),
                   caption="Rows: true class; columns: predicted class; numbers are counts.")
    rep.add_table("Per-class metrics", result.per_class)
    wrong = [r for r in result.rows if not r["correct"]][:200]
    rep.add_table("Misclassified samples (first 200)", wrong)
    model_sections(rep, model)
    return rep.write(path)


__all__ = ["ClassifyModule", "classify_crops", "classify_folder", "classify_objects",
           "confusion_figure", "predict_probabilities", "write_results"]
