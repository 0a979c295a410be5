"""What crop-based methods (``classify``, ``embed``) share.

Data: a folder of class subfolders becomes a :class:`~microsight.data.crops.CropSet`
whose items are the normalized crops and whose targets are constant maps holding the
class index. The engine's :func:`~microsight.engine.training.train_model` builds its
:class:`~microsight.engine.sampling.PatchSampler` on them unchanged (patch size = crop
size, so the sampler's flat buffers hold the crops back to back) and its validation
batches are the whole validation crops. The modules here do not use the sampler's patch
draws: at the start of fitting they view its on-device buffers as ``(C, N, S*S)`` crops
plus one label per crop, then draw crop indices (class-balanced if asked) and apply
the sampler's flip/rotation index grids, a random shift and an intensity gain in one
gather per batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from microsight.config import Configuration
from microsight.data.crops import (
    CropSet,
    balanced_weights,
    class_counts,
    class_folders,
    fit_to_size,
    image_items,
    load_class_folder,
    stratified_split,
)
from microsight.data.normalization import Normalizer, fit_normalizer
from microsight.engine.bundle import Model
from microsight.errors import MicrosightError
from microsight.io import list_images


def crop_size(config: Configuration) -> int:
    """The crop edge: ``data.patch_size`` (must be square)."""
    size = config.data.patch_size
    if len(size) != 2 or size[0] != size[1]:
        raise MicrosightError(
            f"data.patch_size is the crop size of {config.method.method} and must be square "
            f"YX, got {size}")
    return int(size[0])


def load_unlabelled_or_classes(path: Path, size: int, axes: str | None, allow_flat: bool
                               ) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Class subfolders, or (if ``allow_flat``) a flat folder of crops as one class."""
    has_subs = path.is_dir() and any(p.is_dir() and not p.name.startswith(".")
                                     for p in path.iterdir())
    if allow_flat and path.is_dir() and not has_subs:
        crops, names = [], []
        for file in list_images(path):
            for k, item in enumerate(image_items(file, axes)):
                crops.append(fit_to_size(item, size))
                names.append(file.name + (f"[{k}]" if k else ""))
        return np.stack(crops), np.zeros(len(crops), np.int64), ["unlabelled"], names
    return load_class_folder(path, size, axes=axes)


def fit_crop_normalization(crops: np.ndarray, config: Configuration) -> dict[str, Any]:
    """Percentile parameters over all training crops (``dataset``) or per crop."""
    norm = config.data.normalization
    out: dict[str, Any] = {"mode": norm.mode, "p_low": norm.p_low, "p_high": norm.p_high}
    if norm.mode == "dataset":
        pooled = crops.transpose(1, 0, 2, 3).reshape(crops.shape[1], -1, crops.shape[-1])
        out["input"] = fit_normalizer([pooled], p_low=norm.p_low, p_high=norm.p_high).to_dict()
    return out


def normalize_crops(crops: np.ndarray, normalization: dict[str, Any]) -> np.ndarray:
    """Apply the saved normalization to raw ``(N, C, S, S)`` crops."""
    crops = np.asarray(crops, np.float32)
    if normalization.get("mode") == "per_image":
        p_low, p_high = normalization["p_low"], normalization["p_high"]
        return np.stack([fit_normalizer([c], p_low=p_low, p_high=p_high).apply(c)
                         for c in crops]) if len(crops) else crops
    norm = Normalizer.from_dict(normalization["input"])
    return norm.apply(crops.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3).copy()


