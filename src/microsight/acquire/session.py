"""An acquisition session: runs an agent's events on a runner and keeps the record."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microsight.acquire.microscope import MS_PER_DOSE, SimulatedMicroscope, dose_of
from microsight.acquire.plans import frame_event
from microsight.errors import MicrosightError


@dataclass
class Frame:
    """One acquired frame: where, when, how much light, the density estimate, and why."""

    field: int
    t_index: int
    minutes: float
    power: float
    roi: tuple[int, int, int, int] | None
    dose: float
    estimate: np.ndarray
    dose_map: np.ndarray
    why: str


@dataclass
class Result:
    """The image an agent delivers for one field and time point, and its ground truth."""

    field: int
    t_index: int
    minutes: float
    image: np.ndarray
    truth: np.ndarray
    dose: float
    decision: str
    details: dict[str, Any] = field(default_factory=dict)


class Session:
    """The link between an agent and a microscope.

    An agent is a generator of MDA events (``agent.plan(session)``); after each
    event the runner snaps a frame and the session stores it in :attr:`last`,
    where the agent reads it before choosing its next event.

    Parameters
    ----------
    scope : SimulatedMicroscope
        The instrument (and its specimen, for the ground truth of the record).
    runner : object
        :class:`~microsight.acquire.microscope.PymmcoreRunner` or ``DirectRunner``.
    """

    def __init__(self, scope: SimulatedMicroscope, runner: Any) -> None:
        self.scope = scope
        self.runner = runner
        self.frames: list[Frame] = []
        self.events: list[Any] = []
        self.results: list[Result] = []
        self.last: Frame | None = None
        self._truth: dict[tuple[int, int], np.ndarray] = {}

    def event(self, field: int, t_index: int, minutes: float, *, power: float,
              roi: tuple[int, int, int, int] | None = None, why: str = "") -> Any:
        """Make the next event; the ground truth of a new (field, time point) is kept
        before its first exposure, for scoring only (agents never see it)."""
        key = (field, t_index)
        if key not in self._truth:
            self._truth[key] = self.scope.specimen.ground_truth(field, minutes)
        return frame_event(field, t_index, minutes, power=power, exposure_ms=MS_PER_DOSE,
                           roi=roi, metadata={"why": why})

    def _on_frame(self, frame: np.ndarray, event: Any) -> None:
        props = {(d, p): v for d, p, v in event.properties or ()}
        from microsight.acquire.microscope import parse_roi
        from microsight.acquire.plans import event_minutes

        power = float(props[("Light", "Power")])
        roi = parse_roi(str(props[("Light", "ROI")]))
        dose_map = np.zeros(self.scope.shape)
        y, x, h, w = roi or (0, 0, *self.scope.shape)
        dose_map[y:y + h, x:x + w] = dose_of(power, event.exposure)
        self.last = Frame(int(event.index["p"]), int(event.index["t"]), event_minutes(event),
                          power, roi, float(dose_map.mean()),
                          self.scope.estimate(frame, dose_map), dose_map,
                          str((event.metadata or {}).get("why", "")))
        self.frames.append(self.last)
        self.events.append(event)

    def run(self, agent: Any) -> None:
        """Execute the agent's plan on the runner."""
        def checked() -> Iterator[Any]:
            for event in agent.plan(self):
                count = len(self.frames)
                yield event
                # Agents decide on the frame of the event they just sent; a runner that
                # delivered no frame would make them decide on stale data.
                if len(self.frames) != count + 1:
                    raise MicrosightError("the microscope returned no frame for an event")
        self.runner.run(checked(), self._on_frame)

    def deliver(self, field: int, t_index: int, minutes: float, image: np.ndarray,
                dose: float, decision: str, **details: Any) -> None:
        """Record the agent's final image for one field and time point."""
        self.results.append(Result(field, t_index, minutes, image.astype(np.float32),
                                   self._truth[(field, t_index)], dose, decision, details))

    @property
    def total_dose(self) -> float:
        """Total dose of every frame (field-mean dose units)."""
        return float(sum(f.dose for f in self.frames))
