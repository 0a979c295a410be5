"""What the SMLM methods (``deepstorm``, ``localize``) share.

- :class:`SMLMConfig`: the simulation that makes training data, the pixel
  size and the evaluation tolerance;
- training movies: simulated on the fly from the config (fresh seeds for
  training and validation), or a user's movie with its ground-truth table;
- movie input: reading a ``TYX`` movie, ADU -> photons with the config's
  camera model, a fixed photon scale (no percentiles: emitter density must
  not change the input scale);
- evaluation: the classical baseline, challenge metrics per source, and
  the HTML report.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from microsight.data.pairs import TrainingSet
from microsight.data.smlm import simulate
from microsight.data.smlm_blinking import frame_persistence
from microsight.data.smlm_fit import localize_classical
from microsight.engine.bundle import Model
from microsight.engine.evaluate import (
    Evaluation,
    evaluation_report,
    model_sections,
    score_sources,
    summarize,
)
from microsight.engine.sampling import PatchSampler
from microsight.errors import MicrosightError
from microsight.families.smlm.config import LOC_METRICS, SIMULATE, SMLMConfig
from microsight.io import Image, read_image
from microsight.io.localizations import read_localizations
from microsight.metrics.smlm import localization_scores


def identity_grids(sampler: PatchSampler) -> None:
    """Switch off flips and rotations: offset and sub-pixel channels are not rotation-free."""
    sampler.grids = sampler.grids[:1]


# --- movies --------------------------------------------------------------------------
def movie_frames(image: Image) -> np.ndarray:
    """A movie as ``(T, Y, X)`` float32 frames (``YX``, ``TYX`` or ``SYX`` images)."""
    axes, data = image.axes, np.asarray(image.data)
    name = image.path.name if image.path else "image"
    if axes == "YX":
        return data[None].astype(np.float32)
    if axes in ("TYX", "SYX"):
        return data.astype(np.float32)
    if axes in ("ZYX", "CYX") and data.shape[0] > 1:
        raise MicrosightError(
            f"{name} has axes {axes}; an SMLM movie is TYX: pass --axes TYX if the planes "
            "are frames")
    squeezed = np.squeeze(data)
    if squeezed.ndim in (2, 3):
        return (squeezed if squeezed.ndim == 3 else squeezed[None]).astype(np.float32)
    raise MicrosightError(f"{name} has axes {axes}; an SMLM movie must be TYX")


def check_pixel_size(image: Image, m: SMLMConfig) -> None:
    """Warn when the movie's metadata give another pixel size than the model was trained on."""
    size_um = image.pixel_sizes.get("X")
    if size_um and abs(size_um * 1000 - m.simulation.pixel_size) > 0.02 * m.simulation.pixel_size:
        name = image.path.name if image.path else "the movie"
        warnings.warn(
            f"{name} has {size_um * 1000:g} nm pixels but the model was trained for "
            f"{m.simulation.pixel_size:g} nm; coordinates use the model's pixel size",
            stacklevel=3)


def warn_if_frames_independent(frames_adu: np.ndarray, m: SMLMConfig, name: str) -> None:
    """Warn when a localizer with context frames meets a movie without blinking persistence.

    Neighbouring frames help only where emitters stay on for more than one frame
    (see :mod:`microsight.data.smlm_blinking`); on frame-independent data they
    mislead the network, and ``context: 0`` is the setting that fits.
    """
    context = getattr(m, "context", 0)
    if not context:
        return
    found = frame_persistence(frames_adu, m.sigma_px)
    if found is None or not found.independent:
        return
    warnings.warn(
        f"{name}: emitters do not persist across consecutive frames ({found.next_frame:.0%} "
        f"of {found.spots} spots reappear in the next frame, {found.chance:.0%} by chance) but "
        f"the model looks at {context} neighbouring frame(s) on each side, which suits "
        "blinking data only; for frame-independent data train with 'context: 0' in the "
        "method config", stacklevel=3)


def scaled_input(frames_adu: np.ndarray, m: SMLMConfig) -> np.ndarray:
    """Network input: photons (camera model of the config) divided by the photon scale."""
    return m.simulation.camera.to_photons(frames_adu) / np.float32(m.photon_scale)


def is_simulated(input_path: str | Path | None) -> bool:
    """Whether training data are simulated (no input, or ``--input simulate``)."""
    return input_path is None or str(input_path) == SIMULATE


