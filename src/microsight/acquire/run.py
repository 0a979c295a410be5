"""One simulated acquisition run: calibrate, run each agent, write the run folder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from microsight.acquire import scenarios as sc
from microsight.acquire.outputs import prepare_run_folder, write_agent, write_run
from microsight.errors import MicrosightError

CALIBRATION_SEEDS = (101, 102, 103)

DESCRIPTIONS = {
    "dose": (
        "Fields cut from the bundled nuclei image (smoothed by one pixel), imaged at "
        "several time points on a simulated widefield microscope with an sCMOS camera "
        "(Poisson photon noise, read noise, per-pixel offset and gain). Fluorophores "
        "bleach with the cumulative dose. fixed-high images every field at full power "
        "and delivers the frames; fixed-low images at low power and delivers the CARE "
        "restoration; adaptive looks at low power and images again, at a middle power, "
        "the regions whose restoration the model does not trust (uncertainty over a "
        "threshold chosen on calibration runs), then restores the pooled frames."),
    "events": (
        "Synthetic nuclei going through the cell cycle, with a visible mitosis (rounding "
        "and condensing, a bright metaphase plate, two daughters moving apart). "
        "fixed-slow and fixed-fast image every field at one interval; adaptive images at "
        "the slow interval and switches a field to the fast one while its mitosis score "
        "is over a threshold chosen on calibration runs."),
}


def _restorer(scenario: sc.DoseSettings, out: Path, model: str | Path | None, steps: int,
              tiny: bool) -> Any:
    from microsight.acquire.agents import Restorer
    from microsight.acquire.training import restoration_model

    if model is None:
        model = restoration_model(out / "model-cache", size=scenario.size,
                                  powers=(scenario.low, scenario.high),
                                  photons=scenario.photons, steps=steps, tiny=tiny,
                                  n_fields=4 if tiny else 24)
    return Restorer(model, uncertainty="tta")


def simulate(scenario: str, agents: Sequence[str], *, seed: int, out: str | Path,
             overwrite: bool = False, engine: str = "auto", model: str | Path | None = None,
             calibration_seeds: Sequence[int] = CALIBRATION_SEEDS,
             settings: dict[str, Any] | None = None, steps: int = 600, tiny: bool = False,
             log: Callable[[str], None] = lambda _: None) -> dict[str, dict[str, Any]]:
    """Run agents on one simulated specimen and write the run folder.

    Parameters
    ----------
    scenario : {"dose", "events"}
        Which scenario.
    agents : sequence of str
        Agents to run (see :data:`scenarios.DOSE_AGENTS` / :data:`scenarios.EVENT_AGENTS`).
    seed : int
        Specimen and camera seed of the evaluated run.
    out : str or Path
        Run folder (a new folder, or a previous run's, whose report then shows the
        agents of both).
    overwrite : bool
        Write into an existing folder that is not a previous run.
    engine : {"auto", "pymmcore", "direct"}
        pymmcore-plus's MDA engine on simulated devices, or the in-process runner.
    model : str or Path, optional
        Restoration bundle for the dose scenario (default: train one on simulated
        pairs, cached under ``out/model-cache``).
    calibration_seeds : sequence of int
        Seeds of the calibration runs that choose the thresholds; must not include
        ``seed``.
    settings : dict, optional
        Overrides of :class:`scenarios.DoseSettings` / :class:`scenarios.EventSettings`.
    steps, tiny : int, bool
        Training of the default restoration model.
    log : callable
        Receives progress lines.

    Returns
    -------
    dict
        Summary per agent.
    """
    known = {"dose": sc.DOSE_AGENTS, "events": sc.EVENT_AGENTS}
    if scenario not in known:
        raise MicrosightError(f"no scenario {scenario!r}; choose dose or events")
    agents = list(dict.fromkeys(agents or known[scenario]))
    bad = [a for a in agents if a not in known[scenario]]
    if bad:
        raise MicrosightError(f"the {scenario} scenario has no agent {bad[0]!r}; choose from "
                              f"{', '.join(known[scenario])}")
    if seed in calibration_seeds:
        raise MicrosightError(f"seed {seed} is a calibration seed; thresholds would be "
                              "chosen on the evaluated run. Pick another --seed")
    from microsight.acquire.plans import require_useq

    require_useq()  # before anything is written
    out = Path(out)
    prepare_run_folder(out, overwrite)
    cls = sc.DoseSettings if scenario == "dose" else sc.EventSettings
    try:
        s = cls(**(settings or {}))
    except TypeError as exc:
        raise MicrosightError(f"unknown {scenario} setting: {exc}") from None
    summaries, calibration = {}, {}
    if scenario == "dose":
        log("restoration model ...")
        restorer = _restorer(s, out, model, steps, tiny)
        if "adaptive" in agents:
            log("calibrating the trust threshold ...")
            calibration = sc.calibrate_dose(s, list(calibration_seeds), restorer)
        for name in agents:
            log(f"running {name} ...")
            session = sc.run_dose(name, s, seed, restorer, calibration.get("threshold"),
                                  engine=engine)
            summaries[name] = sc.dose_summary(session, s)
            write_agent(out, name, session, summaries[name])
    else:
        if "adaptive" in agents:
            log("calibrating the detector threshold ...")
            calibration = sc.calibrate_events(s, list(calibration_seeds))
        for name in agents:
            log(f"running {name} ...")
            session = sc.run_events(name, s, seed, calibration.get("threshold"),
                                    engine=engine)
            summaries[name] = sc.event_summary(session, s)
            write_agent(out, name, session, summaries[name])
    runner = session.runner.name
    record = {"scenario": scenario, "seed": seed, "engine": runner,
              "settings": sc.settings_dict(s), "calibration": calibration,
              "description": DESCRIPTIONS[scenario]}
    write_run(out, record, summaries)
    return summaries
