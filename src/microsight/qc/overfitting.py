"""Training QC: an over-fitting verdict from the history, and the noise of validation.

Two questions every training run must answer before its model is trusted:

* **Did it over-fit?** :func:`overfitting_verdict` reads the per-epoch
  history: validation loss rising for several epochs while the training
  loss keeps falling is over-fitting, and the epoch where the rise began is
  reported (the bundle keeps the best-validation weights, so the model
  itself is the one from before the rise).
* **Is the validation estimate precise?** :func:`validation_noise` turns
  per-tile squared errors of the best weights into the validation PSNR
  with its standard error and a bootstrap interval over tiles, and warns
  when the validation set is too small to tell epochs apart.

:func:`add_training_sections` puts both, with the data checks, into a
:class:`~microsight.qc.Report`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from microsight.qc.epochs import shown_epoch
from microsight.qc.report import Report

__all__ = [
    "Verdict",
    "add_training_sections",
    "data_findings",
    "overfitting_verdict",
    "validation_noise",
    "validation_size_warning",
]

# A rise counts when the validation loss stays this much (relative to the
# best value, or to the improvement made before it) above its minimum.
RISE_TOLERANCE = 0.05
# ... for at least this many consecutive epochs up to the end.
RISE_EPOCHS = 2
# Fewer validation tiles than this make the validation estimate unreliable.
MIN_VAL_TILES = 8
# A 95% interval wider than this (dB) cannot rank epochs that differ by less.
WIDE_CI_DB = 1.0
_BOOTSTRAP = 1000

STATUS_LEVEL = {
    "over-fitting": "warn",
    "unstable": "bad",
    "still improving": "info",
    "converged": "ok",
    "too short": "info",
    "no validation": "info",
}


@dataclass(frozen=True)
class Verdict:
    """What the training history says.

    Attributes
    ----------
    status : str
        ``"over-fitting"`` (validation rose while training fell),
        ``"unstable"`` (validation rose and training did not fall),
        ``"still improving"`` (best epoch at the end: train longer),
        ``"converged"``, ``"too short"`` (fewer than 3 validated epochs) or
        ``"no validation"``.
    best_epoch : int or None
        Epoch of the lowest validation loss (the weights the bundle keeps).
    onset_epoch : int or None
        For over-fitting: the first epoch of the lasting rise.
    message : str
        One or two sentences for the report.
    """

    status: str
    best_epoch: int | None
    onset_epoch: int | None
    message: str

    @property
    def level(self) -> str:
        """Severity for display: ``ok``, ``info``, ``warn`` or ``bad``."""
        return STATUS_LEVEL.get(self.status, "info")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (for ``qc.json``)."""
        return asdict(self)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _column(history: Sequence[Mapping[str, Any]], key: str, rows: list[int]) -> np.ndarray:
    return np.array([_finite(history[i].get(key)) or math.nan for i in rows])


