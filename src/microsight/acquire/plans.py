"""Acquisition plans as `useq-schema` MDA events and sequences (the plan format of
pymmcore-plus), and their JSON / YAML files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from microsight.acquire.microscope import CLOCK, FIELD_PITCH, LIGHT, MS_PER_DOSE, format_roi
from microsight.errors import MicrosightError

INSTALL = 'acquisition plans need useq-schema; pip install "microsight[acquire]"'


def require_useq() -> Any:
    """Import :mod:`useq`, or raise one clear line saying how to install it."""
    try:
        import useq
    except ImportError:
        raise MicrosightError(INSTALL) from None
    return useq


def frame_event(field: int, t_index: int, minutes: float, *, power: float,
                exposure_ms: float = MS_PER_DOSE, roi: tuple[int, int, int, int] | None = None,
                metadata: dict[str, Any] | None = None) -> Any:
    """One frame of a plan: stage position, exposure, light power and region, time.

    Parameters
    ----------
    field : int
        Field (stage position) index; the stage moves to ``x = field * FIELD_PITCH``.
    t_index : int
        Time-point index of the frame within its field.
    minutes : float
        Time of the frame (minutes since the start), set on the simulated clock
        (a real microscope waits for it: ``min_start_time``).
    power : float
        Relative light power, 0-1.
    exposure_ms : float
        Camera exposure.
    roi : tuple of int, optional
        Illuminated region ``(y, x, h, w)``; whole field when omitted.
    metadata : dict, optional
        Why the agent asked for this frame (kept in the event log).

    Returns
    -------
    useq.MDAEvent
    """
    useq = require_useq()
    return useq.MDAEvent(
        index={"p": int(field), "t": int(t_index)},
        x_pos=float(field) * FIELD_PITCH, y_pos=0.0, exposure=float(exposure_ms),
        properties=[(LIGHT, "Power", float(power)), (LIGHT, "ROI", format_roi(roi)),
                    (CLOCK, "Minutes", float(minutes))],
        metadata=dict(metadata or {}))


def event_minutes(event: Any) -> float:
    """The planned time (minutes) of an event made by :func:`frame_event`."""
    for device, prop, value in event.properties or ():
        if (device, prop) == (CLOCK, "Minutes"):
            return float(value)
    raise MicrosightError("the event has no simulated clock time")


def fixed_sequence(n_fields: int, n_times: int, interval_min: float, *, power: float,
                   exposure_ms: float = MS_PER_DOSE) -> Any:
    """A fixed protocol as one :class:`useq.MDASequence` (positions x time points).

    The form to load on a real pymmcore-plus microscope (``core.mda.run(seq)``);
    the light power goes in each position's properties.
    """
    useq = require_useq()
    positions = [{"x": float(i) * FIELD_PITCH, "y": 0.0, "name": f"field{i}"}
                 for i in range(n_fields)]
    return useq.MDASequence(
        stage_positions=positions,
        time_plan={"interval": {"minutes": interval_min}, "loops": n_times},
        metadata={"power": power, "exposure_ms": exposure_ms},
        axis_order="tp")


def events_to_json(events: list[Any]) -> str:
    """JSON list of events (unset fields left out)."""
    return json.dumps([json.loads(e.model_dump_json(exclude_unset=True)) for e in events],
                      indent=1)


def events_from_json(text: str) -> list[Any]:
    """Inverse of :func:`events_to_json`."""
    useq = require_useq()
    try:
        return [useq.MDAEvent.model_validate(item) for item in json.loads(text)]
    except (ValueError, TypeError) as exc:
        raise MicrosightError(f"not a list of MDA events: {exc}") from None


def save_events(events: list[Any], path: str | Path) -> Path:
    """Write events as JSON (``.json``) or YAML (``.yaml``/``.yml``), atomically."""
    from microsight.engine.files import atomic_write_text

    path = Path(path)
    text = events_to_json(events)
    if path.suffix in (".yaml", ".yml"):
        import yaml

        text = yaml.safe_dump(json.loads(text), sort_keys=False)
    return atomic_write_text(path, text)


def load_events(path: str | Path) -> list[Any]:
    """Read events written by :func:`save_events`."""
    path = Path(path)
    if not path.is_file():
        raise MicrosightError(f"{path} does not exist")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        text = json.dumps(yaml.safe_load(text))
    return events_from_json(text)
