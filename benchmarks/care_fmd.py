"""Benchmark: CARE denoising on real confocal data (FMD, Confocal_BPAE_B).

Not part of the test suite: pytest never collects this file (it lives outside
``tests/``), it needs the external data set and it trains for minutes.

Data
    FMD "Confocal_BPAE_B" (Zhang et al., CVPR 2019), read from ``--data``
    (default ``../shared/data/fmd-confocal-bpae-b`` relative to the repository
    root; see its PROVENANCE.md). Fields of view (FOV) 1-18 and 20, each with 8
    noisy 512x512 8-bit frames ``raw/<fov>/*.png`` and the 50-frame average
    ``gt/<fov>/avg50.png`` as ground truth. The data are never copied into the
    repository: the paired TIFFs this script writes go to
    ``bench_out/care_fmd/data/`` (ignored by git).

Split (by field of view, fixed here; never tuned on the test fields)
    train FOVs 1-12 (8 noisy frames each, every frame paired with its FOV's
    avg50 = 96 pairs). Validation is microsight's automatic split inside
    ``train`` (10% of the training *images*, i.e. frames, chosen by seed).
    test FOVs 13-18 and 20 (7 fields), all 8 frames each = 56 noisy inputs,
    each scored against its FOV's avg50. The Gaussian sigma and the
    non-local-means strength are chosen on the training FOVs only.

Metrics
    raw PSNR/SSIM with data_range=255 (prediction vs avg50 as is, 8-bit scale),
    and the CARE protocol (target percentile-normalized, prediction
    range-matched by least squares) as computed by ``microsight.evaluate``.

Run (from the repository root). The default 1000 steps take about 10 minutes of
training on an idle 2-core CPU (estimated from the ~36 patches/s of the one epoch that
ran without other load); the recorded run took 26 minutes because other processes
shared the 2 cores (the results record the load average)::

    python benchmarks/care_fmd.py                # full run -> bench_out/care_fmd/
    python benchmarks/care_fmd.py --fast         # ~1-minute smoke run -> bench_out/care_fmd_fast/

Outputs: a markdown table on stdout, ``results.json``, ``results.md`` and the
evaluation report ``report.html`` in the output folder, plus the model bundle
in ``<out>/model``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
import torch
from scipy import ndimage
from skimage.io import imread
from skimage.restoration import denoise_nl_means, estimate_sigma

from microsight import evaluate, load_model, predict, train
from microsight.metrics import psnr, restoration_metrics, ssim

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import bootstrap_ci, command_line, write_result

REPO = Path(__file__).resolve().parent.parent
TRAIN_FOVS = list(range(1, 13))
TEST_FOVS = [13, 14, 15, 16, 17, 18, 20]
PEAK = 255.0
GAUSS_SIGMAS = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0]
NLM_H_FACTORS = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
NLM_KW = {"patch_size": 5, "patch_distance": 6, "fast_mode": True}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=REPO.parent / "shared/data/fmd-confocal-bpae-b",
                   help="FMD Confocal_BPAE_B folder (raw/, gt/)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default bench_out/care_fmd, or bench_out/care_fmd_fast "
                        "with --fast)")
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps (default 1000; 30 with --fast); rounded up to whole "
                        "epochs of min(100, steps) steps")
    p.add_argument("--fast", action="store_true", help="~1-minute smoke run")
    p.add_argument("--lr", type=float, default=1e-3, help="initial learning rate (cosine)")
    p.add_argument("--patch", type=int, default=64, help="square patch size")
    p.add_argument("--batch", type=int, default=16, help="patches per step")
    p.add_argument("--depth", type=int, default=2, help="U-Net depth")
    p.add_argument("--base-channels", type=int, default=32, help="U-Net features at level 1")
    p.add_argument("--test-frames", type=int, default=8,
                   help="noisy frames per test FOV used as test inputs (first N of 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--record", action="store_true",
                   help="also add this run's rows to results/denoising-fmd.json "
                        "(then run benchmarks/results_page.py)")
    args = p.parse_args()
    if args.record and args.fast:
        p.error("--record keeps full runs only, not --fast smoke runs")
    return args


# --- data ------------------------------------------------------------------------------
def fov_frames(data: Path, fov: int) -> list[Path]:
    frames = sorted((data / "raw" / str(fov)).glob("*.png"))
    if not frames:
        sys.exit(f"no frames in {data / 'raw' / str(fov)}")
    return frames


def read_gray(path: Path) -> np.ndarray:
    img = imread(path)
    if img.ndim != 2:
        sys.exit(f"{path} is not a single-channel image (shape {img.shape})")
    return img


def write_pairs(data: Path, fovs: list[int], n_frames: int, folder: Path) -> list[dict]:
    """Write ``low/fovNN_fK.tif`` (noisy frame) and ``high/fovNN_fK.tif`` (avg50)."""
    (folder / "low").mkdir(parents=True)
    (folder / "high").mkdir(parents=True)
    items = []
    for fov in fovs:
        gt = read_gray(data / "gt" / str(fov) / "avg50.png")
        for k, frame in enumerate(fov_frames(data, fov)[:n_frames]):
            name = f"fov{fov:02d}_f{k}.tif"
            noisy = read_gray(frame)
            tifffile.imwrite(folder / "low" / name, noisy)
            tifffile.imwrite(folder / "high" / name, gt)
            items.append({"name": name, "fov": fov, "frame": k, "source": frame.name,
                          "low": noisy.astype(np.float32), "high": gt.astype(np.float32)})
    return items


# --- classical baselines ---------------------------------------------------------------
def gaussian(img: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(img.astype(np.float32), sigma)


def nlm(img: np.ndarray, h_factor: float) -> np.ndarray:
    x = img.astype(np.float64)
    sigma = float(estimate_sigma(x))
    return denoise_nl_means(x, h=h_factor * sigma, sigma=sigma, **NLM_KW).astype(np.float32)


def mean_raw_psnr(items: list[dict], fn) -> float:
    return float(np.mean([psnr(fn(it["low"]), it["high"], data_range=PEAK) for it in items]))


def tune_on_training(train_items: list[dict], nlm_items: list[dict]) -> dict:
    """Pick the Gaussian sigma and NLM strength by mean raw PSNR on TRAINING fields only."""
    g_scores = {s: mean_raw_psnr(train_items, lambda x, s=s: gaussian(x, s))
                for s in GAUSS_SIGMAS}
    n_scores = {h: mean_raw_psnr(nlm_items, lambda x, h=h: nlm(x, h)) for h in NLM_H_FACTORS}
    return {"gaussian_sigma": max(g_scores, key=g_scores.get),
            "gaussian_train_psnr": {str(k): round(v, 3) for k, v in g_scores.items()},
            "nlm_h_factor": max(n_scores, key=n_scores.get),
            "nlm_train_psnr": {str(k): round(v, 3) for k, v in n_scores.items()},
            "nlm_tuning_images": len(nlm_items)}


# --- scoring ---------------------------------------------------------------------------
def score(pred: np.ndarray, gt: np.ndarray) -> dict:
    care = restoration_metrics(pred, gt, range_match=True)
    return {"psnr255": psnr(pred, gt, data_range=PEAK), "ssim255": ssim(pred, gt, data_range=PEAK),
            "care_psnr": care["psnr"], "care_ssim": care["ssim"]}


def summarize(rows: list[dict], methods: list[str]) -> list[dict]:
    out = []
    base = np.array([r["psnr255"] for r in rows if r["method"] == "noisy input"])
    for m in methods:
        sel = [r for r in rows if r["method"] == m]
        p = np.array([r["psnr255"] for r in sel])
        fov_gain = {}
        for fov in sorted({r["fov"] for r in sel}):
            a = np.mean([r["psnr255"] for r in sel if r["fov"] == fov])
            b = np.mean([r["psnr255"] for r in rows
                         if r["method"] == "noisy input" and r["fov"] == fov])
            fov_gain[fov] = round(float(a - b), 2)
        out.append({"method": m, "images": len(sel),
                    "psnr255": float(p.mean()),
                    "ssim255": float(np.mean([r["ssim255"] for r in sel])),
                    "care_psnr": float(np.mean([r["care_psnr"] for r in sel])),
                    "care_ssim": float(np.mean([r["care_ssim"] for r in sel])),
                    "gain_vs_input_db": float(p.mean() - base.mean()),
                    "min_fov_gain_db": min(fov_gain.values()),
                    "gain_per_fov_db": fov_gain})
    return out


def record(test: list[dict], rows: list[dict], run: str, *, val: dict, measured: dict,
           train_s: dict) -> Path:
    """Add a run's rows to ``results/denoising-fmd.json`` (the table of RESULTS.md).

    Parameters
    ----------
    test : list of dict
        :func:`summarize` of the test images.
    rows : list of dict
        Per-image scores (for the bootstrap interval of the mean test PSNR).
    run : str
        Name of the run's folder, appended to each model name.
    val, measured, train_s : dict
        By method label: validation numbers, speeds, training seconds (networks only).
    """
    out = []
    for t in test:
        m = t["method"]
        kind = ("reference" if m == "noisy input" else "peer" if m.startswith("CAREamics")
                else "microsight" if m in measured else "baseline")
        row = {"model": f"{m} ({run})", "kind": kind,
               "command": command_line(sys.argv[0], sys.argv[1:]), "recipe": None,
               "test": {"PSNR": t["psnr255"], "SSIM": t["ssim255"],
                        "gain dB": t["gain_vs_input_db"]},
               "val": val.get(m, {}), "measured": measured.get(m, {}),
               "train_s": train_s.get(m)}
        interval = bootstrap_ci([r["psnr255"] for r in rows if r["method"] == m])
        if interval:
            row["ci95"] = {"test.PSNR": interval}
        out.append(row)
    return write_result("denoising-fmd", out)


def markdown(res: dict) -> str:
    c, v, t = res["config"], res["validation"], res["timing"]
    lines = [
        "# CARE on FMD Confocal_BPAE_B (held-out fields of view)",
        "",
        f"Split: train FOVs {res['split']['train_fovs']} ({res['split']['train_pairs']} "
        f"frame/avg50 pairs; validation = microsight's automatic split of those images: "
        f"{res['split']['validation']}); test FOVs {res['split']['test_fovs']} "
        f"({res['split']['test_images']} noisy frames, first {c['test_frames']} per FOV). "
        "Nothing was tuned on test fields.",
        "",
        "## Test (held-out FOVs)",
        "",
        "| method | raw PSNR (dB, range 255) | raw SSIM (range 255) | gain vs input (dB) "
        "| worst-FOV gain (dB) | CARE-protocol PSNR (dB) | CARE-protocol SSIM |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["test"]:
        lines.append(f"| {r['method']} | {r['psnr255']:.2f} | {r['ssim255']:.4f} | "
                     f"{r['gain_vs_input_db']:+.2f} | {r['min_fov_gain_db']:+.2f} | "
                     f"{r['care_psnr']:.2f} | {r['care_ssim']:.4f} |")
    lines += ["", "`microsight.evaluate` summary (CARE protocol; same test images):", "",
              "| source | PSNR | SSIM | NRMSE |", "|---|---:|---:|---:|"]
    for r in res["evaluate_summary"]:
        lines.append(f"| {r['source']} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['nrmse']:.4f} |")
    target = "met" if res["target_met"] else "NOT met"
    lines += [
        "", f"Target (CARE >= +6 dB raw PSNR over the noisy input on test FOVs): **{target}** "
        f"({res['test'][-1]['gain_vs_input_db']:+.2f} dB).", "",
        "## Validation (training FOVs, held-out frames)", "",
        f"- best epoch {v['best_epoch']}, best val loss (MSE, normalized) "
        f"{v['best_val_loss']:.3g}, "
        f"best val PSNR {v['best_val_psnr']:.2f} dB (normalized target, range 1) "
        f"= {v['best_val_psnr_range255']:.2f} dB at range 255 (converted with the target "
        "normalization)",
        "- caveat: validation holds out whole frames, not whole FOVs, so validation frames share "
        "their FOV (and avg50) with training frames; it is optimistic.",
        "",
        "## Config and timing", "",
        f"- CARE U-Net depth {c['depth']}, base channels {c['base_channels']}, patch "
        f"{c['patch']}x{c['patch']}, batch {c['batch']}, lr {c['lr']} (cosine), "
        f"{c['steps']} steps max; epochs run {v['epochs_run']} "
        f"(stopped early: {v['stopped_early']})",
        f"- Gaussian sigma {res['tuning']['gaussian_sigma']}, NLM h = "
        f"{res['tuning']['nlm_h_factor']} x estimated sigma ({NLM_KW}); both chosen on "
        "training FOVs",
        f"- machine: {t['machine']}; load average (1/5/15 min) "
        f"{'/'.join(f'{v:.1f}' for v in t['load_average_1_5_15min_before_training'])} before "
        f"and {'/'.join(f'{v:.1f}' for v in t['load_average_1_5_15min_after_training'])} "
        "after training (other processes shared the 2 cores if well above 2)",
        f"- training wall time {t['train_seconds']:.0f} s; throughput "
        f"{t['patches_per_second_mean']:.0f} patches/s (mean of history rows)",
        f"- prediction: {t['predict_mpx_per_s']:.3f} Mpx/s over {t['predict_images']} "
        f"512x512 images ({t['predict_seconds']:.1f} s, after one warm-up call)",
        f"- evaluate() wall time {t['evaluate_seconds']:.1f} s",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    args = parse_args()
    out = args.out or REPO / "bench_out" / ("care_fmd_fast" if args.fast else "care_fmd")
    out = out.resolve()
    steps = args.steps or (30 if args.fast else 1000)
    # Whole epochs only: microsight validates at epoch ends, and a final partial epoch is never
    # validated (with steps < steps_per_epoch training even crashes in EarlyStopping).
    steps_per_epoch = min(100, steps)
    if steps % steps_per_epoch:
        steps += steps_per_epoch - steps % steps_per_epoch
        print(f"rounding --steps up to {steps}, a multiple of {steps_per_epoch} steps per epoch")
    test_frames = 1 if args.fast and args.test_frames == 8 else args.test_frames
    data = args.data.resolve()
    if not (data / "raw").is_dir() or not (data / "gt").is_dir():
        sys.exit(f"data folder {data} has no raw/ and gt/; pass --data")
    t_start = time.perf_counter()

    work = out / "data"
    for sub in (work, out / "model"):
        if sub.exists():
            shutil.rmtree(sub)
    out.mkdir(parents=True, exist_ok=True)
    train_items = write_pairs(data, TRAIN_FOVS, 8, work / "train")
    test_items = write_pairs(data, TEST_FOVS, test_frames, work / "test")
    print(f"data: {len(train_items)} training pairs (FOVs {TRAIN_FOVS}), {len(test_items)} test "
          f"inputs (FOVs {TEST_FOVS}, first {test_frames} frame(s) each)", flush=True)

    # Classical baselines: parameters from training FOVs only.
    nlm_items = [it for it in train_items if it["frame"] == 0]
    if args.fast:
        nlm_items = nlm_items[:3]
    t0 = time.perf_counter()
    tuning = tune_on_training(train_items, nlm_items)
    print(f"tuned on training FOVs in {time.perf_counter() - t0:.0f} s: gaussian sigma "
          f"{tuning['gaussian_sigma']}, NLM h factor {tuning['nlm_h_factor']}", flush=True)

    config = {
        "name": "care-fmd-confocal-bpae-b",
        "method": {"method": "care", "depth": args.depth, "base_channels": args.base_channels},
        "data": {"patch_size": [args.patch, args.patch], "batch_size": args.batch},
        "training": {"learning_rate": args.lr, "seed": args.seed,
                     "steps_per_epoch": steps_per_epoch},
    }
    print(f"training CARE for up to {steps} steps ...", flush=True)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    model = train("care", work / "train/low", work / "train/high", out=out / "model",
                  config=config, steps=steps, progress=False)
    train_seconds = time.perf_counter() - t0
    load_after = os.getloadavg()
    model = load_model(out / "model")
    hist = model.history
    pps = [r["patches_per_second"] for r in hist if r.get("patches_per_second")]
    print(f"trained in {train_seconds:.0f} s, {len(hist)} epochs, "
          f"{np.mean(pps):.0f} patches/s, best val PSNR {model.qc['best_val_psnr']:.2f}",
          flush=True)

    # Prediction timing (one warm-up call, not timed).
    low_paths = [work / "test/low" / it["name"] for it in test_items]
    predict(model, low_paths[0])
    preds = {}
    t0 = time.perf_counter()
    for path in low_paths:
        preds[path.name] = np.asarray(predict(model, path), np.float32)
    predict_seconds = time.perf_counter() - t0
    mpx = sum(p.size for p in preds.values()) / 1e6

    t0 = time.perf_counter()
    ev = evaluate(model, work / "test/low", work / "test/high", report=out / "report.html")
    evaluate_seconds = time.perf_counter() - t0

    methods = ["noisy input", f"gaussian (sigma={tuning['gaussian_sigma']})",
               f"NLM (h={tuning['nlm_h_factor']}*sigma)", "CARE"]
    rows = []
    for it in test_items:
        outputs = {methods[0]: it["low"],
                   methods[1]: gaussian(it["low"], tuning["gaussian_sigma"]),
                   methods[2]: nlm(it["low"], tuning["nlm_h_factor"]),
                   methods[3]: preds[it["name"]]}
        for m, pred in outputs.items():
            rows.append({"image": it["name"], "fov": it["fov"], "method": m,
                         **score(pred, it["high"])})
    test = summarize(rows, methods)

    tnorm = model.normalization["target"]
    scale = float(tnorm["high"][0] - tnorm["low"][0])
    qc = model.qc
    res = {
        "benchmark": "CARE on FMD Confocal_BPAE_B",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "data": str(data),
        "split": {"train_fovs": TRAIN_FOVS, "test_fovs": TEST_FOVS,
                  "train_pairs": len(train_items), "test_images": len(test_items),
                  "validation": qc.get("data", {}).get("split")},
        "config": {"steps": steps, "lr": args.lr, "patch": args.patch, "batch": args.batch,
                   "depth": args.depth, "base_channels": args.base_channels,
                   "test_frames": test_frames, "seed": args.seed, "fast": args.fast},
        "tuning": tuning,
        "validation": {"best_epoch": qc.get("best_epoch"),
                       "best_val_loss": qc.get("best_val_loss"),
                       "best_val_psnr": qc.get("best_val_psnr"),
                       "best_val_psnr_range255": qc.get("best_val_psnr")
                       + 20 * np.log10(PEAK / scale),
                       "target_normalization": tnorm,
                       "epochs_run": qc.get("epochs_run"),
                       "stopped_early": qc.get("stopped_early"),
                       "history": hist},
        "test": test,
        "evaluate_summary": [{k: v for k, v in r.items()} for r in ev.summary],
        "target_met": test[-1]["gain_vs_input_db"] >= 6.0,
        "timing": {"machine": f"{platform.machine()} CPU, {torch.get_num_threads()} torch "
                              f"threads (2-core CPU, no GPU)" if not torch.cuda.is_available()
                   else torch.cuda.get_device_name(0),
                   "load_average_1_5_15min_before_training": load_before,
                   "load_average_1_5_15min_after_training": load_after,
                   "train_seconds": train_seconds,
                   "patches_per_second_mean": float(np.mean(pps)),
                   "patches_per_second_per_epoch": pps,
                   "predict_seconds": predict_seconds, "predict_images": len(low_paths),
                   "predict_mpx_per_s": mpx / predict_seconds,
                   "evaluate_seconds": evaluate_seconds,
                   "total_seconds": time.perf_counter() - t_start},
        "per_image": rows,
    }
    (out / "results.json").write_text(json.dumps(res, indent=2, default=float))
    md = markdown(res)
    (out / "results.md").write_text(md)
    print(md)
    print(f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'report.html'}")
    if args.record:
        steps_done = int(hist[-1]["step"]) if hist else 0
        path = record(test, rows, out.name,
                      val={"CARE": {"PSNR": res["validation"]["best_val_psnr_range255"]}},
                      measured={"CARE": {"train px/s": steps_done * args.batch / train_seconds,
                                         "predict Mpx/s": mpx / predict_seconds}},
                      train_s={"CARE": train_seconds})
        print(f"recorded in {path}")


if __name__ == "__main__":
    main()
