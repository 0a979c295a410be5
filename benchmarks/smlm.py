"""Benchmark: single-molecule localization (learned localizer, Deep-STORM, classical MLE).

Not part of the test suite (it trains for minutes).

Data
    Simulated with ``microsight.data.smlm``: 64 x 64 frames of 100 nm pixels, integrated
    Gaussian PSF (sd 110 nm), gamma-distributed brightness (mean 2000 photons, CV 0.4),
    20 background photons per pixel, EMCCD camera (QE 0.9, EM gain 100, 45 e-/ADU,
    baseline 100 ADU, read noise 2 e-), blinking with a mean on time of 2 frames.
    Training movies use seeds derived from the training seed; every test movie uses its
    own seed (100 + index), so no test frame is ever trained on. Plus the 20-frame
    ThunderSTORM-simulated example of the EPFL 2013 "bundled tubes" Deep-STORM demo
    (``/work/shared/data/epfl2013-bundled-tubes-hd-deepstorm``, 100 nm pixels, about 6
    emitters/um^2): its PSF, brightness and background are those of the simulations, its
    camera (2 ADU per photon, offset 95 ADU) is mapped to the simulated one.

Protocol
    - ``localize``: compact U-Net (depth 3, 12 features, one context frame each side)
      trained on simulated movies mixing densities 0.25-6 emitters/um^2;
    - classical baseline: band-pass + local maxima + Poisson MLE of an integrated
      Gaussian (``data.smlm_fit.localize_classical``), PSF width known;
    - scores per density (random emitter positions): per-frame Hungarian matching within
      250 nm; Jaccard, recall, precision, lateral RMSE, efficiency, localizations per
      second; at every density also the Cramer-Rao bound of the matched emitters (Fisher
      information of the pixelated PSF with background under Poisson noise of the
      detected photons, i.e. QE times the incident ones, divided by the EMCCD excess
      factor 2), as the RMS over matched emitters of their own bounds;
    - ``deepstorm``: 8x finer grid, trained on simulated frames (densities 1-6); a
      filament movie at 3 emitters/um^2 reconstructed and scored by NMSE and FRC
      resolution (1/7) against the ground truth rendered on the same 12.5 nm grid (sd 1
      fine pixel), next to the classical and learned localizations rendered the same way;
    - ``--speed``: a 10,000-frame 64 x 64 movie localized by the trained localizer.

Run (about 25 minutes on a loaded 2-core CPU)::

    python benchmarks/smlm.py                 # writes bench_out/smlm/
    python benchmarks/smlm.py --fast          # smoke run: few steps, three densities
    python benchmarks/smlm.py --speed         # only the 10,000-frame timing
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from microsight import api
from microsight.data.smlm import CameraConfig, SimulationConfig, simulate
from microsight.data.smlm_fit import crlb, localize_classical
from microsight.data.smlm_render import render_gaussian
from microsight.engine.bundle import load_model
from microsight.io import read_image
from microsight.io.localizations import read_localizations
from microsight.methods.deepstorm.module import DeepStormModule
from microsight.methods.localize.module import LocalizeModule
from microsight.metrics.smlm import match_localizations, reconstruction_scores

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import command_line, write_result

TS_DATA = Path("/work/shared/data/epfl2013-bundled-tubes-hd-deepstorm")
DENSITIES = (0.1, 0.5, 1.0, 2.0, 3.0, 5.0)
CAMERA = CameraConfig(model="emccd", qe=0.9, em_gain=100, e_per_adu=45, baseline=100,
                      read_noise=2)
SIM = SimulationConfig(photons=2000, photons_cv=0.4, background=20, sigma=110,
                       pixel_size=100, camera=CAMERA, on_frames=2.0)
# The ThunderSTORM example: ADU ~ 2 x photons + 135 over 20 frames (a least-squares fit
# of frame sums against the table's intensities), background 20 photons (its bkgstd
# column is sqrt(20)), hence an offset of about 95 ADU; PSF sd about 110 nm.
TS_CAMERA = CameraConfig(model="scmos", qe=1.0, e_per_adu=0.5, baseline=95, read_noise=0,
                         offset_sd=0, gain_sd=0)
TS_SIM = SimulationConfig(photons=2250, photons_cv=0.1, background=20, sigma=110,
                          pixel_size=100, camera=TS_CAMERA, on_frames=1.0)


def train(method: str, out: Path, sim: SimulationConfig, densities: list[float], steps: int,
          frames: int, extra: dict | None = None):
    """Train (or reload) a model on freshly simulated movies."""
    if (out / "model.json").exists():
        return load_model(out)
    cfg = {"name": out.name,
           "method": {"method": method, "simulation": sim.model_dump(mode="json"),
                      "train_frames": frames, "val_frames": 32, "train_densities": densities,
                      **(extra or {})},
           "data": {"patch_size": [32, 32], "batch_size": 16},
           "training": {"epochs": max(1, steps // 100), "steps_per_epoch": min(100, steps),
                        "val_tile": 64, "learning_rate": 1e-3,
                        "early_stopping_patience": None}}
    start = time.perf_counter()
    model = api.train(method, None, out=out, config=cfg, progress=False)
    print(f"trained {method} in {time.perf_counter() - start:.0f} s", flush=True)
    return model


def crlb_rms(photons: np.ndarray, sim: SimulationConfig, excess: float | None = None,
             qe: float | None = None) -> float:
    """Lateral CRLB (nm), RMS over emitters of their own bounds (photons interpolated).

    The table's photons and the background are incident photons; the camera
    detects ``qe`` of them, and only detected photons carry information.
    """
    if len(photons) == 0:
        return float("nan")
    grid = np.geomspace(max(photons.min(), 10), max(photons.max(), 20), 24)
    s = sim.sigma / sim.pixel_size
    excess = sim.camera.excess_factor if excess is None else excess
    qe = sim.camera.qe if qe is None else qe
    var = [2 * crlb(n * qe, sim.background * qe, s, excess=excess)["xy"] ** 2
           for n in grid]
    per = np.interp(np.clip(photons, grid[0], grid[-1]), grid, var)
    return float(np.sqrt(np.mean(per)) * sim.pixel_size)


def score(table: np.ndarray, truth: np.ndarray, seconds: float, sim: SimulationConfig,
          tolerance: float = 250.0, excess: float | None = None,
          qe: float | None = None) -> dict:
    """Challenge metrics, speed and the CRLB of the matched emitters."""
    from microsight.metrics.smlm import localization_scores

    s = localization_scores(table, truth, tolerance)
    _, ti = match_localizations(table, truth, tolerance)
    return {"jaccard": s["jaccard"], "recall": s["recall"], "precision": s["precision"],
            "rmse_nm": s["rmse_lateral"],
            "crlb_nm": crlb_rms(truth["photons"][ti], sim, excess, qe),
            "efficiency": s["efficiency_lateral"], "n_loc": int(len(table)),
            "loc_per_s": len(table) / max(seconds, 1e-9), "seconds": seconds}


def run_methods(model, movie: np.ndarray, truth: np.ndarray, sim: SimulationConfig,
                excess: float | None = None, qe: float | None = None) -> dict:
    """Both localizers on one movie (ADU of ``sim.camera``), scored."""
    m = model.config.method
    start = time.perf_counter()
    net = LocalizeModule.localize_movie(model, movie)
    t_net = time.perf_counter() - start
    start = time.perf_counter()
    cls = localize_classical(sim.camera.to_photons(movie), sigma=sim.sigma / sim.pixel_size,
                             pixel_size=sim.pixel_size, threshold=m.classical_threshold)
    t_cls = time.perf_counter() - start
    return {"localize": score(net, truth, t_net, sim, excess=excess, qe=qe),
            "classical": score(cls, truth, t_cls, sim, excess=excess, qe=qe),
            "tables": (net, cls)}


def density_sweep(model, densities: tuple[float, ...], emitters: int) -> list[dict]:
    rows = []
    area = SIM.area_um2
    for k, density in enumerate(densities):
        frames = int(np.clip(np.ceil(emitters / (density * area)), 30, 400))
        sim = SIM.model_copy(update={"density": density, "frames": frames, "seed": 100 + k})
        data = simulate(sim)
        res = run_methods(model, data.movie, data.truth, SIM)
        for source in ("localize", "classical"):
            rows.append({"density": density, "frames": frames, "emitters": len(data.truth),
                         "source": source, **res[source]})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def deepstorm_eval(ds_model, loc_model, fast: bool) -> list[dict]:
    sim = SIM.model_copy(update={"density": 3.0, "frames": 60 if fast else 200,
                                 "structure": "filaments", "seed": 500})
    data = simulate(sim)
    m = ds_model.config.method
    fine = sim.pixel_size / m.factor
    size = (sim.shape[0] * sim.pixel_size, sim.shape[1] * sim.pixel_size)
    reference = render_gaussian(data.truth, size, fine, sigma=m.target_sigma * fine)
    start = time.perf_counter()
    recon = DeepStormModule.reconstruct(ds_model, data.movie)
    t_ds = time.perf_counter() - start
    net, cls = run_methods(loc_model, data.movie, data.truth, SIM)["tables"]
    rows = [{"source": "deepstorm", **reconstruction_scores(recon, reference, pixel_size=fine),
             "seconds": t_ds}]
    for source, table in (("localize (rendered)", net), ("classical (rendered)", cls)):
        img = render_gaussian(table, size, fine, sigma=m.target_sigma * fine)
        rows.append({"source": source, **reconstruction_scores(img, reference, pixel_size=fine)})
    for r in rows:
        print(json.dumps(r), flush=True)
    return rows


def thunderstorm_eval(model) -> list[dict]:
    """The 20-frame ThunderSTORM example, through the localizer trained on SIM.

    Its PSF (sd ~110 nm), brightness (~2250 photons) and background (20 photons) are
    those of SIM; only the camera differs, so the movie is mapped to SIM's camera
    (photons -> mean ADU) instead of training a second model.
    """
    movie = np.asarray(read_image(TS_DATA / "thunderstorm_sim_training_stack.tif",
                                  axes="TYX").data, np.float32)
    truth = read_localizations(TS_DATA / "thunderstorm_sim_training_positions.csv")
    photons = np.maximum(TS_CAMERA.to_photons(movie), 0)
    # Its noise is Poisson only (QE 1): CRLB without the EMCCD excess factor.
    res = run_methods(model, CAMERA.from_photons(photons), truth,
                      TS_SIM.model_copy(update={"camera": CAMERA}), excess=1.0, qe=1.0)
    rows = [{"data": "ThunderSTORM example (20 frames, ~6/um^2)", "source": s, **res[s]}
            for s in ("localize", "classical")]
    for r in rows:
        print(json.dumps(r), flush=True)
    return rows


def speed(model, frames: int = 10_000) -> dict:
    sim = SIM.model_copy(update={"density": 1.0, "frames": frames, "seed": 900})
    start = time.perf_counter()
    data = simulate(sim)
    t_sim = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    table = LocalizeModule.localize_movie(model, data.movie)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    # CPU seconds of this process: on a shared machine wall time also counts waiting.
    row = {"frames": frames, "shape": "64x64", "seconds": seconds, "cpu_seconds": cpu,
           "frames_per_s": frames / seconds, "localizations": int(len(table)),
           "simulation_seconds": t_sim}
    print(json.dumps(row), flush=True)
    return row


def markdown(results: dict) -> str:
    lines = ["| density (/um^2) | method | Jaccard | recall | precision | RMSE (nm) | "
             "CRLB (nm) | efficiency | loc/s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results.get("densities", []):
        lines.append(f"| {r['density']:g} | {r['source']} | {r['jaccard']:.3f} | "
                     f"{r['recall']:.3f} | {r['precision']:.3f} | {r['rmse_nm']:.1f} | "
                     f"{r['crlb_nm']:.1f} | {r['efficiency']:.1f} | {r['loc_per_s']:.0f} |")
    for r in results.get("thunderstorm", []):
        lines.append(f"| TS example | {r['source']} | {r['jaccard']:.3f} | {r['recall']:.3f} | "
                     f"{r['precision']:.3f} | {r['rmse_nm']:.1f} | {r['crlb_nm']:.1f} | "
                     f"{r['efficiency']:.1f} | {r['loc_per_s']:.0f} |")
    if results.get("deepstorm"):
        lines += ["", "| reconstruction (filaments, 3/um^2) | NMSE | FRC resolution (nm) |",
                  "|---|---|---|"]
        lines += [f"| {r['source']} | {r['nmse']:.3f} | {r['frc_resolution']:.1f} |"
                  for r in results["deepstorm"]]
    if results.get("speed"):
        s = results["speed"]
        lines += ["", f"Speed: {s['frames']} frames of {s['shape']} localized in "
                      f"{s['seconds']:.1f} s wall, {s['cpu_seconds']:.1f} s CPU "
                      f"({s['frames_per_s']:.0f} frames/s, "
                      f"{s['localizations']} localizations)."]
    return "\n".join(lines) + "\n"


def record(results: dict, parts: set[str], run: str) -> list[Path]:
    """Add the parts this invocation measured to ``results/smlm-localize.json`` and
    ``results/smlm-deepstorm.json`` (tables of RESULTS.md)."""
    command = command_line(__file__, sys.argv[1:])
    names = {"jaccard": "Jaccard", "recall": "recall", "precision": "precision",
             "rmse_nm": "RMSE nm", "crlb_nm": "CRLB nm"}

    def row(model: str, source: str, **values) -> dict:
        return {"model": f"{model} ({run})", "command": command, "recipe": None,
                "kind": "baseline" if source.startswith("classical") else "microsight",
                "train_s": None, **values}

    rows = []
    if "densities" in parts:
        threshold = results["threshold"]
        val = results["threshold_validation"].get(str(threshold))
        if val is not None:
            rows.append(row(f"localize, validation movies, threshold {threshold:g}", "localize",
                            val={"Jaccard": val}))
        for r in results["densities"]:
            rows.append(row(f"{r['source']}, {r['density']:g} /um^2", r["source"],
                            test={v: r[k] for k, v in names.items()}))
    for r in results.get("thunderstorm", []) if "thunderstorm" in parts else []:
        rows.append(row(f"{r['source']}, ThunderSTORM example", r["source"],
                        test={v: r[k] for k, v in names.items()}))
    if "speed" in parts:
        sp = results["speed"]
        rows.append(row(f"localize, {sp['frames']} frames of {sp['shape']}", "localize",
                        measured={"wall s": sp["seconds"], "frames/s": sp["frames_per_s"]}))
    written = [write_result("smlm-localize", rows)] if rows else []
    if "deepstorm" in parts:
        written.append(write_result("smlm-deepstorm", [
            row(r["source"], r["source"],
                test={"NMSE": r["nmse"], "FRC nm": r["frc_resolution"]})
            for r in results["deepstorm"]]))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench_out/smlm"))
    parser.add_argument("--fast", action="store_true", help="smoke run: few steps")
    parser.add_argument("--steps", type=int, default=None, help="training steps per model")
    parser.add_argument("--speed", action="store_true", help="only the 10,000-frame timing")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["deepstorm", "thunderstorm", "speed"], help="stages to skip")
    parser.add_argument("--record", action="store_true",
                        help="also add what this run measured to results/smlm-*.json "
                             "(then run benchmarks/results_page.py)")
    args = parser.parse_args()
    if args.record and args.fast:
        parser.error("--record keeps full runs only, not --fast smoke runs")
    fresh: set[str] = set()  # the parts measured by this invocation (results.json keeps more)
    steps = args.steps or (100 if args.fast else 800)
    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    loc = train("localize", args.out / "models" / "localize", SIM,
                [0.25, 0.5, 1.0, 2.0, 4.0, 6.0], steps, 300 if args.fast else 1200,
                {"depth": 3, "base_channels": 12})
    if not args.speed:
        # Detection threshold chosen on freshly simulated validation movies (seeds 50, 51),
        # never on the test movies.
        val = [simulate(SIM.model_copy(update={"density": d, "frames": f, "seed": 50 + k}))
               for k, (d, f) in enumerate(((0.5, 60), (3.0, 20)))]
        movie = np.concatenate([v.movie for v in val])
        truth = val[1].truth.copy()
        truth["frame"] += len(val[0].movie)
        truth = np.concatenate([val[0].truth, truth])
        results["threshold_validation"] = {
            str(k): v for k, v in LocalizeModule.choose_threshold(loc, movie, truth).items()}
        results["threshold"] = loc.config.method.threshold
        print("validation Jaccard per threshold", results["threshold_validation"], flush=True)
        results["densities"] = density_sweep(loc, (0.1, 2.0, 5.0) if args.fast else DENSITIES,
                                             300 if args.fast else 1500)
        fresh.add("densities")
        results_file.write_text(json.dumps(results, indent=1))
        if "thunderstorm" not in args.skip and TS_DATA.is_dir():
            results["thunderstorm"] = thunderstorm_eval(loc)
            fresh.add("thunderstorm")
            results_file.write_text(json.dumps(results, indent=1))
        if "deepstorm" not in args.skip:
            ds = train("deepstorm", args.out / "models" / "deepstorm", SIM, [1.0, 3.0, 6.0],
                       max(steps // 3, 30), 64 if args.fast else 160,
                       {"depth": 2, "base_channels": 16, "factor": 8})
            results["deepstorm"] = deepstorm_eval(ds, loc, args.fast)
            fresh.add("deepstorm")
            results_file.write_text(json.dumps(results, indent=1))
    if "speed" not in args.skip:
        if "threshold" in results:  # the one chosen on validation by an earlier run
            loc.config.method.threshold = results["threshold"]
        results["speed"] = speed(loc, 1000 if args.fast else 10_000)
        fresh.add("speed")
    results_file.write_text(json.dumps(results, indent=1))
    (args.out / "results.md").write_text(markdown(results))
    print(markdown(results))
    if args.record:
        for path in record(results, fresh, args.out.name):
            print(f"recorded in {path}")


if __name__ == "__main__":
    main()