def simulate_mixture(m: SMLMConfig, frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A movie (ADU) and truth made of equal parts at each of ``m.train_densities``."""
    densities = m.train_densities or [m.simulation.density]
    parts = np.array_split(np.arange(frames), len(densities))
    movies, tables, start = [], [], 0
    for k, (density, part) in enumerate(zip(densities, parts, strict=True)):
        if len(part) == 0:
            continue
        sim = simulate(m.simulation.model_copy(update={
            "frames": len(part), "density": density, "seed": seed + 7 * k}))
        table = sim.truth.copy()
        table["frame"] += start
        movies.append(sim.movie)
        tables.append(table)
        start += len(part)
    return np.concatenate(movies), np.concatenate(tables)


def validation_movie(m: SMLMConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The simulated validation movie (ADU) and truth of a run trained with ``seed``."""
    return simulate_mixture(m, m.val_frames, 2_000_003 + seed)


def training_movies(m: SMLMConfig, seed: int, input_path: str | Path | None,
                    target_path: str | Path | None, axes: str | None
                    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray],
                               dict[str, Any]]:
    """Training and validation ``(movie ADU, truth table)`` pairs and a data summary.

    Without an input the movies are simulated from ``m.simulation`` with two
    seeds derived from ``seed`` (never the simulation's own seed, which users
    keep for test movies). With an input movie and a target table, the last
    10% of the frames validate.
    """
    if is_simulated(input_path):
        train = simulate_mixture(m, m.train_frames, 1_000_003 + seed)
        val = validation_movie(m, seed)
        summary = {"source": "simulation", "items": m.train_frames, "axes": "TYX",
                   "frames": m.train_frames,
                   "val_frames": m.val_frames, "emitters": int(len(train[1])),
                   "densities": m.train_densities or [m.simulation.density],
                   "structure": m.simulation.structure}
        return train, val, summary
    if target_path is None:
        raise MicrosightError(
            "training on your own movie needs its ground truth: pass --target table.csv "
            "(ThunderSTORM or native localization table, nm)")
    movie = movie_frames(read_image(input_path, axes=axes or "TYX"))
    warn_if_frames_independent(movie, m, Path(input_path).name)
    table = read_localizations(target_path)
    if len(movie) < 2:
        raise MicrosightError(f"{Path(input_path).name}: need at least 2 frames to train")
    cut = max(1, int(round(0.9 * len(movie))))
    cut = min(cut, len(movie) - 1)
    val_table = table[table["frame"] >= cut].copy()
    val_table["frame"] -= cut
    summary = {"source": str(input_path), "target": str(target_path), "items": cut,
               "axes": "TYX", "frames": cut,
               "val_frames": len(movie) - cut, "emitters": int(len(table))}
    return ((movie[:cut], table[table["frame"] < cut]), (movie[cut:], val_table), summary)


def make_training_set(m: SMLMConfig, seed: int, input_path: str | Path | None,
                      target_path: str | Path | None, axes: str | None,
                      build: Callable[[np.ndarray, np.ndarray],
                                      tuple[list[np.ndarray], list[np.ndarray]]]
                      ) -> tuple[TrainingSet, dict[str, Any]]:
    """Training set from movies: ``build(movie_adu, truth)`` gives input and target items."""
    (tm, tt), (vm, vt), summary = training_movies(m, seed, input_path, target_path, axes)
    train_x, train_y = build(tm, tt)
    val_x, val_y = build(vm, vt)
    data = TrainingSet(train_x, train_y, val_x, val_y, summary)
    # The ADU -> network-input map is affine, so it is stored as the usual dataset
    # normalization: every reader of bundles (info, out-of-distribution checks) sees
    # exactly the scaling the network was trained with.
    cam = m.simulation.camera
    low = 0.0 if cam.model == "ideal" else cam.baseline
    high = low + cam.adu_per_photon() * m.photon_scale
    normalization = {"mode": "dataset", "p_low": None, "p_high": None,
                     "input": {"low": [low] * data.in_channels,
                               "high": [high] * data.in_channels},
                     "target": {"low": [0.0] * data.out_channels,
                                "high": [1.0] * data.out_channels}}
    return data, normalization


