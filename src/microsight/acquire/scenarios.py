"""The two scenarios: settings, calibration runs, agent runs and their scores.

Calibration runs use their own seeds (and, for the dose scenario, the other half of
the specimen image); thresholds chosen there are then fixed for the evaluated seeds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from microsight.acquire import agents as ag
from microsight.acquire.microscope import SimulatedMicroscope
from microsight.acquire.runners import make_runner
from microsight.acquire.session import Session
from microsight.acquire.specimen import STAGES, CellCycleSpecimen, SampleSpecimen
from microsight.errors import MicrosightError

DOSE_AGENTS = ("adaptive", "fixed-high", "fixed-low")
EVENT_AGENTS = ("adaptive", "fixed-slow", "fixed-fast")


@dataclass
class DoseSettings:
    """The dose scenario: fields of the bundled nuclei image, a few time points."""

    fields: int = 4
    size: int = 96
    times: int = 3
    interval: float = 30.0
    low: float = 0.1
    reimage: float = 0.3
    high: float = 1.0
    photons: float = 400.0
    bleach_dose: float = 20.0
    tile: int = 16
    #: Quality the adaptive agent may lose against fixed-high when its threshold is
    #: chosen on calibration runs (dB, pooled over the calibration tiles).
    target_loss_db: float = 0.3


@dataclass
class EventSettings:
    """The event scenario: dividing cells watched for ``duration`` minutes."""

    fields: int = 4
    size: int = 96
    cells: int = 4
    duration: float = 480.0
    slow: float = 15.0
    fast: float = 3.0
    power: float = 0.3
    photons: float = 400.0
    bleach_dose: float = 60.0
    toxicity_budget: float = 1e9
    mitosis: float = 40.0
    cycle: tuple[float, float] = (500.0, 900.0)
    hold: int = 2


def _session(specimen: Any, photons: float, seed: int, engine: str) -> Session:
    scope = SimulatedMicroscope(specimen, photons=photons, seed=seed)
    return Session(scope, make_runner(scope, engine))


# --- dose scenario ----------------------------------------------------------------
def dose_agent(name: str, s: DoseSettings, restorer: Any, threshold: float | None) -> Any:
    """The dose-scenario agent called ``name``."""
    grid = {"n_times": s.times, "n_fields": s.fields, "interval": s.interval}
    if name == "fixed-high":
        return ag.FixedDose(name, s.high, restorer, restore=False, **grid)
    if name == "fixed-low":
        return ag.FixedDose(name, s.low, restorer, **grid)
    if name == "adaptive":
        if threshold is None:
            raise MicrosightError("the adaptive agent needs a calibrated threshold")
        return ag.AdaptiveDose(restorer, threshold, low=s.low, high=s.reimage, tile=s.tile,
                               **grid)
    raise MicrosightError(f"no dose agent {name!r}; choose one of {', '.join(DOSE_AGENTS)}")


def run_dose(name: str, s: DoseSettings, seed: int, restorer: Any, threshold: float | None,
             *, engine: str = "auto", half: str = "bottom") -> Session:
    """Run one dose-scenario agent on the fields of ``seed``."""
    specimen = SampleSpecimen(s.fields, size=s.size, seed=seed, half=half,
                              bleach_dose=s.bleach_dose)
    session = _session(specimen, s.photons, seed, engine)
    session.run(dose_agent(name, s, restorer, threshold))
    return session


def psnr(image: np.ndarray, truth: np.ndarray) -> float:
    """PSNR (dB) against the ground truth, on the density scale (data range 1)."""
    from microsight.metrics.restoration import psnr as _psnr

    return _psnr(image, truth, data_range=1.0)


def calibrate_dose(s: DoseSettings, seeds: list[int], restorer: Any) -> dict[str, Any]:
    """Choose the adaptive agent's tile threshold on calibration runs.

    For every calibration tile: its uncertainty score after a low-power look, its
    squared error if trusted (its restoration) and if imaged again (the restoration
    of the pooled frames); fixed-high's error is that of its frames. The threshold is
    the largest whose pooled error stays within ``target_loss_db`` of fixed-high's,
    i.e. the least light for that quality.
    """
    scores, err_keep, err_redo, err_high = [], [], [], 0.0
    for seed in seeds:
        specimen = SampleSpecimen(s.fields, size=s.size, seed=seed, half="top",
                                  bleach_dose=1e9)
        scope = SimulatedMicroscope(specimen, photons=s.photons, seed=seed)
        for f in range(s.fields):
            scope.field, truth = f, specimen.ground_truth(f, 0.0)
            frames = []
            for power in (s.low, s.reimage, s.high):
                scope.power = power
                dose = scope.dose_map()
                frames.append((scope.estimate(scope.snap(), dose), dose))
            restored, spread, _ = restorer(frames[0][0])
            both = (frames[0][0] * frames[0][1] + frames[1][0] * frames[1][1]) / (
                frames[0][1] + frames[1][1])
            redone = restorer(both)[0]
            scores.append(ag.tile_scores(spread, s.tile).ravel())
            err_keep.append(ag.tile_scores((restored - truth) ** 2, s.tile).ravel())
            err_redo.append(ag.tile_scores((redone - truth) ** 2, s.tile).ravel())
            err_high += float(((frames[2][0] - truth) ** 2).mean())
    score, keep, redo = (np.concatenate(v) for v in (scores, err_keep, err_redo))
    budget = err_high / s.fields / len(seeds) * 10 ** (s.target_loss_db / 10)
    best = float(score.min()) - 1e-9  # re-image everything: always within budget
    for threshold in np.unique(score):
        error = float(np.where(score > threshold, redo, keep).mean())
        if error <= budget:
            best = float(threshold)
    share = float((score > best).mean())
    return {"threshold": best, "seeds": list(seeds), "tiles": int(score.size),
            "reimaged_share": share,
            "expected_dose_ratio": (s.low + share * s.reimage) / s.high,
            "target_loss_db": s.target_loss_db}


def dose_summary(session: Session, s: DoseSettings) -> dict[str, Any]:
    """Total dose, bleaching, quality against the ground truth, decisions."""
    rows = []
    for r in session.results:
        row = {"field": r.field, "t": r.t_index, "minutes": r.minutes, "dose": r.dose,
               "psnr": psnr(r.image, r.truth), "decision": r.decision}
        for key, value in r.details.items():
            if key in ("raw", "restored"):
                row[f"psnr_{key}"] = psnr(value, r.truth)
            else:
                row[key] = value
        rows.append(row)
    specimen = session.scope.specimen
    left = [float(specimen.bleached_fraction(f).mean()) for f in range(specimen.n_fields)]
    return {"total_dose": session.total_dose,
            "dose_per_image": session.total_dose / max(len(rows), 1),
            "psnr_mean": float(np.mean([r["psnr"] for r in rows])),
            **{f"{key}_mean": float(np.mean([r[key] for r in rows]))
               for key in ("psnr_raw", "psnr_restored") if rows and key in rows[0]},
            "fluorophores_left": float(np.mean(left)),
            "frames": len(session.frames), "images": rows, **timeline(session)}


# --- event scenario ---------------------------------------------------------------
def event_specimen(s: EventSettings, seed: int) -> CellCycleSpecimen:
    """The dividing cells of ``seed``."""
    return CellCycleSpecimen(s.fields, size=s.size, cells=s.cells, mitosis=s.mitosis,
                             cycle=tuple(s.cycle), seed=seed, bleach_dose=s.bleach_dose,
                             toxicity_budget=s.toxicity_budget)


def event_agent(name: str, s: EventSettings, threshold: float | None,
                detector: Any = ag.mitosis_score) -> Any:
    """The event-scenario agent called ``name``."""
    common = {"power": s.power, "duration": s.duration, "n_fields": s.fields}
    if name == "fixed-slow":
        return ag.FixedRate(name, s.slow, **common)
    if name == "fixed-fast":
        return ag.FixedRate(name, s.fast, **common)
    if name == "adaptive":
        if threshold is None:
            raise MicrosightError("the adaptive agent needs a calibrated threshold")
        return ag.EventDriven(detector, threshold, slow=s.slow, fast=s.fast, hold=s.hold,
                              **common)
    raise MicrosightError(f"no event agent {name!r}; choose one of {', '.join(EVENT_AGENTS)}")


def run_events(name: str, s: EventSettings, seed: int, threshold: float | None, *,
               engine: str = "auto") -> Session:
    """Run one event-scenario agent on the cells of ``seed``."""
    session = _session(event_specimen(s, seed), s.photons, seed, engine)
    session.run(event_agent(name, s, threshold))
    return session


def calibrate_events(s: EventSettings, seeds: list[int]) -> dict[str, Any]:
    """Choose the detector threshold on calibration runs imaged at the fast rate.

    Frames in a mitosis's condensed stages (second half of prophase onwards) are
    positives, frames outside mitosis negatives; the threshold is the largest that
    still passes 95% of the positives.
    """
    pos, neg = [], []
    prophase = STAGES[0][1]
    for seed in seeds:
        session = run_events("fixed-fast", s, seed, None, engine="direct")
        specimen = session.scope.specimen
        for frame in session.frames:
            score = ag.mitosis_score(frame.estimate)
            phases = [(frame.minutes - m.start) / (m.end - m.start)
                      for m in specimen.mitoses(frame.field, frame.minutes)
                      if m.start <= frame.minutes < m.end]
            if not phases:
                neg.append(score)
            elif max(phases) >= prophase / 2:
                pos.append(score)
    if not pos or not neg:
        raise MicrosightError("calibration runs saw no mitosis; use more seeds or fields")
    threshold = float(np.percentile(pos, 5))
    return {"threshold": threshold, "seeds": list(seeds), "positives": len(pos),
            "negatives": len(neg), "false_positive_rate": float(np.mean(np.array(neg)
                                                                        > threshold))}


def event_summary(session: Session, s: EventSettings) -> dict[str, Any]:
    """Dose, bleaching, and for every mitosis whether its split was imaged fast."""
    specimen = session.scope.specimen
    by_field: dict[int, list[float]] = {}
    for frame in session.frames:
        by_field.setdefault(frame.field, []).append(frame.minutes)
    events = []
    for f in range(specimen.n_fields):
        times = np.array(sorted(by_field.get(f, [])))
        for m in specimen.mitoses(f, s.duration):
            if m.end > s.duration:
                continue
            events.append({"field": f, "start": m.start, "end": m.end,
                           **_coverage(times, m, s.fast)})
    captured = [e["fast"] for e in events]
    left = [float(specimen.bleached_fraction(f).mean()) for f in range(specimen.n_fields)]
    return {"total_dose": session.total_dose, "frames": len(session.frames),
            "events": events, "n_events": len(events),
            "events_fast": float(np.mean(captured)) if events else float("nan"),
            "frames_in_mitosis": float(np.mean([e["frames"] for e in events]))
            if events else 0.0,
            "fluorophores_left": float(np.mean(left)), **timeline(session)}


def timeline(session: Session) -> dict[str, Any]:
    """Per frame: (minutes, dose) and (minutes, field), for plots over time."""
    return {"timeline": [(f.minutes, f.dose) for f in session.frames],
            "frame_times": [(f.minutes, f.field) for f in session.frames]}


def _coverage(times: np.ndarray, m: Any, fast: float) -> dict[str, Any]:
    """Frames during a mitosis, and whether anaphase (the split) was imaged fast.

    Fast means every gap between the frames spanning anaphase, from the last frame
    at or before its start to the first at or after its end, is at most ``fast``.
    """
    inside = times[(times >= m.start) & (times < m.end)]
    a0, a1 = m.stage_times()["anaphase"]
    before, after = times[times <= a0 + 1e-9], times[times >= a1 - 1e-9]
    if not before.size or not after.size:
        return {"frames": int(inside.size), "fast": False}
    span = times[(times >= before.max()) & (times <= after.min())]
    fast_ok = bool(np.all(np.diff(span) <= fast + 1e-6))
    return {"frames": int(inside.size), "fast": fast_ok}


def settings_dict(s: Any) -> dict[str, Any]:
    """Settings as a plain dict (for the summary)."""
    return asdict(s)
