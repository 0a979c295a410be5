"""Out-of-distribution checks: does a new image look like the model's training data?

At the end of training, :func:`fit_descriptor` summarises the (normalized)
training images in two ways and stores the result in the bundle as
``ood.json``:

- **intensity statistics** per image and channel (1st, 50th and 99th
  percentiles, mean, standard deviation, noise level, and the decimal log of
  the 1-99 percentile range), in the normalized units the network sees; a new
  image is scored by the largest absolute z-score of its statistics against
  the training images. Brightness varies multiplicatively between images, so
  a dimmed image hides among the training images on a linear scale but not on
  the log scale;
- **encoder features**: the module's ``features(x)`` hook (globally pooled
  bottleneck activations of the U-Net by default) over patches of the
  training patch size, summarised by a probabilistic PCA (mean, leading
  components, their variances and an isotropic residual variance). A new
  image is scored by the mean Mahalanobis distance of its patches.

Each score has a threshold calibrated on the training and validation images
themselves: the 99th percentile of their scores, each image scored by a
model fitted without it (cross-fitting over contiguous blocks of images, so
that whole fields are held out), so the threshold reflects new images of the
same kind, not the images the summary was fitted on; a margin of
``1 / sqrt(n)`` for ``n`` calibration images widens it when there are few. The
reported ``score`` is the larger of the two scores divided by its threshold:
above 1, the image is outside what the model has seen.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from microsight.data.baselines import noise_sigma
from microsight.data.layout import item_indices, read_item
from microsight.data.normalization import subsample
from microsight.data.tiling import tile_starts
from microsight.engine.files import atomic_write_text
from microsight.engine.predict import input_normalizer
from microsight.errors import OutOfDistributionWarning

OOD_FILE = "ood.json"
DESCRIPTOR_VERSION = 1
#: Training images summarised (evenly spaced), and patches per image.
MAX_IMAGES = 64
PATCHES_PER_IMAGE = 8
#: Cross-fitting folds (contiguous blocks of training images).
FOLDS = 4
#: Quantile of the cross-fitted training scores used as threshold.
QUANTILE = 0.99
#: Leading principal components kept of the feature distribution.
COMPONENTS = 16
#: Smallest spread of an intensity statistic (normalized units, 1 = the training
#: range): per-image normalization makes some statistics nearly constant, and a
#: new image should not be flagged for a shift of a few percent of the range.
STAT_STD_FLOOR = 0.05
#: Smallest intensity threshold (in z-scores).
MIN_Z_THRESHOLD = 3.0
#: Noise is estimated on a central crop at most this large (strided pixels would
#: mix structure into the estimate).
NOISE_CROP = 256
#: Items of a stack scored at prediction (evenly spaced).
MAX_ITEMS = 8
STAT_NAMES = ("p1", "p50", "p99", "mean", "std", "noise", "log_range")
#: Smallest range used in the log statistic (normalized units).
MIN_RANGE = 1e-3


# --- statistics of one normalized item --------------------------------------------------
def _noise(plane: np.ndarray) -> float:
    centre = tuple(slice(max(0, (s - NOISE_CROP) // 2), max(0, (s - NOISE_CROP) // 2)
                         + NOISE_CROP) for s in plane.shape)
    return noise_sigma(plane[centre]) if min(plane.shape[-2:]) >= 3 else 0.0


def intensity_stats(item: np.ndarray, names: tuple[str, ...] = STAT_NAMES) -> np.ndarray:
    """Statistics of a normalized channels-first item, ``len(names)`` per channel.

    Parameters
    ----------
    item : numpy.ndarray
        ``(C, *spatial)`` normalized image (lazy arrays are subsampled).
    names : tuple of str
        Which statistics, in order (a subset of :data:`STAT_NAMES`; descriptors
        written before a statistic existed list fewer).

    Returns
    -------
    numpy.ndarray
        Flat float64 vector: for each channel, the statistics in ``names``.
    """
    sample = subsample(item, 1_000_000).reshape(item.shape[0], -1).astype(np.float64)
    p1, p50, p99 = np.percentile(sample, [1, 50, 99], axis=1)
    out = []
    for c in range(item.shape[0]):
        plane = np.asarray(item[c]) if item.ndim == 3 else np.asarray(item[c, item.shape[1] // 2])
        values = {"p1": p1[c], "p50": p50[c], "p99": p99[c], "mean": sample[c].mean(),
                  "std": sample[c].std(), "noise": _noise(plane),
                  "log_range": np.log10(max(p99[c] - p1[c], MIN_RANGE))}
        out += [values[n] for n in names]
    return np.asarray(out, np.float64)


def descriptor_stat_names(desc: dict[str, Any]) -> tuple[tuple[str, ...], int]:
    """The per-channel statistic names of a descriptor and its number of channels."""
    names = desc["intensity"]["names"]
    channels = len({n.split("_", 1)[0] for n in names})
    return tuple(n.split("_", 1)[1] for n in names[: len(names) // channels]), channels


def patch_regions(spatial: tuple[int, ...], patch: tuple[int, ...], divisor: int,
                  n: int = PATCHES_PER_IMAGE) -> list[tuple[slice, ...]]:
    """Up to ``n`` evenly spaced patch regions covering an item of shape ``spatial``.

    Patches are ``patch`` sized, shrunk to the item (a multiple of ``divisor``);
    an item smaller than ``divisor`` along an axis has none.
    """
    sizes = [min(p, s) // divisor * divisor for p, s in zip(patch, spatial, strict=True)]
    if min(sizes) < divisor:
        return []
    grids = [tile_starts(s, t, 0) for s, t in zip(spatial, sizes, strict=True)]
    starts = np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, len(sizes))
    pick = np.unique(np.linspace(0, len(starts) - 1, min(n, len(starts))).round().astype(int))
    return [tuple(slice(int(a), int(a) + t) for a, t in zip(starts[i], sizes, strict=True))
            for i in pick]


@torch.inference_mode()
def patch_features(module, patches: list[np.ndarray], batch_size: int = 32
                   ) -> np.ndarray | None:
    """Pooled features ``(n, F)`` of normalized patches, or None without a features hook."""
    hook = getattr(module, "features", None)
    if hook is None or not patches:
        return None
    device = next(module.parameters()).device
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, p in enumerate(patches):
        by_shape.setdefault(p.shape, []).append(i)
    feats: list[np.ndarray | None] = [None] * len(patches)
    for idx in by_shape.values():
        for i in range(0, len(idx), batch_size):
            chunk = idx[i:i + batch_size]
            x = torch.from_numpy(np.stack([patches[j] for j in chunk]).astype(np.float32))
            f = hook(x.to(device))
            if f is None:
                return None
            for j, row in zip(chunk, f.float().cpu().numpy(), strict=True):
                feats[j] = row
    return np.stack(feats).astype(np.float64)


# --- the two scorers ----------------------------------------------------------------------
def fit_ppca(x: np.ndarray, k: int = COMPONENTS) -> dict[str, Any]:
    """Probabilistic PCA of rows ``x``: mean, ``k`` components and variances, residual variance."""
    mean = x.mean(0)
    centred = x - mean
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s**2 / max(len(x) - 1, 1)
    k = max(1, min(k, len(var) - 1 if len(var) > 1 else 1))
    rest = var[k:]
    residual = float(rest.sum() / max(x.shape[1] - k, 1)) if len(rest) else float(var[-1])
    # A floor relative to the total variance keeps degenerate (tiny) training sets finite.
    floor = 1e-6 * float(var.sum()) / x.shape[1] + 1e-12
    return {"mean": mean, "components": vt[:k], "variances": np.maximum(var[:k], floor),
            "residual": max(residual, floor)}


def ppca_distance(model: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Mahalanobis distance of rows ``x`` under a probabilistic PCA (per feature, RMS)."""
    centred = np.asarray(x, np.float64) - np.asarray(model["mean"])
    comps = np.asarray(model["components"])
    proj = centred @ comps.T
    resid = (centred**2).sum(1) - (proj**2).sum(1)
    d2 = (proj**2 / np.asarray(model["variances"])).sum(1) + np.maximum(resid, 0) / float(
        model["residual"])
    return np.sqrt(d2 / x.shape[1])


