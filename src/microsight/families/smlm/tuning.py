"""Choosing a localizer's detection threshold on a movie with known emitters.

The detection threshold trades missed emitters against false ones, and the
faint detections a low threshold admits are also the least precise. The
movie is localized once per candidate threshold (the network runs once;
only detection and fitting repeat), every table is matched to the truth as
in evaluation, and one of two objectives picks the threshold:

- ``jaccard``: the highest Jaccard index among thresholds whose lateral RMSE
  stays within a limit (default half the camera pixel);
- ``efficiency``: the highest efficiency of the 2019 SMLM challenge (Sage et
  al.), ``100 - sqrt((100 - JI%)^2 + RMSE^2)`` with RMSE in nm, which weighs
  one nm of RMSE like one percent of Jaccard.

The current threshold is kept unless a candidate beats it. The movie is
either the user's, with its ground-truth table, or simulated from the
model's own simulation settings with a seed used neither for training nor
for validation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microsight.config import config_to_yaml, get_method
from microsight.engine.bundle import Model, update_qc
from microsight.engine.files import atomic_write_text
from microsight.errors import MicrosightError
from microsight.families.smlm.config import SMLMConfig
from microsight.families.smlm.module import (
    is_simulated,
    read_eval_pair,
    simulate_mixture,
    warn_if_frames_independent,
)
from microsight.metrics.smlm import localization_scores

OBJECTIVES = ("jaccard", "efficiency")
#: Candidate detection thresholds; ``single_threshold`` follows 0.1 above (at most 0.95).
GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))
#: Seed offset of simulated tuning movies (training and validation use 1_000_003 and
#: 2_000_003; ``simulation.seed`` itself is left for test movies).
TUNING_SEED = 3_000_003
#: Scores kept per candidate.
_KEYS = ("jaccard", "rmse_lateral", "efficiency_lateral", "recall", "precision")


@dataclass
class DetectionTuning:
    """A detection threshold chosen on a movie, with the scores before and after."""

    params: dict[str, float]
    score: float
    params_before: dict[str, float]
    score_before: float
    n_frames: int
    n_emitters: int
    objective: str
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_before: dict[str, float] = field(default_factory=dict)
    movie: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain values; an undefined score (no match, hence no RMSE) is None."""

        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, float) and not np.isfinite(value):
                return None
            return value

        return plain(asdict(self))


def objective_text(objective: str, max_rmse: float, tolerance: float) -> str:
    """The objective in words, with the matching tolerance."""
    what = (f"Jaccard index with lateral RMSE <= {max_rmse:g} nm" if objective == "jaccard"
            else "efficiency (Sage et al. 2019: 100 - sqrt((100 - JI%)^2 + RMSE^2))")
    return f"{what}; matching within {tolerance:g} nm"


