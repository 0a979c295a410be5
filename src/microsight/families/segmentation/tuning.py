"""Choosing a segmentation method's post-processing thresholds on annotated images.

The thresholds that turn dense maps into objects (object probability and
polygon overlap for star-convex shapes; mask, marker and peak height for the
distance-map watershed) depend on the data. Rather than leave them to the
user, training chooses them on the validation images, as StarDist does after
training: the dense maps of every image are predicted once, then each
candidate setting only re-runs the object extraction, which is cheap. The
score is the mean of the pooled AP at IoU 0.5 (objects found) and 0.75
(objects well outlined). The current values are kept unless a candidate
beats them.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import track

from microsight.config import config_to_yaml, get_method
from microsight.engine.bundle import Model, update_qc
from microsight.engine.files import atomic_write_text
from microsight.engine.predict import TiledPredictor, TileSettings, input_normalizer
from microsight.metrics.segmentation import matching, pool_matching

OBJECTIVE = "mean of pooled AP@0.5 and AP@0.75"


@dataclass
class Tuning:
    """Post-processing parameters chosen on annotated images."""

    params: dict[str, float]
    score: float
    params_before: dict[str, float]
    score_before: float
    n_images: int
    n_objects: int
    objective: str = OBJECTIVE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def label_images(targets: list[np.ndarray]) -> list[np.ndarray]:
    """Integer label images ``(*spatial)`` from loaded label targets ``(1, *spatial)``."""
    return [np.round(t[0]).astype(np.int32) for t in targets]


def dense_outputs(model: Model, item: np.ndarray, *, normalized: bool = False) -> np.ndarray:
    """The network's dense maps ``(C, *spatial)`` of one ``(C, *spatial)`` item.

    Parameters
    ----------
    model : Model
        A segmentation model.
    item : numpy.ndarray
        The image, raw or (``normalized``) already normalized like its training data.
    normalized : bool
        Whether ``item`` is normalized already.
    """
    shape = item.shape[1:]
    if not normalized:
        item = input_normalizer(model.normalization, lambda: item).apply(item)
    dense = np.zeros((model.module.out_channels, *shape), np.float32)

    def write(region, block):
        dense[(slice(None),) + region] = block

    TiledPredictor(model.module, TileSettings.default(len(shape))).run(
        shape, lambda r: item[(slice(None),) + r], write)
    return dense


def extract_with(model: Model, dense: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Label image from a model's dense maps, with post-processing ``params`` overridden.

    The method comes from the configuration, so ensembles and test-time
    averaging (whose modules wrap the method's) extract like their members.
    """
    config = model.config.model_copy(deep=True)
    for k, v in params.items():
        setattr(config.method, k, v)
    return get_method(config.method.method).module_class.extract(config, dense).labels


def objective(truths: list[np.ndarray], preds: list[np.ndarray]) -> float:
    """Mean of the pooled AP at IoU 0.5 and 0.75 over a set of images."""
    pooled = pool_matching(matching(t, p, (0.5, 0.75)) for t, p in zip(truths, preds,
                                                                     strict=True))
    return (pooled[0.5]["ap"] + pooled[0.75]["ap"]) / 2


def tune_postprocessing(model: Model, items: list[np.ndarray], labels: list[np.ndarray], *,
                        normalized: bool = False, progress: bool = False) -> Tuning | None:
    """Choose the post-processing parameters that score best on annotated images.

    Parameters
    ----------
    model : Model
        A segmentation model whose method offers a grid
        (``threshold_grid``); the model is not changed.
    items : list of numpy.ndarray
        Images ``(C, *spatial)``.
    labels : list of numpy.ndarray
        Their instance label images ``(*spatial)``.
    normalized : bool
        Whether ``items`` are normalized already (training's validation data).
    progress : bool
        Show a progress bar over the candidate settings.

    Returns
    -------
    Tuning or None
        The choice, or None when the method has nothing to tune or the images
        hold no objects.
    """
    grid = get_method(model.config.method.method).module_class.threshold_grid(model.config)
    n_objects = int(sum(len(np.unique(lab)) - 1 for lab in labels))
    if not grid or n_objects == 0:
        return None
    maps = [dense_outputs(model, x, normalized=normalized) for x in items]
    before = {k: getattr(model.config.method, k) for k in grid}

    def score(params: dict[str, float]) -> float:
        return objective(labels, [extract_with(model, d, params) for d in maps])

    candidates = [dict(zip(grid, values, strict=True))
                  for values in itertools.product(*grid.values())]
    score_before = score(before)
    best, best_score = before, score_before
    for params in track(candidates, description="choosing thresholds", disable=not progress):
        s = score(params)
        if s > best_score:
            best, best_score = params, s
    return Tuning(best, best_score, before, score_before, len(items), n_objects)


def apply_tuning(folder: str | Path, model: Model, tuning: Tuning | None) -> Model:
    """Write a tuning into a bundle's ``config.yaml`` and ``qc.json``; return the model."""
    if tuning is None:
        return model
    folder = Path(folder)
    for k, v in tuning.params.items():
        setattr(model.config.method, k, v)
    atomic_write_text(folder / "config.yaml", config_to_yaml(model.config))
    model.qc = update_qc(folder, {"postprocessing": tuning.to_dict()})
    return model
