"""Acquisition agents against fixed protocols on the simulated microscope.

Both scenarios over several evaluation seeds; the thresholds are chosen once on
separate calibration seeds (and, for the dose scenario, on the other half of the
specimen image). Writes mean and spread per agent, and the acceptance checks of
the acquisition issue, to results/raw/acquire.json.

    python benchmarks/acquire_agents.py                      # about 5-10 min, 2-core CPU
    python benchmarks/acquire_agents.py --seeds 1 2 --steps 200   # quicker look
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from microsight.acquire import scenarios as sc
from microsight.acquire.agents import Restorer
from microsight.acquire.training import restoration_model

CALIBRATION = [101, 102, 103]


def _stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, float)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            "min": float(arr.min()), "max": float(arr.max()), "values": arr.tolist()}


def dose_benchmark(seeds: list[int], work: Path, steps: int, engine: str) -> dict:
    s = sc.DoseSettings()
    t0 = time.perf_counter()
    model = restoration_model(work / "model-cache", size=s.size, powers=(s.low, s.high),
                              photons=s.photons, steps=steps)
    train_s = time.perf_counter() - t0
    restorer = Restorer(model, uncertainty="tta")
    calibration = sc.calibrate_dose(s, CALIBRATION, restorer)
    per_seed: dict[str, list[dict]] = {a: [] for a in sc.DOSE_AGENTS}
    for seed in seeds:
        for name in sc.DOSE_AGENTS:
            session = sc.run_dose(name, s, seed, restorer, calibration["threshold"],
                                  engine=engine)
            summary = sc.dose_summary(session, s)
            row = {"seed": seed, "total_dose": summary["total_dose"],
                   "psnr": summary["psnr_mean"],
                   "fluorophores_left": summary["fluorophores_left"],
                   "frames": summary["frames"]}
            # The other image of the fixed protocols: raw for fixed-low, restored for
            # fixed-high.
            for key in ("psnr_raw", "psnr_restored"):
                if f"{key}_mean" in summary:
                    row[key] = summary[f"{key}_mean"]
            per_seed[name].append(row)
        high = per_seed["fixed-high"][-1]
        for name in sc.DOSE_AGENTS:
            row = per_seed[name][-1]
            row["dose_ratio_vs_high"] = row["total_dose"] / high["total_dose"]
            row["psnr_gap_vs_high"] = row["psnr"] - high["psnr"]
    agents = {name: {key: _stats([r[key] for r in rows]) for key in rows[0] if key != "seed"}
              for name, rows in per_seed.items()}
    adaptive, low = agents["adaptive"], agents["fixed-low"]
    acceptance = {
        "psnr_within_0.5dB_of_fixed_high": adaptive["psnr_gap_vs_high"]["mean"] >= -0.5,
        "dose_at_most_half_of_fixed_high": adaptive["dose_ratio_vs_high"]["mean"] <= 0.5,
        "better_than_fixed_low_restored": adaptive["psnr"]["mean"] > low["psnr"]["mean"],
    }
    return {"settings": sc.settings_dict(s), "training_steps": steps,
            "training_seconds": train_s, "calibration": calibration, "agents": agents,
            "acceptance": acceptance, "accepted": all(acceptance.values())}


def event_benchmark(seeds: list[int], engine: str) -> dict:
    s = sc.EventSettings()
    calibration = sc.calibrate_events(s, CALIBRATION)
    per_seed: dict[str, list[dict]] = {a: [] for a in sc.EVENT_AGENTS}
    for seed in seeds:
        for name in sc.EVENT_AGENTS:
            session = sc.run_events(name, s, seed, calibration["threshold"], engine=engine)
            summary = sc.event_summary(session, s)
            per_seed[name].append({"seed": seed, "total_dose": summary["total_dose"],
                                   "events_fast": summary["events_fast"],
                                   "n_events": summary["n_events"],
                                   "frames_in_mitosis": summary["frames_in_mitosis"],
                                   "fluorophores_left": summary["fluorophores_left"]})
        fast = per_seed["fixed-fast"][-1]["total_dose"]
        for name in sc.EVENT_AGENTS:
            per_seed[name][-1]["dose_ratio_vs_fast"] = per_seed[name][-1]["total_dose"] / fast
    agents = {name: {key: _stats([r[key] for r in rows]) for key in rows[0] if key != "seed"}
              for name, rows in per_seed.items()}
    # Pooled over seeds: every mitosis counts once.
    pooled = {name: float(np.sum([r["events_fast"] * r["n_events"] for r in rows])
                          / max(np.sum([r["n_events"] for r in rows]), 1))
              for name, rows in per_seed.items()}
    adaptive = agents["adaptive"]
    acceptance = {
        "events_fast_at_least_90pct": pooled["adaptive"] >= 0.9,
        "dose_at_most_40pct_of_fixed_fast": adaptive["dose_ratio_vs_fast"]["mean"] <= 0.4,
        "fixed_slow_misses_most": pooled["fixed-slow"] < 0.5,
    }
    return {"settings": sc.settings_dict(s), "calibration": calibration, "agents": agents,
            "events_fast_pooled": pooled, "acceptance": acceptance,
            "accepted": all(acceptance.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--steps", type=int, default=600, help="CARE training steps")
    parser.add_argument("--work", type=Path, default=Path("/tmp/microsight-acquire-bench"),
                        help="cache of the training pairs and the model")
    parser.add_argument("--engine", default="auto", help="auto, pymmcore or direct")
    parser.add_argument("--out", type=Path, default=Path("results/raw/acquire.json"))
    args = parser.parse_args(argv)
    overlap = set(args.seeds) & set(CALIBRATION)
    if overlap:
        parser.error(f"evaluation seeds {sorted(overlap)} are calibration seeds")
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    dose = dose_benchmark(args.seeds, args.work, args.steps, args.engine)
    print(json.dumps({k: v for k, v in dose.items() if k in ("acceptance", "calibration")},
                     indent=1))
    mid = time.perf_counter()
    events = event_benchmark(args.seeds, args.engine)
    print(json.dumps(events["acceptance"], indent=1))
    end = time.perf_counter()
    from microsight.acquire.runners import pymmcore_available

    result = {
        "command": "python " + " ".join(["benchmarks/acquire_agents.py", *sys.argv[1:]]),
        "machine": f"2-core CPU ({platform.processor() or platform.machine()})",
        "engine": "pymmcore-plus" if args.engine != "direct" and pymmcore_available()
        else "direct",
        "evaluation_seeds": args.seeds, "calibration_seeds": CALIBRATION,
        "seconds": {"dose": mid - start, "events": end - mid, "total": end - start},
        "dose": dose, "events": events,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out} in {end - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