def pad_to(batch: torch.Tensor, divisor: int) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad ``(B, C, Y, X)`` to multiples of ``divisor``; return the original size."""
    h, w = batch.shape[-2:]
    ph, pw = (-h) % divisor, (-w) % divisor
    if ph or pw:
        mode = "reflect" if min(h, w) > max(ph, pw) else "replicate"
        batch = torch.nn.functional.pad(batch, (0, pw, 0, ph), mode=mode)
    return batch, h, w


# --- evaluation ----------------------------------------------------------------------
def classical_table(frames_adu: np.ndarray, m: SMLMConfig) -> np.ndarray:
    """The classical baseline (local maxima + Poisson MLE of an integrated Gaussian)."""
    return localize_classical(m.simulation.camera.to_photons(frames_adu), sigma=m.sigma_px,
                              pixel_size=m.simulation.pixel_size,
                              threshold=m.classical_threshold)


def read_eval_pair(input: str | Path, target: str | Path, axes: str | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A test movie (ADU frames) and its ground-truth table."""
    movie = movie_frames(read_image(input, axes=axes or "TYX"))
    return movie, read_localizations(target)


def score_tables(tables: dict[str, np.ndarray], truth: np.ndarray, tolerance: float,
                 timings: dict[str, float], name: str) -> list[dict[str, Any]]:
    """One evaluation row per source: challenge metrics and localizations per second."""

    def score(table: np.ndarray, truth: np.ndarray, source: str, _: Any) -> dict[str, Any]:
        s = localization_scores(table, truth, tolerance)
        return {**{k: s[k] for k in (*LOC_METRICS, "tp", "fp", "fn")},
                "seconds": timings.get(source, float("nan"))}

    # The tables are already made (and timed): each source hands its own over.
    sources = {source: (lambda _, t=table: t) for source, table in tables.items()}
    return score_sources([(name, None, truth)], sources, score).rows


def compact_summary(rows: list[dict[str, Any]], metrics: tuple[str, ...]
                    ) -> list[dict[str, Any]]:
    """Per-source means; interval columns only where there are enough movies for one."""
    return [{k: v for k, v in row.items() if not (k.endswith("95% CI") and v is None)}
            for row in summarize(rows, metrics)]


def smlm_evaluation(model: Model, tables: dict[str, np.ndarray], truth: np.ndarray,
                    timings: dict[str, float], name: str, report: str | Path | None,
                    figures: list[tuple[str, Any, str]] | None = None,
                    metrics: tuple[str, ...] = LOC_METRICS, tolerance: float | None = None
                    ) -> Evaluation:
    """Evaluation of localization tables against the truth, with an optional report.

    Localizations match true emitters within ``tolerance`` nm (default the model's).
    """
    m: SMLMConfig = model.config.method
    tolerance = m.tolerance if tolerance is None else tolerance
    rows = score_tables(tables, truth, tolerance, timings, name)
    result = Evaluation(rows, compact_summary(rows, metrics))
    if report is not None:

        rep = evaluation_report(
            model, result.rows, subtitle=f"method {model.method} (single-molecule localization)")
        rep.add_table("Test metrics", result.rows,
                      note=f"Per-frame Hungarian matching within {tolerance:g} nm (Sage et "
                           "al. 2019); RMSE over matched pairs (nm); efficiency E = 100 - "
                           "sqrt((100 - JI)^2 + RMSE^2).",
                      missing="no localization was matched, so no distance can be measured")
        for title, fig, caption in figures or []:
            rep.add_figure(title, fig, caption=caption)
        model_sections(rep, model)
        result.report_path = rep.write(report)
    return result


def reconstruction_figure(images: dict[str, np.ndarray], reference: str | None = None) -> Any:
    """Side-by-side panels of super-resolved renderings (percentile-scaled).

    With ``reference``, every panel shares that panel's display range, so
    brightness compares across panels; else each has its own.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4 * len(images), 4))
    shared = float(np.percentile(images[reference], 99.5)) if reference else None
    for k, (title, img) in enumerate(images.items()):
        ax = fig.add_subplot(1, len(images), k + 1)
        hi = shared or float(np.percentile(img, 99.5)) or 1.0
        ax.imshow(img, cmap="magma", vmin=0, vmax=hi)
        ax.set_title(title)
        ax.set_axis_off()
    fig.tight_layout()
    return fig