def fit_stats(x: np.ndarray) -> dict[str, Any]:
    """Mean and (floored) standard deviation of per-image statistic vectors."""
    return {"mean": x.mean(0), "std": np.maximum(x.std(0), STAT_STD_FLOOR)}


def stats_distance(model: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Largest absolute z-score of each row of ``x``."""
    z = (np.atleast_2d(x) - np.asarray(model["mean"])) / np.asarray(model["std"])
    return np.abs(z).max(1)


def _cross_fitted(rows: np.ndarray, groups: np.ndarray, fit, distance) -> np.ndarray:
    """Distance of every row under a model fitted on the other folds.

    Folds are contiguous blocks of groups (images in file order). Training
    images often come as several frames of each field, stored next to each
    other; folds that alternate between neighbours would put frames of every
    field on both sides and calibrate the threshold on frame-to-frame noise
    alone, so new fields would trip it. Contiguous blocks hold out whole fields.
    """
    _, rank = np.unique(groups, return_inverse=True)
    n_groups = int(rank.max()) + 1 if len(rank) else 0
    k = FOLDS if n_groups >= 2 * FOLDS else 2
    fold = (rank * k) // max(n_groups, 1)
    out = np.empty(len(rows))
    for f in range(k):
        train, test = fold != f, fold == f
        if not train.any() or not test.any():
            return distance(fit(rows), rows)
        out[test] = distance(fit(rows[train]), rows[test])
    return out


def _threshold(scores: np.ndarray) -> float:
    """The :data:`QUANTILE` of calibration scores, widened when there are few of them."""
    # With a handful of images the top quantile is just the largest score seen; the
    # margin (10% at 100 images, 50% at 4) keeps new in-distribution images below it.
    return float(np.quantile(scores, QUANTILE) * (1 + 1 / np.sqrt(len(scores))))


def _group_mean(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    return np.array([values[groups == g].mean() for g in np.unique(groups)])


# --- descriptor ---------------------------------------------------------------------------
def _evenly(items: list, n: int) -> list:
    if len(items) <= n:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def fit_descriptor(module, items: list[np.ndarray], patch_size: tuple[int, ...], *,
                   normalization_mode: str) -> dict[str, Any]:
    """Summarise normalized training items for out-of-distribution scoring.

    Parameters
    ----------
    module : MicrosightModule
        The trained module (eval mode); its ``features`` hook gives the encoder
        features, and ``prepare_batch`` turns stored inputs into network inputs.
    items : list of numpy.ndarray
        Normalized channels-first training (and validation) inputs.
    patch_size : tuple of int
        Training patch size (network-input pixels are derived via ``prepare_batch``).
    normalization_mode : str
        ``dataset`` or ``per_image`` (recorded; prediction normalizes the same way).

    Returns
    -------
    dict
        JSON-ready descriptor (see the module docstring).
    """
    items = _evenly(items, MAX_IMAGES)
    stats = np.stack([intensity_stats(x) for x in items])
    stat_groups = np.arange(len(items)) if len(items) >= 4 else np.zeros(len(items), int)
    stat_scores = _cross_fitted(stats, stat_groups, fit_stats, stats_distance)
    stat_model = fit_stats(stats)
    desc: dict[str, Any] = {
        "version": DESCRIPTOR_VERSION, "normalization_mode": normalization_mode,
        "images": len(items), "patch_size": [int(p) for p in patch_size],
        "intensity": {"names": [f"c{c}_{n}" for c in range(items[0].shape[0])
                                for n in STAT_NAMES],
                      "mean": stat_model["mean"].tolist(), "std": stat_model["std"].tolist(),
                      "threshold": max(_threshold(stat_scores), MIN_Z_THRESHOLD)},
        "features": None,
    }
    patches, owner = [], []
    for i, x in enumerate(items):
        for region in patch_regions(x.shape[1:], tuple(patch_size), module.divisor):
            patches.append(np.asarray(x[(slice(None),) + region], np.float32))
            owner.append(i)
    feats = _stored_input_features(module, patches)
    if feats is None:
        desc["note"] = ("method has no features hook or images are too small: "
                        "only intensity statistics are checked")
        return desc
    owner = np.asarray(owner)
    groups = owner if len(items) >= 4 else np.arange(len(owner))
    patch_scores = _cross_fitted(feats, groups, fit_ppca, ppca_distance)
    image_scores = _group_mean(patch_scores, owner)
    ppca = fit_ppca(feats)
    desc["features"] = {
        "dim": int(feats.shape[1]), "patches": len(feats),
        "mean": ppca["mean"].tolist(), "components": ppca["components"].tolist(),
        "variances": ppca["variances"].tolist(), "residual": ppca["residual"],
        "threshold": _threshold(image_scores),
    }
    return desc


def _stored_input_features(module, patches: list[np.ndarray]) -> np.ndarray | None:
    """Features of training patches as the network sees them (``prepare_batch``)."""
    if not patches:
        return None
    prepared = []
    for p in patches:
        x = torch.from_numpy(p[None])
        prepared.append(module.prepare_batch(x, x)[0][0].numpy())
    return patch_features(module, prepared)


def save_descriptor(folder: str | Path, descriptor: dict[str, Any]) -> Path:
    """Write ``ood.json`` into a bundle folder (compact JSON, 6 significant digits)."""
    text = json.dumps(_rounded(descriptor), separators=(",", ":"))
    return atomic_write_text(Path(folder) / OOD_FILE, text)


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def describe_training_data(model, data, folder: str | Path) -> dict[str, Any] | None:
    """Fit and save the descriptor of a freshly trained model; return it.

    Parameters
    ----------
    model : Model
        The trained model (best weights) loaded from its bundle.
    data : TrainingSet
        The normalized training set (training and validation inputs).
    folder : str or Path
        Bundle folder.
    """
    items = list(data.train_inputs) + list(data.val_inputs or [])
    if not items:
        return None
    desc = fit_descriptor(model.module, items, tuple(model.config.data.patch_size),
                          normalization_mode=model.normalization.get("mode", "dataset"))
    save_descriptor(folder, desc)
    return json.loads((Path(folder) / OOD_FILE).read_text())


# --- scoring at prediction ----------------------------------------------------------------
def score_item(model, item: np.ndarray, read_region=None) -> dict[str, Any]:
    """Score one channels-first item (input intensity scale) against a model's descriptor.

    Parameters
    ----------
    model : Model
        Loaded model with a descriptor (``model.ood``).
    item : numpy.ndarray or lazy array
        ``(C, *spatial)`` raw input.
    read_region : callable, optional
        ``read_region(region) -> (C, *region)`` raw pixels; defaults to slicing ``item``.

    Returns
    -------
    dict
        ``score`` (1 = threshold), ``intensity_z`` and ``feature_distance`` with
        their thresholds.
    """
    desc = model.ood
    read_region = read_region or (lambda r: np.asarray(item[(slice(None),) + r]))
    norm = input_normalizer(model.normalization, lambda: subsample(item))
    spatial = tuple(item.shape[1:])
    k = int(model.module.output_scale)
    patch = tuple(max(1, p // k) for p in desc["patch_size"])
    regions = patch_regions(spatial, patch, model.module.divisor)
    # Statistics on a subsample and on patches only: a huge lazy image is never read whole.
    sample = norm.apply(subsample(item, 1_000_000))
    names, _ = descriptor_stat_names(desc)
    z = float(stats_distance(desc["intensity"], intensity_stats(sample, names))[0])
    result: dict[str, Any] = {"intensity_z": z,
                              "intensity_threshold": desc["intensity"]["threshold"]}
    ratio = z / desc["intensity"]["threshold"]
    if desc.get("features") and regions:
        feats = patch_features(model.module, [norm.apply(read_region(r)) for r in regions])
        if feats is not None and feats.shape[1] == desc["features"]["dim"]:
            d = float(ppca_distance(desc["features"], feats).mean())
            result.update(feature_distance=d, feature_threshold=desc["features"]["threshold"])
            ratio = max(ratio, d / desc["features"]["threshold"])
    result["score"] = float(ratio)
    return result


def score_image(model, image) -> dict[str, Any]:
    """Out-of-distribution verdict for an image (all items up to :data:`MAX_ITEMS`).

    Parameters
    ----------
    model : Model
        Loaded model.
    image : Image
        Input image with its axes.

    Returns
    -------
    dict
        ``available`` (False with a ``note`` when the bundle has no descriptor or
        the method predicts whole items its own way), ``score`` (worst item; above
        1 = outside the training data), ``out_of_distribution`` and per-item details.
    """
    if not getattr(model, "ood", None):
        return {"available": False,
                "note": "the model bundle has no out-of-distribution descriptor "
                        "(trained with an older microsight); retrain to enable the check"}
    if type(model.module).predict_item is not None:
        return {"available": False,
                "note": f"method {model.method} predicts whole items its own way; "
                        "no out-of-distribution check"}
    ndim = model.ndim
    name = image.path.name if image.path else "image"
    indices = _evenly(item_indices(image.axes, image.shape, ndim, name), MAX_ITEMS)
    _, channels = descriptor_stat_names(model.ood)
    items = []
    for index in indices:
        lazy = _LazyItem(image, ndim, index)
        if lazy.shape[0] != channels:
            # Prediction itself reports the channel mismatch to the user.
            return {"available": False, "note": f"{name} has {lazy.shape[0]} channel(s), "
                    f"the model's training data {channels}"}
        items.append({"item": index, **score_item(model, lazy, lazy.region)})
    worst = max(items, key=lambda r: r["score"])
    return {"available": True, "score": worst["score"],
            "out_of_distribution": bool(worst["score"] > 1.0), "items": items}


class _LazyItem:
    """One item of an image, read region by region (never whole for lazy arrays)."""

    def __init__(self, image, ndim: int, index: dict[str, int]):
        self.image, self.ndim, self.index = image, ndim, index
        first = read_item(image.data, image.axes, ndim, index,
                          (slice(0, 1),) * ndim)
        spatial = tuple(s for a, s in zip(image.axes, image.shape, strict=True) if a in "ZYX")
        self.shape = (first.shape[0], *spatial[-ndim:])

    def region(self, region: tuple[slice, ...]) -> np.ndarray:
        return read_item(self.image.data, self.image.axes, self.ndim, self.index, region)

    def __getitem__(self, key) -> np.ndarray:
        return self.region(tuple(key[1:]))[(key[0],)]


def warn_if_outside(report: dict[str, Any], name: str) -> None:
    """Emit one :class:`OutOfDistributionWarning` line when ``report`` flags the image."""
    if report.get("out_of_distribution"):
        warnings.warn(
            f"{name} looks unlike the model's training data (out-of-distribution score "
            f"{report['score']:.2f} > 1); check the output against ground truth before "
            "trusting it", OutOfDistributionWarning, stacklevel=3)


def sidecar_path(out: str | Path) -> Path:
    """``<output>.qc.json`` next to an output file or folder."""
    out = Path(out)
    return out.with_name(out.name + ".qc.json")


def write_sidecar(out: str | Path, record: dict[str, Any]) -> Path:
    """Write the quality record of one prediction next to its output."""
    return atomic_write_text(sidecar_path(out), json.dumps(record, indent=2, default=str))
