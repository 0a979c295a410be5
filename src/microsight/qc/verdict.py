"""The verdict in words: does the network beat the best classical baseline?

The rule, stated in every report: take the method's key metric on every test
image for the network and for the best classical baseline (the one with the
best mean), compute the per-image differences (positive = network better),
and a bootstrap 95% interval of their mean (1000 resamples over images).

- **clearly better**: the whole interval is above 0;
- **worse: do not use**: the whole interval is below 0;
- **within noise**: the interval contains 0, or there are fewer than 3 test
  images to tell.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Metrics for which a smaller value is better.
LOWER_IS_BETTER = frozenset({"nrmse", "rse", "nmse", "frc_resolution", "rmse", "rmse_lateral",
                             "rmse_axial", "mae", "ece"})
MIN_IMAGES = 3
NETWORK = "network"
RULE = ("Per-image difference of the key metric between the network and the best classical "
        "baseline, with a bootstrap 95% interval of its mean over test images: 'clearly "
        "better' when the whole interval favours the network, 'worse: do not use' when it "
        "favours the baseline, 'within noise' otherwise (or with fewer than 3 test images).")


@dataclass(frozen=True)
class Verdict:
    """The network against the best classical baseline on one metric."""

    kind: str                # "clearly better", "within noise", "worse: do not use", "no baseline"
    metric: str
    baseline: str | None
    difference: float        # mean per-image difference, positive = network better
    ci95: tuple[float, float]
    n_images: int
    text: str

    @property
    def level(self) -> str:
        """Report colour: ok, info or bad."""
        return {"clearly better": "ok", "worse: do not use": "bad"}.get(self.kind, "info")

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return asdict(self)


def _per_image(rows: list[dict[str, Any]], source: str, metric: str) -> dict[str, float]:
    return {str(r.get("image")): float(r[metric]) for r in rows
            if r.get("source") == source and isinstance(r.get(metric), (int, float))
            and np.isfinite(r[metric])}


def _interval(diff: np.ndarray, seed: int = 0) -> tuple[float, float]:
    if len(diff) < MIN_IMAGES:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = rng.choice(diff, size=(1000, len(diff)), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def network_verdict(rows: list[dict[str, Any]], metric: str) -> Verdict:
    """Compare the network with the best classical baseline on ``metric``.

    Parameters
    ----------
    rows : list of dict
        Per-image rows with ``image``, ``source`` and the metric (``Evaluation.rows``).
    metric : str
        The key metric (its direction is known from :data:`LOWER_IS_BETTER`).

    Returns
    -------
    Verdict
    """
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    net = _per_image(rows, NETWORK, metric)
    sources = sorted({r["source"] for r in rows if r.get("source") != NETWORK})
    means = {s: float(np.mean(list(v.values()))) for s in sources
             if (v := _per_image(rows, s, metric))}
    if not net or not means:
        return Verdict("no baseline", metric, None, float("nan"), (float("nan"),) * 2,
                       len(net), f"No classical baseline was scored image by image on {metric}, "
                       "so there is no verdict by the usual rule; compare the network with any "
                       "other rows of the tables below.")
    best = max(means, key=lambda s: sign * means[s])
    base = _per_image(rows, best, metric)
    shared = sorted(set(net) & set(base))
    diff = sign * np.array([net[k] - base[k] for k in shared])
    low, high = _interval(diff)
    mean = float(diff.mean()) if len(diff) else float("nan")
    if len(diff) >= MIN_IMAGES and low > 0:
        kind = "clearly better"
    elif len(diff) >= MIN_IMAGES and high < 0:
        kind = "worse: do not use"
    else:
        kind = "within noise"
    return Verdict(kind, metric, best, mean, (low, high), len(diff),
                   _sentence(kind, metric, best, mean, (low, high), len(diff)))


def _sentence(kind: str, metric: str, baseline: str, mean: float, ci: tuple[float, float],
              n: int) -> str:
    lower_better = metric in LOWER_IS_BETTER
    better = "lower" if lower_better else "higher"
    what = {"clearly better": "The network is clearly better than",
            "within noise": "The network is not clearly different from",
            "worse: do not use": "The network is worse (do not use it on such images) than"}[kind]
    images = "one test image" if n == 1 else f"{n} test images"
    if not np.isfinite(mean):
        return f"{what} the best classical baseline, {baseline}: no test image scored both."
    raw = -mean if lower_better else mean  # the network's value minus the baseline's
    direction = "higher" if raw > 0 else "lower"
    interval = (f" (95% interval of the network's advantage: {ci[0]:+.3g} to {ci[1]:+.3g})"
                if np.isfinite(ci[0]) else
                f"; {images} {'gives' if n == 1 else 'give'} no interval (at least "
                f"{MIN_IMAGES} are needed): add test images")
    return (f"{what} the best classical baseline, {baseline}: {metric} ({better} is better) "
            f"is on average {abs(raw):.3g} {direction} for the network than for {baseline}, "
            f"over {images}{interval}.")
