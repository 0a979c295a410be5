"""``microsight acquire``: simulated self-driving acquisition (imports nothing heavy)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

acquire_app = typer.Typer(help="Plan, run and compare acquisition agents on a simulated "
                               "microscope.", no_args_is_help=True)


def _seeds(text: str) -> list[int]:
    from microsight.errors import MicrosightError

    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise MicrosightError(f"--calibration-seeds must be integers like 101,102, got "
                              f"{text!r}") from None


@acquire_app.command("simulate")
def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    scenario: Annotated[str, typer.Option(help="dose (restoration) or events (mitosis).")] =
    "dose",
    agent: Annotated[list[str] | None, typer.Option(
        help="Agent(s): adaptive, fixed-high, fixed-low (dose); adaptive, fixed-slow, "
             "fixed-fast (events). Repeat the option; default: all of the scenario.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the specimen and camera.")] = 0,
    engine: Annotated[str, typer.Option(
        help="auto, pymmcore (pymmcore-plus MDA engine on simulated devices) or direct.")] =
    "auto",
    model: Annotated[Path | None, typer.Option(
        help="Restoration model (dose scenario); default: train one, cached in the run "
             "folder.")] = None,
    calibration_seeds: Annotated[str, typer.Option(
        help="Seeds of the calibration runs that choose the thresholds.")] = "101,102,103",
    fields: Annotated[int | None, typer.Option(help="Fields (stage positions).")] = None,
    steps: Annotated[int, typer.Option(help="Training steps of the default model.")] = 600,
    quick: Annotated[bool, typer.Option(
        help="Tiny model, few time points: a smoke test in seconds.")] = False,
    overwrite: Annotated[bool, typer.Option(
        help="Write into an existing folder that is not a previous run.")] = False,
) -> None:
    """Run agents on a simulated specimen; write data, event log, summary and report."""
    from rich.console import Console

    from microsight.acquire.run import simulate as run

    console = Console()
    settings: dict = {}
    if fields is not None:
        settings["fields"] = fields
    if quick:
        settings.update({"fields": fields or 1, "size": 48})
        settings.update({"times": 2} if scenario == "dose" else
                        {"duration": 90.0, "cycle": (60.0, 100.0), "cells": 2})
    summaries = run(scenario, agent or [], seed=seed, out=out, overwrite=overwrite,
                    engine=engine, model=model, calibration_seeds=_seeds(calibration_seeds),
                    settings=settings, steps=6 if quick else steps, tiny=quick,
                    log=console.print)
    for name, s in summaries.items():
        if scenario == "dose":
            console.print(f"{name}: dose {s['total_dose']:.3g}, PSNR {s['psnr_mean']:.2f} dB")
        else:
            console.print(f"{name}: dose {s['total_dose']:.3g}, {s['n_events']} mitoses, "
                          f"{s['events_fast']:.0%} imaged fast")
    console.print(f"wrote {out / 'report.html'}")