class CropMixin:
    """Data preparation and on-device crop sampling for crop-based methods."""

    allow_unlabelled = False

    @classmethod
    def prepare_training(cls, config: Configuration, input_path: str | Path,
                         target_path: str | Path | None, axes: str | None = None
                         ) -> tuple[CropSet, dict[str, Any]]:
        """Read class subfolders, split them (stratified) and normalize the crops."""
        name = cls.method_name
        if target_path is not None:
            raise MicrosightError(
                f"method {name} reads the classes from the subfolders of --input; drop --target")
        size = crop_size(config)
        root = Path(input_path)
        if not root.exists():
            raise MicrosightError(f"{root}: folder not found; check the path")
        flat = cls.allow_unlabelled
        given = config.data.val_input
        if given or ((root / "train").is_dir() and (root / "val").is_dir()):
            tr, va = (root, Path(given)) if given else (root / "train", root / "val")
            xt, yt, names, _ = load_unlabelled_or_classes(tr, size, axes, flat)
            if names == ["unlabelled"]:
                xv, yv, _, _ = load_unlabelled_or_classes(va, size, axes, flat)
            else:
                xv, yv, _, _ = load_class_folder(va, size, axes=axes, classes=names)
            split = ("fixed: validation crops given apart (--val-input)" if given else
                     "fixed: train/ and val/ subfolders")
            rule = "given" if given else "folders"
        else:
            x, y, names, _ = load_unlabelled_or_classes(root, size, axes, flat)
            f = config.data.val_fraction
            part = stratified_split(y, {"train": 1 - f, "val": f}, seed=config.training.seed)
            if not (part == "val").any() or not (part == "train").any():
                raise MicrosightError(
                    f"{root}: too few samples to hold out a validation set; add samples")
            xt, yt, xv, yv = x[part == "train"], y[part == "train"], x[part == "val"], y[
                part == "val"]
            split = f"stratified per class, {f:.0%} validation, seed {config.training.seed}"
            rule = "stratified"
        if len(names) < 2 and not flat:
            raise MicrosightError(
                f"{root}: found only class {names[0]!r}; classification needs at least 2 class "
                "subfolders")
        normalization = fit_crop_normalization(xt, config)
        xt, xv = normalize_crops(xt, normalization), normalize_crops(xv, normalization)
        normalization.update({"classes": names, "crop_size": size, "channels": int(xt.shape[1])})
        dtype = np.uint8 if len(names) < 256 else np.int32

        def maps(labels: np.ndarray) -> list[np.ndarray]:
            return [np.full((1, size, size), v, dtype) for v in labels]

        n = len(names)
        summary = {"input": str(root), "items": int(len(xt) + len(xv)), "axes": ["CYX"],
                   "classes": dict(zip(names, class_counts(np.concatenate([yt, yv]), n).tolist(),
                                       strict=True)),
                   "train": int(len(xt)), "val": int(len(xv)), "split": split,
                   "split_rule": rule, "crop_size": size}
        data = CropSet(list(xt), maps(yt), list(xv), maps(yv), summary, n_classes=n)
        return data, normalization

    # --- on-device crops -------------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        s = self.sampler
        size = s.patch[-1]
        c, total = s.x_buf.shape
        n = total // (size * size)
        self._crops = s.x_buf.view(c, n, size * size)
        self._labels = s.y_buf[0].view(n, size * size)[:, 0].long()
        labels = self._labels.cpu().numpy()
        k = int(getattr(self, "n_classes", 0) or labels.max() + 1)
        m = self.config.method
        power = float(getattr(m, "balance_power", 1.0))
        balance = getattr(m, "balance", "none")
        draw = balanced_weights(labels, k, power) if balance == "sampling" else np.full(
            n, 1.0 / n)
        self._draw = torch.as_tensor(draw, dtype=torch.float64, device=self.device)
        counts = class_counts(labels, k).astype(np.float64)
        weight = np.where(counts > 0, counts, 1.0) ** -power
        weight = weight / weight[counts > 0].mean()
        self._loss_weight = (torch.as_tensor(weight, dtype=torch.float32, device=self.device)
                             if balance == "loss" else None)

    def draw_indices(self, n: int) -> torch.Tensor:
        """Indices of ``n`` training crops (class-balanced if configured)."""
        return torch.multinomial(self._draw, n, replacement=True,
                                 generator=self.sampler.generator)

    def augmented(self, idx: torch.Tensor) -> torch.Tensor:
        """Training crops ``idx`` with a random flip/rotation, shift and gain."""
        c, b = self._crops.shape[0], len(idx)
        size = self.sampler.patch[-1]
        return self.augment_batch(self._crops[:, idx].transpose(0, 1).reshape(b, c, size, size))

    def augment_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Random flip/rotation (the sampler's index grids), shift and gain of ``(B, C, S, S)``."""
        s = self.sampler
        g, dev = s.generator, x.device
        b, c, size = x.shape[0], x.shape[1], x.shape[-1]
        choice = (torch.rand(b, generator=g, device=dev) * len(s.grids)).long()
        grid = s.grids[choice]
        shift = int(getattr(self.config.method, "max_shift", 0))
        if shift:
            offset = torch.randint(-shift, shift + 1, (b, 2, 1, 1), generator=g, device=dev)
            grid = (grid + offset).clamp(0, size - 1)
        flat = (grid[:, 0] * size + grid[:, 1]).reshape(b, 1, -1).expand(-1, c, -1)
        x = torch.gather(x.reshape(b, c, -1), 2, flat).reshape(b, c, size, size)
        jitter = self.config.data.intensity_jitter
        if jitter > 0:
            gain = 1 + jitter * (2 * torch.rand(b, 1, 1, 1, generator=g, device=dev) - 1)
            x = x * gain
        return x.contiguous()


def model_crops(model: Model, raw: np.ndarray) -> np.ndarray:
    """Check channels of raw ``(N, C, S, S)`` crops and normalize them as in training."""
    want = int(model.info["in_channels"])
    if raw.ndim != 4 or raw.shape[1] != want:
        raise MicrosightError(
            f"the model expects {want} channel(s) but the crops have shape {raw.shape} "
            "(N, C, Y, X); give images with the training channels")
    return normalize_crops(raw, model.normalization)


def class_names(model: Model) -> list[str]:
    return list(model.normalization.get("classes", []))


def model_folder_crops(model: Model, folder: str | Path, axes: str | None = None
                       ) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Read a labelled (class subfolders) or flat folder at the model's crop size."""
    size = int(model.normalization["crop_size"])
    path = Path(folder)
    names = class_names(model)
    if path.is_dir() and class_folders_or_none(path):
        return load_class_folder(path, size, axes=axes, classes=names)
    return load_unlabelled_or_classes(path, size, axes, allow_flat=True)


def class_folders_or_none(path: Path) -> list[Path]:
    try:
        return class_folders(path)
    except MicrosightError:
        return []
