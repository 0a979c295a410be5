"""Calibration of predicted uncertainty: reliability curves, ECE, interval coverage.

An uncertainty is useful only if it is *calibrated*: among pixels whose
predicted spread is ``s``, the errors must be as large as ``s`` promises;
among crops classified with 80% confidence, 80% must be right.

* Regression (a per-pixel Laplace or Gaussian scale next to a prediction):
  pixels are binned by predicted scale (equal-count bins); each bin compares
  the expected absolute error the distribution implies (``b`` for a Laplace
  scale ``b``, ``sigma * sqrt(2/pi)`` for a Gaussian) with the observed mean
  absolute error. The expected calibration error (ECE) is the count-weighted
  mean gap; the relative ECE divides each gap by the predicted error, so it is
  unit-free (Levi et al. 2022, *Evaluating and calibrating uncertainty
  prediction in regression tasks*). Central intervals of nominal coverage
  (50%, 90%, 95%) are checked too.
* Classification (class probabilities): samples are binned by confidence
  (the top probability, equal-width bins); ECE is the weighted mean gap
  between confidence and accuracy (Guo et al. 2017, *On calibration of
  modern neural networks*).

Pure numpy (the Gaussian quantile comes from the standard library).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

from microsight.errors import MicrosightError

__all__ = ["Calibration", "classification_calibration", "regression_calibration"]

COVERAGE_LEVELS = (0.5, 0.9, 0.95)
_DISTRIBUTIONS = ("laplace", "gaussian")


@dataclass(frozen=True)
class Calibration:
    """A reliability curve and its summary numbers.

    Attributes
    ----------
    predicted : numpy.ndarray
        Per bin: the predicted quantity (expected absolute error for
        regression, mean confidence for classification).
    observed : numpy.ndarray
        Per bin: what happened (mean absolute error, accuracy).
    counts : numpy.ndarray
        Samples per bin (empty bins are dropped).
    ece : float
        Count-weighted mean ``|predicted - observed|`` (intensity units for
        regression, probability for classification).
    kind : str
        ``"regression"`` or ``"classification"``.
    relative_ece : float
        Regression only: count-weighted mean ``|predicted - observed| /
        predicted``; ``nan`` for classification.
    coverage : dict of float to float
        Regression only: nominal level -> observed share of errors inside the
        central interval of that level.
    """

    predicted: np.ndarray
    observed: np.ndarray
    counts: np.ndarray
    ece: float
    kind: str
    relative_ece: float = math.nan
    coverage: dict[float, float] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """Plain numbers for tables and JSON: ECE, relative ECE, coverage per level."""
        out = {"ece": self.ece, "samples": int(self.counts.sum())}
        if self.kind == "regression":
            out["relative ece"] = self.relative_ece
            for level, share in self.coverage.items():
                out[f"coverage of {level:.0%} interval"] = share
        return out


def _flat_finite(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise MicrosightError(f"{name} is empty: calibration needs samples.")
    if not np.all(np.isfinite(arr)):
        raise MicrosightError(f"{name} contains NaN or Inf values.")
    return arr


def _mean_abs_factor(distribution: str) -> float:
    """Expected |error| per unit scale."""
    return 1.0 if distribution == "laplace" else math.sqrt(2.0 / math.pi)


def _half_width(level: float, distribution: str) -> float:
    """Half-width (per unit scale) of the central interval holding ``level`` of the mass."""
    if distribution == "laplace":
        return -math.log(1.0 - level)
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def regression_calibration(
    scale: ArrayLike,
    error: ArrayLike,
    *,
    distribution: str = "laplace",
    bins: int = 10,
    levels: tuple[float, ...] = COVERAGE_LEVELS,
) -> Calibration:
    """Calibration of a per-sample predicted scale against observed errors.

    Parameters
    ----------
    scale : array_like
        Predicted scale per sample (Laplace ``b`` or Gaussian ``sigma``), > 0.
    error : array_like
        Observed error per sample (prediction - truth, any sign), same size.
    distribution : {"laplace", "gaussian"}, default "laplace"
        The predictive distribution the scale belongs to.
    bins : int, default 10
        Equal-count bins of predicted scale.
    levels : tuple of float, default (0.5, 0.9, 0.95)
        Nominal coverages of the central intervals checked.

    Returns
    -------
    Calibration
        A perfectly calibrated predictor has ``predicted == observed`` per bin,
        ECE near 0 and coverage equal to each level.

    Raises
    ------
    MicrosightError
        For mismatched sizes, non-positive scales, non-finite values or an
        unknown distribution.
    """
    if distribution not in _DISTRIBUTIONS:
        raise MicrosightError(
            f"unknown distribution {distribution!r}; use one of {', '.join(_DISTRIBUTIONS)}."
        )
    s = _flat_finite(scale, "scale")
    e = np.abs(_flat_finite(error, "error"))
    if s.size != e.size:
        raise MicrosightError(f"scale ({s.size} values) and error ({e.size}) differ in size.")
    if np.any(s <= 0):
        raise MicrosightError("scale must be positive everywhere.")
    if bins < 1:
        raise MicrosightError(f"bins must be at least 1, got {bins}.")
    order = np.argsort(s, kind="stable")
    groups = [g for g in np.array_split(order, min(bins, s.size)) if g.size]
    factor = _mean_abs_factor(distribution)
    predicted = np.array([factor * s[g].mean() for g in groups])
    observed = np.array([e[g].mean() for g in groups])
    counts = np.array([g.size for g in groups])
    weights = counts / counts.sum()
    gap = np.abs(predicted - observed)
    coverage = {
        float(level): float(np.mean(e <= _half_width(level, distribution) * s)) for level in levels
    }
    return Calibration(
        predicted=predicted,
        observed=observed,
        counts=counts,
        ece=float(weights @ gap),
        kind="regression",
        relative_ece=float(weights @ (gap / predicted)),
        coverage=coverage,
    )


def classification_calibration(
    probabilities: ArrayLike, labels: ArrayLike, *, bins: int = 10
) -> Calibration:
    """Reliability of class probabilities: confidence against accuracy.

    Parameters
    ----------
    probabilities : array_like
        ``(N, K)`` class probabilities (rows sum to 1), or ``(N,)``
        probabilities of the positive class of a binary problem.
    labels : array_like
        ``(N,)`` true class indices.
    bins : int, default 10
        Equal-width confidence bins over [0, 1].

    Returns
    -------
    Calibration
        ``predicted`` is the mean confidence and ``observed`` the accuracy per
        non-empty bin; ``ece`` their weighted mean gap.

    Raises
    ------
    MicrosightError
        For mismatched sizes, probabilities outside [0, 1] or labels outside
        the classes.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)
    y = np.asarray(labels).ravel()
    if p.ndim != 2 or p.shape[0] != y.size or y.size == 0:
        raise MicrosightError(
            f"probabilities {np.shape(probabilities)} and labels ({y.size}) must give one row "
            "per sample."
        )
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise MicrosightError("probabilities must be finite and within [0, 1].")
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= p.shape[1]:
        raise MicrosightError(f"labels must be class indices in 0..{p.shape[1] - 1}.")
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    keep = counts > 0
    conf = np.bincount(which, weights=confidence, minlength=bins)[keep] / counts[keep]
    acc = np.bincount(which, weights=correct, minlength=bins)[keep] / counts[keep]
    n = counts[keep]
    return Calibration(
        predicted=conf,
        observed=acc,
        counts=n,
        ece=float((n / n.sum()) @ np.abs(conf - acc)),
        kind="classification",
    )
