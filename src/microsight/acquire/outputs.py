"""The run folder: acquired data (OME-Zarr), event log, summary, and the report.

Layout::

    run/
      acquire.json            what this run is (scenario, seed, agents, calibration)
      report.html             the agents side by side, with plots over time
      <agent>/frames_field<i>.ome.zarr    every frame of field i (TYX, photons per unit dose)
      <agent>/images_field<i>.ome.zarr    dose scenario: the delivered images (TYX)
      <agent>/events.json     the MDA events executed, in order
      <agent>/summary.json    dose, bleaching, quality or events captured, decisions
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from microsight.errors import MicrosightError

MARKER = "acquire.json"


def prepare_run_folder(out: Path, overwrite: bool) -> None:
    """Refuse an existing folder that is not a previous run, unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise MicrosightError(f"{out} is a file; give a folder for --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file() and not overwrite:
        raise MicrosightError(f"{out} exists and is not an acquisition run; choose another "
                              "--out or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)


def _json(path: Path, data: Any) -> None:
    from microsight.engine.files import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=1, default=_plain))


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_agent(out: Path, agent: str, session: Any, summary: dict[str, Any]) -> Path:
    """Write one agent's data, events and summary to ``out/agent`` (atomically)."""
    from microsight.acquire.plans import save_events
    from microsight.io.writers import write_image

    final = out / agent
    tmp = out / f".{agent}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    fields = sorted({f.field for f in session.frames})
    for field in fields:
        frames = np.stack([f.estimate for f in session.frames if f.field == field])
        write_image(tmp / f"frames_field{field}.ome.zarr", frames, "TYX")
        images = [r.image for r in session.results if r.field == field]
        if images:
            write_image(tmp / f"images_field{field}.ome.zarr", np.stack(images), "TYX")
    save_events(session.events, tmp / "events.json")
    _json(tmp / "summary.json", summary)
    if final.exists():
        # Replacing this agent's folder of a previous run in the same place.
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def write_run(out: Path, record: dict[str, Any], summaries: dict[str, dict[str, Any]]) -> Path:
    """Write the run record and the report comparing every agent of the run."""
    from microsight.acquire.report import build_report

    previous = {}
    if (out / MARKER).is_file():
        old = json.loads((out / MARKER).read_text())
        if old.get("scenario") == record["scenario"] and old.get("seed") == record["seed"]:
            previous = {a: json.loads((out / a / "summary.json").read_text())
                        for a in old.get("agents", []) if (out / a / "summary.json").is_file()}
            # A run without the adaptive agent calibrates nothing: keep the earlier one.
            record = {**record, "calibration": record.get("calibration") or
                      old.get("calibration", {})}
    summaries = {**previous, **summaries}
    record = {**record, "agents": sorted(summaries)}
    _json(out / MARKER, record)
    return build_report(record, summaries).write(out / "report.html")
