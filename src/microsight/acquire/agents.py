"""Acquisition agents and the fixed protocols they are compared with.

An agent is a generator of MDA events (``plan(session)``) that reads each frame
(``session.last``) before choosing the next event. Models reach agents only
through :mod:`microsight.api` (see :class:`Restorer`), so a user's own trained
bundle can drive them.

Dose scenario (fixed fields and time points):

- :class:`FixedDose`: every frame at one power, restored by the model (``fixed-high``,
  ``fixed-low``);
- :class:`AdaptiveDose`: a first frame at low power, restored with a per-pixel
  uncertainty; regions whose uncertainty exceeds a calibrated threshold (or the
  whole field when the model calls the image out of distribution) are imaged again
  at a higher power, the photons of both frames pooled, and the result restored.

Event scenario (a fixed duration):

- :class:`FixedRate`: every field every ``interval`` minutes (``fixed-slow``,
  ``fixed-fast``);
- :class:`EventDriven`: every field at the slow rate until the detector's score of a
  frame passes its threshold, then at the fast rate until ``hold`` frames in a row
  score below it.
"""

from __future__ import annotations

import heapq
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from scipy import ndimage

from microsight.acquire.session import Session


# --- restoration through the public API --------------------------------------------
class Restorer:
    """A restoration model used through :func:`microsight.api.predict`.

    Parameters
    ----------
    model : Model, str or Path
        Bundle (or loaded model) of a restoration method.
    uncertainty : {"tta", "model"}
        ``"tta"``: the spread over the 8 flips/rotations (any model); ``"model"``: the
        Laplace scale of a probabilistic model.
    check : bool
        Also score every image against the model's training data (out-of-distribution
        check); an image that fails is not trusted anywhere.
    """

    def __init__(self, model: Any, *, uncertainty: str = "tta", check: bool = True) -> None:
        from microsight import api

        self.api = api
        self.model = api.load_model(model) if not hasattr(model, "module") else model
        self.uncertainty = uncertainty
        self.check = check

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
        """Restore ``image`` (YX); return (restored, uncertainty map, out of distribution)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", self.api.OutOfDistributionWarning)
            restored, spread = self.api.predict(self.model, image, uncertainty=self.uncertainty,
                                                check=self.check)
        ood = any(issubclass(w.category, self.api.OutOfDistributionWarning) for w in caught)
        return np.asarray(restored, np.float32), np.asarray(spread, np.float32), ood


def tile_scores(uncertainty: np.ndarray, tile: int) -> np.ndarray:
    """Mean uncertainty of each ``tile`` x ``tile`` block (the field edge must divide)."""
    h, w = uncertainty.shape
    return uncertainty[:h - h % tile, :w - w % tile].reshape(
        h // tile, tile, w // tile, tile).mean(axis=(1, 3))


def tile_regions(mask: np.ndarray, tile: int) -> list[tuple[int, int, int, int]]:
    """Regions ``(y, x, h, w)`` covering the marked tiles, one per horizontal run."""
    regions = []
    for row in range(mask.shape[0]):
        col = 0
        while col < mask.shape[1]:
            if not mask[row, col]:
                col += 1
                continue
            end = col
            while end < mask.shape[1] and mask[row, end]:
                end += 1
            regions.append((row * tile, col * tile, tile, (end - col) * tile))
            col = end
    return regions


def pooled(frames: list[Any]) -> np.ndarray:
    """Density estimate pooling the photons of several frames of one field.

    Photon counts add, so the dose-weighted mean of the frames' estimates is the
    estimate of one frame at their summed dose.
    """
    weights = sum(f.dose_map for f in frames)
    total = sum(f.estimate * f.dose_map for f in frames)
    return np.where(weights > 0, total / np.maximum(weights, 1e-12), 0).astype(np.float32)


class FixedDose:
    """Every field at every time point at one power.

    With ``restore`` the delivered image is the restoration (``fixed-low``), else the
    measurement itself (``fixed-high``: the usual high-light imaging); the other one is
    kept in the record either way when a restorer is given.
    """

    def __init__(self, name: str, power: float, restorer: Restorer | None, *,
                 n_times: int, n_fields: int, interval: float, restore: bool = True) -> None:
        self.name, self.power, self.restorer, self.restore = name, power, restorer, restore
        self.n_times, self.n_fields, self.interval = n_times, n_fields, interval

    def plan(self, session: Session) -> Iterator[Any]:
        """Yield one full-field event per field and time point."""
        for t in range(self.n_times):
            for f in range(self.n_fields):
                minutes = t * self.interval
                yield session.event(f, t, minutes, power=self.power, why=self.name)
                raw = session.last.estimate
                image, ood, details = raw, False, {}
                if self.restorer is not None:
                    restored, _, ood = self.restorer(raw)
                    image = restored if self.restore else raw
                    details = {"raw": raw} if self.restore else {"restored": restored}
                session.deliver(f, t, minutes, image, session.last.dose,
                                f"power {self.power:g}", out_of_distribution=ood, **details)


class AdaptiveDose:
    """The lowest power whose restoration the model trusts, region by region.

    Each field and time point gets a first frame at ``low`` power, restored with an
    uncertainty map. Tiles the model does not trust (mean uncertainty over
    ``threshold``, or every tile when the image is out of distribution) are imaged
    again at ``high`` power, and the frames' photons pooled and restored.

    Parameters
    ----------
    restorer : Restorer
        The model and its uncertainty.
    threshold : float
        Tile uncertainty above which a tile is imaged again (chosen on calibration
        runs: :func:`microsight.acquire.scenarios.calibrate_dose`).
    low, high : float
        Powers of the first look and of the re-imaging.
    tile : int
        Edge of the regions judged one by one (pixels).
    """

    name = "adaptive"

    def __init__(self, restorer: Restorer, threshold: float, *, low: float, high: float,
                 tile: int, n_times: int, n_fields: int, interval: float) -> None:
        self.restorer, self.threshold, self.tile = restorer, threshold, tile
        self.low, self.high = low, high
        self.n_times, self.n_fields, self.interval = n_times, n_fields, interval

    def plan(self, session: Session) -> Iterator[Any]:
        """Yield a low-power event per field and time point, then re-imaging events."""
        for t in range(self.n_times):
            for f in range(self.n_fields):
                minutes = t * self.interval
                yield session.event(f, t, minutes, power=self.low, why="first look")
                frames = [session.last]
                image, spread, ood = self.restorer(frames[0].estimate)
                untrusted = decide(spread, self.threshold, self.tile, ood)
                why = "out of distribution" if ood else "uncertain"
                for roi in tile_regions(untrusted, self.tile):
                    yield session.event(f, t, minutes, power=self.high, roi=roi, why=why)
                    frames.append(session.last)
                if len(frames) > 1:
                    image, _, _ = self.restorer(pooled(frames))
                share = float(untrusted.mean())
                decision = (f"trusted at {self.low:g}" if share == 0 else
                            f"{share:.0%} of the field again at {self.high:g} ({why})")
                session.deliver(f, t, minutes, image, float(sum(fr.dose for fr in frames)),
                                decision, reimaged=share, out_of_distribution=ood)


def decide(spread: np.ndarray, threshold: float, tile: int, ood: bool) -> np.ndarray:
    """Tiles to image again: all when out of distribution, else those over the threshold."""
    scores = tile_scores(spread, tile)
    return np.ones_like(scores, bool) if ood else scores > threshold


# --- event detection ---------------------------------------------------------------
def mitosis_score(estimate: np.ndarray) -> float:
    """A classical mitosis score: brightest smoothed spot over the typical nucleus.

    Condensed chromatin (prophase to telophase) is about twice as bright as an
    interphase nucleus; the ratio ignores bleaching and illumination.
    """
    smooth = ndimage.gaussian_filter(np.asarray(estimate, np.float32), 1.5)
    top = float(smooth.max())
    nuclei = smooth[smooth > 0.3 * top]
    return top / max(float(np.median(nuclei)), 1e-6) if nuclei.size else 0.0


class FixedRate:
    """Every field every ``interval`` minutes at one power."""

    def __init__(self, name: str, interval: float, *, power: float, duration: float,
                 n_fields: int) -> None:
        self.name, self.interval, self.power = name, interval, power
        self.duration, self.n_fields = duration, n_fields

    def plan(self, session: Session) -> Iterator[Any]:
        """Yield events in time order, fields interleaved."""
        n = int(self.duration // self.interval) + 1
        for t in range(n):
            for f in range(self.n_fields):
                yield session.event(f, t, t * self.interval, power=self.power, why=self.name)


class EventDriven:
    """Slow imaging until the detector fires, fast imaging while the event lasts.

    Parameters
    ----------
    detector : callable
        Frame estimate -> score (e.g. :func:`mitosis_score`, or a user's model through
        :func:`microsight.api.predict`).
    threshold : float
        Score above which an event is in progress (chosen on calibration runs).
    slow, fast : float
        Intervals (minutes).
    hold : int
        Consecutive fast frames below the threshold before going back to slow.
    """

    name = "adaptive"

    def __init__(self, detector: Callable[[np.ndarray], float], threshold: float, *,
                 slow: float, fast: float, power: float, duration: float, n_fields: int,
                 hold: int = 2) -> None:
        self.detector, self.threshold = detector, threshold
        self.slow, self.fast, self.power, self.hold = slow, fast, power, hold
        self.duration, self.n_fields = duration, n_fields

    def plan(self, session: Session) -> Iterator[Any]:
        """Yield events in time order; each field keeps its own rate."""
        queue = [(0.0, f) for f in range(self.n_fields)]
        fast = dict.fromkeys(range(self.n_fields), False)
        quiet = dict.fromkeys(range(self.n_fields), 0)
        counts = dict.fromkeys(range(self.n_fields), 0)
        heapq.heapify(queue)
        while queue:
            minutes, f = heapq.heappop(queue)
            why = "event in progress" if fast[f] else "watching"
            yield session.event(f, counts[f], minutes, power=self.power, why=why)
            counts[f] += 1
            score = self.detector(session.last.estimate)
            if score > self.threshold:
                fast[f], quiet[f] = True, 0
            elif fast[f]:
                quiet[f] += 1
                fast[f] = quiet[f] < self.hold
            step = self.fast if fast[f] else self.slow
            if minutes + step <= self.duration:
                heapq.heappush(queue, (minutes + step, f))