def tuning_movie(m: SMLMConfig, seed: int, input: str | Path, target: str | Path | None,
                 axes: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """The movie (ADU), its truth and its name: the user's, or simulated (``simulate``)."""
    if is_simulated(input):
        if target is not None:
            raise MicrosightError("--input simulate makes its own ground truth: drop --target")
        movie, truth = simulate_mixture(m, m.val_frames, TUNING_SEED + seed)
        return movie, truth, "simulated movie"
    if target is None:
        raise MicrosightError("tuning a localizer on your movie needs its ground truth: pass "
                              "--target table.csv, or --input simulate")
    movie, truth = read_eval_pair(input, target, axes)
    warn_if_frames_independent(movie, m, Path(input).name)
    return movie, truth, str(input)


def check_objective(objective: str | None, max_rmse: float | None, pixel_size: float
                    ) -> float:
    """Check the objective's options; return the RMSE limit in effect (nm)."""
    if objective not in (None, *OBJECTIVES):
        raise MicrosightError(f"--objective must be one of {', '.join(OBJECTIVES)}, got "
                              f"{objective!r}")
    if max_rmse is not None and objective == "efficiency":
        raise MicrosightError("--max-rmse applies to --objective jaccard only (efficiency "
                              "weighs the RMSE itself)")
    if max_rmse is not None and not max_rmse > 0:
        raise MicrosightError(f"--max-rmse must be a positive distance in nm, got {max_rmse:g}")
    return pixel_size / 2 if max_rmse is None else float(max_rmse)


def _score(scores: dict[str, float], objective: str, max_rmse: float) -> float:
    """The objective's value; ``-inf`` where the RMSE limit is broken or undefined."""
    if objective == "efficiency":
        value = scores["efficiency_lateral"]
        return value if np.isfinite(value) else -np.inf
    rmse = scores["rmse_lateral"]
    return scores["jaccard"] if np.isfinite(rmse) and rmse <= max_rmse else -np.inf


def _pair(threshold: float) -> tuple[float, float]:
    return threshold, round(min(threshold + 0.1, 0.95), 2)


def tune_detection(model: Model, movie: np.ndarray, truth: np.ndarray, *,
                   objective: str = "jaccard", max_rmse: float | None = None,
                   candidates: tuple[float, ...] = GRID, progress: bool = False
                   ) -> DetectionTuning:
    """Choose ``threshold`` and ``single_threshold`` of a localizer on a movie.

    Parameters
    ----------
    model : Model
        A model whose method outputs localizations (its module class offers
        ``localize_at``); not changed.
    movie : numpy.ndarray
        Movie ``(T, Y, X)`` in ADU.
    truth : numpy.ndarray
        Its ground-truth localization table (nm).
    objective : {"jaccard", "efficiency"}
        What to maximize (see the module docstring).
    max_rmse : float, optional
        RMSE limit (nm) of the ``jaccard`` objective; default half the pixel size.
    candidates : tuple of float
        Candidate thresholds.
    progress : bool
        Show a progress bar over the movie.

    Returns
    -------
    DetectionTuning

    Raises
    ------
    MicrosightError
        When no threshold keeps the RMSE within the limit.
    """
    m = model.config.method
    limit = check_objective(objective, max_rmse, m.simulation.pixel_size)
    before = (m.threshold, m.single_threshold)
    pairs = [before] + [_pair(t) for t in candidates if _pair(t) != before]
    tables = get_method(model.method).module_class.localize_at(model, movie, pairs,
                                                               progress=progress)
    found = {p: localization_scores(t, truth, m.tolerance) for p, t in zip(pairs, tables,
                                                                          strict=True)}
    values = {p: _score(s, objective, limit) for p, s in found.items()}
    best = max(pairs, key=lambda p: values[p])  # the first maximum: `before` on ties
    if not np.isfinite(values[best]):
        low = min(pairs, key=lambda p: np.nan_to_num(found[p]["rmse_lateral"], nan=np.inf))
        if not np.isfinite(found[low]["rmse_lateral"]):
            raise MicrosightError("no detection threshold finds any emitter of this movie "
                                  "within the matching tolerance; the model is unchanged")
        raise MicrosightError(
            f"no detection threshold keeps the RMSE within {limit:g} nm on this movie "
            f"(lowest {found[low]['rmse_lateral']:.1f} nm, at threshold {low[0]:g}); raise "
            "--max-rmse or use --objective efficiency; the model is unchanged")

    def params(p: tuple[float, float]) -> dict[str, float]:
        return {"threshold": p[0], "single_threshold": p[1]}

    def kept(p: tuple[float, float]) -> dict[str, float]:
        return {k: float(found[p][k]) for k in _KEYS}

    plain = {p: (found[p]["jaccard"] if objective == "jaccard"
                 else found[p]["efficiency_lateral"]) for p in pairs}
    return DetectionTuning(
        params(best), float(plain[best]), params(before), float(plain[before]),
        n_frames=len(movie), n_emitters=len(truth),
        objective=objective_text(objective, limit, m.tolerance), metrics=kept(best),
        metrics_before=kept(before))


def save_tuning(folder: str | Path, model: Model, tuning: DetectionTuning) -> Model:
    """Write the chosen thresholds into a bundle's ``config.yaml`` and ``qc.json``."""
    folder = Path(folder)
    for k, v in tuning.params.items():
        setattr(model.config.method, k, v)
    atomic_write_text(folder / "config.yaml", config_to_yaml(model.config))
    model.qc = update_qc(folder, {"postprocessing": tuning.to_dict()})
    return model


def tune_localizer(model: Model, folder: str | Path, input: str | Path,
                   target: str | Path | None, *, axes: str | None = None,
                   objective: str | None = None, max_rmse: float | None = None,
                   progress: bool = False) -> DetectionTuning:
    """Choose a localizer's detection threshold on a movie and save it in the bundle.

    ``input`` is a movie with its ``target`` table, or ``"simulate"`` (a movie
    simulated from the model's settings). See :func:`tune_detection`.
    """
    m = model.config.method
    check_objective(objective, max_rmse, m.simulation.pixel_size)
    movie, truth, name = tuning_movie(m, model.config.training.seed, input, target, axes)
    if len(truth) == 0:
        raise MicrosightError(f"nothing to tune: {name} holds no emitters in its ground truth")
    tuning = tune_detection(model, movie, truth, objective=objective or "jaccard",
                            max_rmse=max_rmse, progress=progress)
    tuning.movie = name
    save_tuning(folder, model, tuning)
    return tuning


def tune_after_training(model: Model, folder: str | Path, *, progress: bool = False) -> Model:
    """Choose the detection threshold of a model just trained on simulated movies.

    The validation movie of the training run is simulated again (same seed) and the
    ``jaccard`` objective picks the threshold; a model trained on a user's movie, or
    with ``tune_threshold: false``, is returned unchanged. When no threshold keeps the
    RMSE within the limit, the threshold is kept, with a warning.
    """
    import warnings

    from microsight.families.smlm.module import validation_movie

    m = model.config.method
    if not getattr(m, "tune_threshold", False) or (
            (model.qc.get("data") or {}).get("source") != "simulation"):
        return model
    movie, truth = validation_movie(m, model.config.training.seed)
    try:
        tuning = tune_detection(model, movie, truth, progress=progress)
    except MicrosightError as exc:
        warnings.warn(f"detection threshold left at {m.threshold:g} after training: {exc} "
                      "(choose it with: microsight tune MODEL --input simulate)", stacklevel=2)
        return model
    tuning.movie = f"the simulated validation movie ({len(movie)} frames)"
    return save_tuning(folder, model, tuning)