def overfitting_verdict(
    history: Sequence[Mapping[str, Any]],
    *,
    val_key: str = "val_loss",
    train_key: str = "train_loss",
    tolerance: float = RISE_TOLERANCE,
    patience: int = RISE_EPOCHS,
) -> Verdict:
    """Classify a training history: over-fitting, still improving, converged...

    Parameters
    ----------
    history : sequence of mapping
        One row per epoch with ``epoch``, ``val_key`` and ``train_key``
        (rows without a finite validation loss are skipped).
    val_key, train_key : str
        Columns of the validation and training losses (lower is better).
    tolerance : float, default 0.05
        A rise counts when the validation loss exceeds its minimum by this
        share of the larger of ``|minimum|`` and the improvement before it.
    patience : int, default 2
        The rise must last this many epochs, up to the last one.

    Returns
    -------
    Verdict
    """
    rows = [i for i, r in enumerate(history) if _finite(r.get(val_key)) is not None]
    if not rows:
        return Verdict("no validation", None, None, "No validation loss was recorded.")
    epochs = [int(_finite(history[i].get("epoch")) or i) for i in rows]
    val = _column(history, val_key, rows)
    train = _column(history, train_key, rows)
    b = int(np.argmin(val))
    best = epochs[b]
    # Stored indices stay 0-based (qc.json); the sentences count from 1.
    best_text = shown_epoch(best)
    if len(rows) < 3:
        return Verdict(
            "too short",
            best,
            None,
            f"Only {len(rows)} validated epoch(s): too few to judge the trend.",
        )
    margin = tolerance * max(abs(val[b]), val[0] - val[b])
    above = val > val[b] + margin
    # The lasting rise: the trailing run of epochs above the margin.
    run = 0
    while run < len(val) - b - 1 and above[len(val) - 1 - run]:
        run += 1
    if run >= patience:
        onset = epochs[len(val) - run]
        onset_text = shown_epoch(onset)
        rise = (val[-1] - val[b]) / abs(val[b]) if val[b] else math.inf
        train_fell = bool(np.isfinite(train[b]) and np.isfinite(train[-1]) and train[-1] < train[b])
        if train_fell:
            drop = (train[b] - train[-1]) / abs(train[b]) if train[b] else math.inf
            return Verdict(
                "over-fitting",
                best,
                onset,
                f"Validation loss rose {rise:.0%} above its minimum (epoch {best_text}) from "
                f"epoch {onset_text} on, while training loss fell a further {drop:.0%}: the "
                f"network began over-fitting after epoch {best_text}. The model keeps the "
                f"weights of epoch {best_text}; more data, augmentation or early stopping "
                "would help.",
            )
        return Verdict(
            "unstable",
            best,
            onset,
            f"Validation loss rose {rise:.0%} above its minimum (epoch {best_text}) from epoch "
            f"{onset_text} on without training loss falling: training is unstable (try a lower "
            f"learning rate). The model keeps the weights of epoch {best_text}.",
        )
    if b >= len(val) - max(1, len(val) // 10):
        return Verdict(
            "still improving",
            best,
            None,
            f"The best validation loss came in the last epochs (epoch {best_text} of "
            f"{shown_epoch(epochs[-1])}): more training would probably improve the model.",
        )
    return Verdict(
        "converged",
        best,
        None,
        f"Validation loss levelled off; best at epoch {best_text}, no lasting rise afterwards.",
    )


def validation_noise(
    tile_mse: Sequence[float] | np.ndarray, *, seed: int = 0, data_range: float = 1.0
) -> dict[str, Any]:
    """Validation PSNR with its uncertainty over validation tiles.

    Parameters
    ----------
    tile_mse : sequence of float
        Mean squared error of each validation tile (normalized intensities).
    seed : int, default 0
        Bootstrap seed.
    data_range : float, default 1.0
        Intensity range for PSNR (1 for percentile-normalized targets).

    Returns
    -------
    dict
        ``tiles``, ``val_psnr`` (of the pooled MSE, as in the history),
        ``psnr_standard_error`` (of the mean per-tile PSNR),
        ``val_psnr_ci95`` (bootstrap over tiles, ``[low, high]`` dB), and
        ``warning`` (a sentence, or None) when there are fewer than 8 tiles
        or the interval is wider than 1 dB. Tiles of one image are
        correlated, so the interval is, if anything, too narrow.
    """
    mse = np.asarray(tile_mse, dtype=np.float64).ravel()
    mse = mse[np.isfinite(mse)]
    if mse.size == 0:
        return {"tiles": 0, "warning": "No validation tile could be scored."}

    def psnr(m: np.ndarray | float) -> np.ndarray:
        return 10 * np.log10(data_range**2 / np.maximum(m, 1e-12))

    out: dict[str, Any] = {"tiles": int(mse.size), "val_psnr": float(psnr(mse.mean()))}
    per_tile = psnr(mse)
    out["psnr_standard_error"] = (
        float(per_tile.std(ddof=1) / math.sqrt(mse.size)) if mse.size > 1 else None
    )
    width = math.inf
    if mse.size >= 3:
        rng = np.random.default_rng(seed)
        boot = psnr(rng.choice(mse, size=(_BOOTSTRAP, mse.size)).mean(axis=1))
        lo, hi = np.percentile(boot, [2.5, 97.5])
        out["val_psnr_ci95"] = [float(lo), float(hi)]
        width = float(hi - lo)
    warning = validation_size_warning(int(mse.size), width)
    out["warning"] = warning
    return out


def add_training_sections(
    report: Report,
    history: Sequence[Mapping[str, Any]],
    qc: Mapping[str, Any],
) -> None:
    """Add training history with its verdict, validation noise and data checks.

    Parameters
    ----------
    report : Report
        The report to extend.
    history : sequence of mapping
        Per-epoch history (``history.csv`` rows).
    qc : mapping
        The bundle's ``qc.json``: ``overfitting`` (a :class:`Verdict` dict),
        ``validation`` (from :func:`validation_noise`), ``data_checks``
        (warnings about the data), and any other training facts.
    """
    verdict = qc.get("overfitting")
    if verdict is None and history:
        verdict = overfitting_verdict(history).to_dict()
    if history:
        report.add_history("Training history", list(history))
    if verdict:
        level = STATUS_LEVEL.get(verdict.get("status", ""), "info")
        report.add_verdict(
            "Over-fitting check", f"{verdict['status']}", verdict["message"], level=level
        )
    val = qc.get("validation")
    if val:
        report.add_key_values(
            "Validation estimate",
            {
                "tiles scored": val.get("tiles"),
                "validation PSNR (best weights, dB)": val.get("val_psnr"),
                "standard error of per-tile PSNR (dB)": val.get("psnr_standard_error"),
                "95% bootstrap interval over tiles (dB)": _interval(val.get("val_psnr_ci95")),
            },
            missing="too few validation tiles for this (2 are needed for a standard error, "
                    "3 for an interval)",
        )
    problems, fine = data_findings(qc)
    if problems:
        report.add_verdict("Data checks", "warning", "\n".join(problems), level="warn")
    elif fine:
        report.add_verdict("Data checks", "ok", " ".join(fine), level="ok")
    skip = {"data", "overfitting", "validation", "data_checks", "overlap"}
    facts = {k: v for k, v in qc.items()
             if k not in skip and v is not None and not isinstance(v, (dict, list))}
    if facts.get("best_epoch") is not None:
        facts["best_epoch"] = shown_epoch(facts["best_epoch"])
    if facts:
        report.add_key_values("Training", facts)


def validation_size_warning(tiles: int, ci_width: float = math.inf) -> str | None:
    """The one judgement of whether the validation set is large enough, in words.

    Parameters
    ----------
    tiles : int
        Validation tiles scored.
    ci_width : float
        Width of the 95% interval of the validation PSNR (dB); ``inf`` when unknown.

    Returns
    -------
    str or None
        A sentence when there are fewer than 8 tiles or the interval is wider
        than 1 dB, else None.
    """
    if tiles < MIN_VAL_TILES:
        return (f"The validation set holds only {tiles} tile(s) (fewer than {MIN_VAL_TILES}): "
                "its score is a rough estimate; hold out more data (data.val_fraction) or add "
                "images.")
    if ci_width > WIDE_CI_DB and math.isfinite(ci_width):
        return (f"The validation PSNR is uncertain to +-{ci_width / 2:.2g} dB (95% interval): "
                "epochs closer than that cannot be told apart; hold out more data.")
    return None


def _is_split_size_note(text: str) -> bool:
    """Whether a stored data check is the split's own size estimate (in patches' worth)."""
    return text.startswith("The validation set holds") and "patches' worth" in text


def data_findings(qc: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Problems and passed checks of the training data, each check said once.

    The size of the validation set is judged by one rule: on the scored
    validation tiles (:func:`validation_size_warning`, stored by training in
    ``qc["validation"]``) when there are any, else by the split check's
    estimate in patches; so the report never says "too small" and "not too
    small" about the same set.

    Parameters
    ----------
    qc : mapping
        The bundle's ``qc.json``.

    Returns
    -------
    problems : list of str
        One sentence per problem.
    fine : list of str
        Sentences on the checks that passed (empty when nothing was checked).
    """
    val = qc.get("validation") or {}
    checks = [str(c) for c in qc.get("data_checks") or []]
    if "tiles" in val:
        ci = val.get("val_psnr_ci95")
        size = validation_size_warning(int(val["tiles"]), ci[1] - ci[0] if ci else math.inf)
        checks = [c for c in checks if not _is_split_size_note(c)] + ([size] if size else [])
    fine: list[str] = []
    if "data_checks" in qc:
        n = (qc.get("overlap") or {}).get("inputs", {}).get("val_patches", 0)
        if not any(c.startswith("Validation inputs") for c in checks):
            fine.append(f"No validation patch repeats a training patch ({n} checked).")
        if not any(c.startswith("The validation") for c in checks):
            tiles = f" ({val['tiles']} tiles)" if "tiles" in val else ""
            fine.append(f"The validation set is large enough{tiles}.")
    return checks, fine


def _interval(pair: Sequence[float] | None) -> str | None:
    if not pair:
        return None
    return f"{pair[0]:.4g} - {pair[1]:.4g}"
