"""Benchmark: denoising methods on real confocal data (FMD Confocal_BPAE_B), with CAREamics.

Not part of the test suite: pytest never collects this file (it lives outside ``tests/``),
it needs the external data set, a second virtual environment with CAREamics, and it
trains five networks for tens of minutes.

Data
    FMD "Confocal_BPAE_B" (Zhang et al., CVPR 2019), read from ``--data`` (default
    ``../shared/data/fmd-confocal-bpae-b`` relative to the repository root; see its
    PROVENANCE.md). Fields of view (FOV) 1-18 and 20, each with 8 noisy 512x512 8-bit
    frames ``raw/<fov>/*.png`` and the 50-frame average ``gt/<fov>/avg50.png``. The data
    are never copied into the repository: the TIFFs written for training go to
    ``<out>/data/`` (under ``bench_out/``, ignored by git).

Split (the same as ``benchmarks/care_fmd.py``, whose data helpers are imported)
    train FOVs 1-12, test FOVs 13-18 and 20 (7 fields x 8 noisy frames = 56 test inputs,
    each scored against its FOV's avg50). No parameter is tuned on test fields.

    - microsight ``n2v``: the 96 noisy training frames alone (no targets).
    - microsight ``n2n``: pairs of noisy frames of the same FOV, frame i -> frame i+1
      and i+1 -> i (i = 0..6): 14 pairs per FOV, 168 pairs.
    - microsight ``care``: the 96 noisy frames -> their FOV's avg50.
    - CAREamics 0.3.5 N2V (96 noisy frames) and CARE (96 noisy -> avg50 pairs), trained in
      their own venv by ``benchmarks/careamics_runner.py``.
    microsight holds out 10% of the training *images* for validation (whole frames, by
    seed); CAREamics takes its 8 validation patches from the training images.
    - classical baselines: Gaussian filter and non-local means with sigma / strength
      chosen on the training FOVs (``care_fmd.tune_on_training``), microsight's default
      non-local means and Richardson-Lucy (``microsight.families.restoration.module``).

Same budget for every network: ``--steps`` optimizer steps (default 400) of ``--batch``
16 patches of ``--patch`` 64x64, as ``steps / steps_per_epoch`` epochs of
``steps_per_epoch`` (default 100) steps; CAREamics gets ``num_epochs = steps /
steps_per_epoch`` and ``num_steps = steps_per_epoch`` (Lightning's
``limit_train_batches``; one CAREamics epoch of these images holds ~380 batches, so
every epoch is cut at exactly ``steps_per_epoch``); both runners report the optimizer
steps actually taken. Both use U-Nets of depth 2 with 32 initial features and Adam at
lr 1e-3 (CAREamics' default; microsight with cosine decay, CAREamics with its default
ReduceLROnPlateau). Prediction: tiles of 256 with overlap 48 for every network.

Metrics
    PSNR and SSIM of each prediction vs avg50 with data_range=255
    (``microsight.metrics.psnr/ssim``), mean over the test images; gain over the noisy
    input; the CARE-protocol numbers (percentile-normalized target, range-matched
    prediction) as extra columns in results.json. Throughput: training patches/s =
    steps * batch / wall seconds of the training call (data loading and validation
    included, for both tools) and prediction Mpx/s over the test inputs (after one
    untimed warm-up call).

Run (from the repository root, with microsight's venv active)::

    bash benchmarks/setup_careamics_venv.sh       # once: bench_out/careamics-venv
    python benchmarks/restoration_fmd.py          # -> bench_out/restoration_fmd/
    python benchmarks/restoration_fmd.py --fast   # ~20-step smoke run -> .../restoration_fmd/fast/

The default run (5 networks x 400 steps, 56 test images) took 65 min on a 2-core CPU
shared with other jobs (load average 4-13); the networks train at ~100 patches/s on an
idle 2-core CPU, which puts it at roughly 15 min there. ``--fast`` takes 1-2 min.

Outputs: a markdown table on stdout, ``results.md`` and ``results.json`` in the output
folder, the microsight bundles in ``<out>/models/`` and CAREamics' predictions and
timings in ``<out>/careamics_<algo>/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from care_fmd import (  # benchmarks/ is on sys.path: reuse the CARE benchmark's split
    PEAK,
    TEST_FOVS,
    TRAIN_FOVS,
    fov_frames,
    nlm,
    read_gray,
    record,
    score,
    summarize,
    tune_on_training,
    write_pairs,
)

from microsight import predict, train
from microsight.families.restoration.module import (
    gaussian_baseline,
    nlm_baseline,
    richardson_lucy_baseline,
)

REPO = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "careamics_runner.py"
NETWORKS = ["n2v", "n2n", "care"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=REPO.parent / "shared/data/fmd-confocal-bpae-b",
                   help="FMD Confocal_BPAE_B folder (raw/, gt/)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default bench_out/restoration_fmd, or "
                        "bench_out/restoration_fmd/fast with --fast)")
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps per network (default 400; 20 with --fast); rounded up "
                        "to whole epochs of --steps-per-epoch")
    p.add_argument("--steps-per-epoch", type=int, default=100,
                   help="steps per epoch (validation after each), capped at --steps")
    p.add_argument("--fast", action="store_true", help="~20-step smoke run, 1 frame per test FOV")
    p.add_argument("--lr", type=float, default=1e-3, help="microsight initial learning rate")
    p.add_argument("--patch", type=int, default=64, help="square patch size")
    p.add_argument("--batch", type=int, default=16, help="patches per step")
    p.add_argument("--depth", type=int, default=2, help="microsight U-Net depth")
    p.add_argument("--base-channels", type=int, default=32, help="microsight U-Net features")
    p.add_argument("--tile", type=int, default=256, help="prediction tile (both tools)")
    p.add_argument("--overlap", type=int, default=48, help="prediction tile overlap (both tools)")
    p.add_argument("--test-frames", type=int, default=8,
                   help="noisy frames per test FOV used as test inputs (first N of 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--careamics-venv", type=Path,
                   default=REPO / "bench_out" / "careamics-venv",
                   help="venv made by benchmarks/setup_careamics_venv.sh")
    p.add_argument("--skip-careamics", action="store_true", help="microsight and baselines only")
    p.add_argument("--record", action="store_true",
                   help="also add this run's rows to results/denoising-fmd.json "
                        "(then run benchmarks/results_page.py)")
    args = p.parse_args()
    if args.record and args.fast:
        p.error("--record keeps full runs only, not --fast smoke runs")
    return args


# --- data ------------------------------------------------------------------------------
def write_n2n_pairs(data: Path, fovs: list[int], folder: Path) -> int:
    """Noise2Noise pairs: ``low/`` frame i and ``high/`` frame i+1 of one FOV, both ways."""
    (folder / "low").mkdir(parents=True)
    (folder / "high").mkdir(parents=True)
    n = 0
    for fov in fovs:
        frames = [read_gray(f) for f in fov_frames(data, fov)]
        for i in range(len(frames) - 1):
            for a, b in ((i, i + 1), (i + 1, i)):
                name = f"fov{fov:02d}_f{a}to{b}.tif"
                tifffile.imwrite(folder / "low" / name, frames[a])
                tifffile.imwrite(folder / "high" / name, frames[b])
                n += 1
    return n


# --- networks --------------------------------------------------------------------------
def predict_all(fn, items: list[dict]) -> tuple[dict[str, np.ndarray], float]:
    """Run ``fn`` on every test input after one untimed warm-up; return outputs, seconds."""
    fn(items[0]["low"])
    preds = {}
    t0 = time.perf_counter()
    for it in items:
        preds[it["name"]] = np.asarray(fn(it["low"]), np.float32)
    return preds, time.perf_counter() - t0


def run_microsight(method: str, inp: Path, tgt: Path | None, out: Path, args, steps: int,
                   spe: int, test_items: list[dict]) -> dict:
    config = {
        "name": f"{method}-fmd-confocal-bpae-b",
        "method": {"method": method, "depth": args.depth, "base_channels": args.base_channels},
        "data": {"patch_size": [args.patch, args.patch], "batch_size": args.batch},
        "training": {"learning_rate": args.lr, "seed": args.seed, "steps_per_epoch": spe},
    }
    print(f"[microsight {method}] training {steps} steps on {inp.parent.name} ...", flush=True)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    model = train(method, inp, tgt, out=out, config=config, steps=steps, progress=False)
    train_seconds = time.perf_counter() - t0
    load_after = os.getloadavg()
    hist = model.history
    steps_done = int(hist[-1]["step"]) if hist else 0
    loop_seconds = sum(float(r["train_seconds"]) for r in hist)
    preds, pred_s = predict_all(
        lambda x: predict(model, x, tile=args.tile, overlap=args.overlap), test_items)
    # microsight's default tiling (one 512x512 tile per image on CPU), on a few images.
    few = test_items[:min(8, len(test_items))]
    _, pred_default_s = predict_all(lambda x: predict(model, x), few)
    mpx = sum(p.size for p in preds.values()) / 1e6
    timing = {
        "optimizer_steps": steps_done, "epochs_run": len(hist),
        "train_seconds": train_seconds,
        "patches_per_second": steps_done * args.batch / train_seconds,
        "loop_seconds": loop_seconds,
        "loop_patches_per_second": steps_done * args.batch / loop_seconds,
        "patches_per_second_history": [r.get("patches_per_second") for r in hist],
        "predict_seconds": pred_s, "predict_images": len(preds),
        "predict_mpx_per_s": mpx / pred_s,
        "predict_mpx_per_s_default_tiling": sum(it["low"].size for it in few) / 1e6
        / pred_default_s,
        "load_average_before_training": load_before, "load_average_after_training": load_after,
        "best_epoch": model.qc.get("best_epoch"), "best_val_psnr": model.qc.get("best_val_psnr"),
        "split": model.qc.get("data", {}).get("split"),
    }
    print(f"[microsight {method}] {steps_done} steps in {train_seconds:.0f} s "
          f"({timing['patches_per_second']:.1f} patches/s); predict "
          f"{timing['predict_mpx_per_s']:.3f} Mpx/s", flush=True)
    return {"preds": preds, "timing": timing}


def run_careamics(algorithm: str, inputs: list[Path], targets: list[Path] | None, out: Path,
                  args, steps: int, spe: int, test_paths: list[Path],
                  test_items: list[dict]) -> dict:
    python = args.careamics_venv / "bin" / "python"
    if not python.exists():
        sys.exit(f"no CAREamics venv at {args.careamics_venv}: run "
                 "bash benchmarks/setup_careamics_venv.sh (or pass --skip-careamics)")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    spec = {"algorithm": algorithm, "train_inputs": [str(p) for p in inputs],
            "train_targets": [str(p) for p in targets] if targets else None,
            "test_inputs": [str(p) for p in test_paths], "out": str(out),
            "epochs": steps // spe, "steps_per_epoch": spe, "patch": args.patch,
            "batch": args.batch, "seed": args.seed, "tile": args.tile,
            "overlap": args.overlap}
    (out / "spec.json").write_text(json.dumps(spec, indent=2))
    print(f"[CAREamics {algorithm}] training {steps} steps ({steps // spe} epochs x {spe}) ...",
          flush=True)
    with open(out / "runner.log", "w") as log:
        rc = subprocess.run([str(python), str(RUNNER), str(out / "spec.json")],
                            stdout=log, stderr=subprocess.STDOUT).returncode
    if rc:
        sys.exit(f"CAREamics runner failed (exit {rc}); see {out / 'runner.log'}")
    timing = json.loads((out / "timing.json").read_text())
    timing.pop("config", None)
    preds = {it["name"]: np.load(out / "pred" / (Path(it["name"]).stem + ".npy"))
             for it in test_items}
    print(f"[CAREamics {algorithm}] {timing['optimizer_steps']} steps in "
          f"{timing['train_seconds']:.0f} s ({timing['patches_per_second']:.1f} patches/s); "
          f"predict {timing['predict_mpx_per_s']:.3f} Mpx/s", flush=True)
    return {"preds": preds, "timing": timing}


# --- report ----------------------------------------------------------------------------
def targets_check(test: dict[str, dict], timing: dict[str, dict]) -> list[dict]:
    def p(m):
        return test[m]["psnr255"] if m in test else None

    out = []

    def add(name, ok, detail):
        out.append({"target": name, "met": ok, "detail": detail})

    g = test["microsight N2V"]["gain_vs_input_db"]
    add("N2V >= +5 dB over the noisy input", g >= 5.0, f"{g:+.2f} dB")
    d = p("microsight N2N") - p("microsight CARE")
    add("N2N within 1 dB of CARE", d >= -1.0, f"N2N - CARE = {d:+.2f} dB")
    for ms, ca in (("microsight N2V", "CAREamics N2V"), ("microsight CARE", "CAREamics CARE")):
        if ca not in test:
            continue
        d = p(ms) - p(ca)
        add(f"{ms} PSNR >= {ca} (same steps)", d >= 0, f"{d:+.2f} dB")
        r = timing[ms]["patches_per_second"] / timing[ca]["patches_per_second"]
        loop = timing[ms]["loop_patches_per_second"] / timing[ca]["loop_patches_per_second"]
        add(f"{ms} training patches/s >= 1.5x {ca}", r >= 1.5,
            f"{r:.2f}x over the whole train call; {loop:.2f}x in the training loop alone")
        r = timing[ms]["predict_mpx_per_s"] / timing[ca]["predict_mpx_per_s"]
        add(f"{ms} prediction Mpx/s >= 1.5x {ca}", r >= 1.5, f"{r:.2f}x")
    return out


def markdown(res: dict) -> str:
    c, s = res["config"], res["split"]
    lines = [
        "# Denoising on FMD Confocal_BPAE_B: microsight vs CAREamics vs classical",
        "",
        f"Split (same as benchmarks/care_fmd.py): train FOVs {s['train_fovs']}, test FOVs "
        f"{s['test_fovs']} ({s['test_images']} noisy frames, first {c['test_frames']} per "
        "FOV, scored vs their FOV's avg50). Training data: N2V = "
        f"{s['n2v_images']} noisy frames; N2N = {s['n2n_pairs']} frame i <-> i+1 pairs; "
        f"CARE = {s['care_pairs']} noisy/avg50 pairs. Nothing tuned on test fields.",
        "",
        f"Every network: {c['steps']} optimizer steps ({c['steps'] // c['steps_per_epoch']} "
        f"epochs x {c['steps_per_epoch']}), batch {c['batch']}, patch {c['patch']}x{c['patch']},"
        f" U-Net depth 2 / 32 features, Adam lr 1e-3; prediction tiles {c['tile']} / overlap "
        f"{c['overlap']}.",
        "",
        "| method | test PSNR (dB) | test SSIM | gain vs input (dB) | worst-FOV gain (dB) | "
        "steps | train s | train patches/s | loop patches/s | predict Mpx/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["test"]:
        t = res["timing"].get(r["method"])
        tcols = (f"{t['optimizer_steps']} | {t['train_seconds']:.0f} | "
                 f"{t['patches_per_second']:.1f} | {t['loop_patches_per_second']:.1f} | "
                 f"{t['predict_mpx_per_s']:.3f}" if t else "- | - | - | - | -")
        lines.append(f"| {r['method']} | {r['psnr255']:.2f} | {r['ssim255']:.4f} | "
                     f"{r['gain_vs_input_db']:+.2f} | {r['min_fov_gain_db']:+.2f} | {tcols} |")
    lines += ["", "PSNR/SSIM: data_range=255, prediction vs avg50 as is, mean over test images.",
              "", "## Targets (from the issue)", ""]
    for t in res["targets"]:
        lines.append(f"- {'MET' if t['met'] else 'MISSED'}: {t['target']} ({t['detail']})")
    m = res["machine"]
    lines += [
        "", "## Notes", "",
        f"- machine: {m['description']}; load average (1/5/15 min) at start "
        f"{'/'.join(f'{v:.1f}' for v in m['load_average_start'])}, at end "
        f"{'/'.join(f'{v:.1f}' for v in m['load_average_end'])}. The 2 cores were shared "
        "with other jobs, so throughput numbers are noisy; all networks ran one after "
        "another in the same run.",
        "- train patches/s = steps x batch / wall time of the training call (data loading, "
        "normalization, validation and checkpoints included, for both tools); loop patches/s "
        "= the same over the training steps alone (epoch start to validation start; "
        "microsight's history.csv, a Lightning callback in careamics_runner.py). microsight "
        "validates on whole held-out frames (10% of the images), CAREamics on 8 patches. "
        "Mpx/s over the test inputs with one untimed warm-up call (microsight: one predict() "
        "per image; CAREamics: one predict() call on all inputs).",
        "- microsight at its default tiling (one 512x512 tile on CPU): "
        + ", ".join(f"{k} {v['predict_mpx_per_s_default_tiling']:.3f} Mpx/s"
                    for k, v in res["timing"].items() if "predict_mpx_per_s_default_tiling" in v)
        + ".",
        f"- baselines: Gaussian sigma {res['tuning']['gaussian_sigma']} and NLM h = "
        f"{res['tuning']['nlm_h_factor']} x estimated sigma chosen on training FOVs; "
        "'microsight default' rows use data/baselines.py's fixed parameters "
        "(NLM h = 0.8 sigma; Richardson-Lucy with a sigma-1 Gaussian PSF, 10 iterations, "
        "a deconvolution, not a denoiser).",
        "- model selection: microsight keeps its best-validation-loss epoch; CAREamics "
        "predicts with its default checkpoint (last for N2V, best val_loss for CARE). "
        "CAREamics' CARE uses its default loss (MAE), microsight CARE/N2N use MSE.",
        f"- total wall time {res['total_seconds'] / 60:.1f} min.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    args = parse_args()
    out = args.out or REPO / "bench_out" / "restoration_fmd"
    if args.fast and args.out is None:
        out = out / "fast"
    out = out.resolve()
    steps = args.steps or (20 if args.fast else 400)
    spe = min(args.steps_per_epoch, steps)
    if steps % spe:
        steps += spe - steps % spe
        print(f"rounding --steps up to {steps}, a multiple of {spe} steps per epoch")
    test_frames = 1 if args.fast and args.test_frames == 8 else args.test_frames
    data = args.data.resolve()
    if not (data / "raw").is_dir() or not (data / "gt").is_dir():
        sys.exit(f"data folder {data} has no raw/ and gt/; pass --data")
    t_start = time.perf_counter()
    load_start = os.getloadavg()

    work = out / "data"
    for sub in (work, out / "models"):
        if sub.exists():
            shutil.rmtree(sub)
    out.mkdir(parents=True, exist_ok=True)
    care_items = write_pairs(data, TRAIN_FOVS, 8, work / "care_train")
    n2n_pairs = write_n2n_pairs(data, TRAIN_FOVS, work / "n2n_train")
    test_items = write_pairs(data, TEST_FOVS, test_frames, work / "test")
    test_paths = [work / "test/low" / it["name"] for it in test_items]
    print(f"data: {len(care_items)} noisy training frames / CARE pairs, {n2n_pairs} N2N pairs "
          f"(FOVs {TRAIN_FOVS}); {len(test_items)} test inputs (FOVs {TEST_FOVS})", flush=True)

    # Classical baselines: parameters from training FOVs only.
    nlm_items = [it for it in care_items if it["frame"] == 0]
    if args.fast:
        nlm_items = nlm_items[:3]
    t0 = time.perf_counter()
    tuning = tune_on_training(care_items, nlm_items)
    print(f"tuned on training FOVs in {time.perf_counter() - t0:.0f} s: gaussian sigma "
          f"{tuning['gaussian_sigma']}, NLM h factor {tuning['nlm_h_factor']}", flush=True)
    gauss = gaussian_baseline(tuning["gaussian_sigma"])
    nlm_default = nlm_baseline()
    rl = richardson_lucy_baseline()
    outputs: dict[str, dict[str, np.ndarray]] = {
        "noisy input": {it["name"]: it["low"] for it in test_items},
        f"Gaussian (sigma={tuning['gaussian_sigma']}, tuned)":
            {it["name"]: gauss(it["low"][None])[0] for it in test_items},
        f"NLM (h={tuning['nlm_h_factor']}*sigma, tuned)":
            {it["name"]: nlm(it["low"], tuning["nlm_h_factor"]) for it in test_items},
        "NLM (microsight default)":
            {it["name"]: nlm_default(it["low"][None].astype(np.float64))[0]
             for it in test_items},
        "Richardson-Lucy (microsight default)":
            {it["name"]: rl(it["low"][None])[0] for it in test_items},
    }
    timing: dict[str, dict] = {}

    # Interleaved, so that each microsight / CAREamics pair runs back to back (similar load).
    low = [work / "care_train/low" / it["name"] for it in care_items]
    high = [work / "care_train/high" / it["name"] for it in care_items]
    runs = [
        ("microsight N2V", "microsight", "n2v", work / "care_train/low", None),
        ("CAREamics N2V", "careamics", "n2v", low, None),
        ("microsight CARE", "microsight", "care", work / "care_train/low",
         work / "care_train/high"),
        ("CAREamics CARE", "careamics", "care", low, high),
        ("microsight N2N", "microsight", "n2n", work / "n2n_train/low",
         work / "n2n_train/high"),
    ]
    for label, tool, method, inp, tgt in runs:
        if tool == "microsight":
            r = run_microsight(method, inp, tgt, out / "models" / method, args, steps, spe,
                               test_items)
        elif args.skip_careamics:
            continue
        else:
            r = run_careamics(method, inp, tgt, out / f"careamics_{method}", args, steps, spe,
                              test_paths, test_items)
        outputs[label], timing[label] = r["preds"], r["timing"]
    order = [k for k in outputs if not k.startswith(("microsight", "CAREamics"))] + [
        k for k in ("microsight N2V", "microsight N2N", "microsight CARE", "CAREamics N2V",
                    "CAREamics CARE") if k in outputs]
    outputs = {k: outputs[k] for k in order}

    print("scoring ...", flush=True)
    rows = []
    for it in test_items:
        for m, preds in outputs.items():
            rows.append({"image": it["name"], "fov": it["fov"], "method": m,
                         **score(preds[it["name"]], it["high"])})
    test = summarize(rows, list(outputs))
    by_method = {r["method"]: r for r in test}

    res = {
        "benchmark": "denoising on FMD Confocal_BPAE_B: microsight vs CAREamics vs classical",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "data": str(data),
        "split": {"train_fovs": TRAIN_FOVS, "test_fovs": TEST_FOVS,
                  "n2v_images": len(care_items), "n2n_pairs": n2n_pairs,
                  "care_pairs": len(care_items), "test_images": len(test_items)},
        "config": {"steps": steps, "steps_per_epoch": spe, "lr": args.lr,
                   "patch": args.patch, "batch": args.batch, "depth": args.depth,
                   "base_channels": args.base_channels, "tile": args.tile,
                   "overlap": args.overlap, "test_frames": test_frames, "seed": args.seed,
                   "fast": args.fast, "data_range": PEAK},
        "tuning": tuning,
        "test": test,
        "timing": timing,
        "targets": targets_check(by_method, timing),
        "machine": {"description": f"{platform.machine()} CPU, {os.cpu_count()} cores, "
                                   f"{torch.get_num_threads()} torch threads, no GPU",
                    "load_average_start": load_start, "load_average_end": os.getloadavg()},
        "total_seconds": time.perf_counter() - t_start,
        "per_image": rows,
    }
    (out / "results.json").write_text(json.dumps(res, indent=2, default=float))
    md = markdown(res)
    (out / "results.md").write_text(md)
    print(md)
    print(f"wrote {out / 'results.json'}, {out / 'results.md'}")
    if args.record:
        path = record(test, rows, out.name, val={},
                      measured={k: {"train px/s": t["patches_per_second"],
                                    "predict Mpx/s": t["predict_mpx_per_s"]}
                                for k, t in timing.items()},
                      train_s={k: t.get("train_seconds") for k, t in timing.items()})
        print(f"recorded in {path}")


if __name__ == "__main__":
    main()
