"""Benchmark: can the user trust an output? Out-of-distribution warnings and uncertainty maps.

Not part of the test suite (it needs the external data sets and trains for minutes).

Part 1, out-of-distribution detection. Two models score in-distribution test images
against shifted ones with the descriptor every bundle stores (``engine/ood.py``); the
score needs no tuning (its threshold is calibrated on the training images at the end
of training), so the AUROC below is measured, never fitted.

- **CARE (probabilistic) on FMD Confocal_BPAE_B**, train FOVs 1-12 as
  ``care_fmd.py`` does; in-distribution = noisy frames of the held-out FOVs 13-18, 20.
- **A U-Net trained on DSB2018 fluorescence nuclei** (``appearance ==
  grayscale_darkbg``; split ``benchmarks/splits/dsb_detect_split.csv``): the
  ``unet-seg`` method (``--dsb-method detect``: the heat-map U-Net of point
  detection), trained on the train split with dataset normalization
  (per-image normalization would hide intensity-scale shifts from the model, and so
  make them harmless and invisible). In-distribution = validation and test split
  images, reported separately.

Shifted sets: DSB2018 brightfield and H&E images (grey = mean of RGB); the
in-distribution test images at other intensity scales (x0.1, x10); synthetic
rectangles and triangles (``skimage.draw.random_shapes``) with noise; for the FMD
model also DSB2018 fluorescence nuclei (another fluorescence data set, a "near"
shift, reported but not part of the acceptance).

Part 2, uncertainty. On the held-out FMD fields, the Spearman correlation between the
predicted uncertainty and the actual absolute error against the 50-frame average, for
the probabilistic CARE's own Laplace scale ("model"), the standard deviation over the
8 flips/rotations ("tta", same model) and the standard deviation over several CARE
models trained with different seeds ("ensemble"; each mode scored against its own
mean prediction), on the central 256 x 256 pixels of each held-out frame (``--crop``;
keeps the 8-fold TTA affordable on a CPU). Three granularities: per pixel (a fixed
random sample of pixels pooled over images), per 32x32 tile (means) and per image
(means). A single pixel's error is one random draw, so even a perfect uncertainty map
cannot reach a per-pixel Spearman of 1: the "ceiling" column gives the Spearman the
same map would reach if every error were drawn from a Gaussian with exactly that
standard deviation (a perfectly calibrated predictor).

Run (from the repository root)::

    python benchmarks/trust.py           # full run (3 CARE seeds x 120 steps, 120 DSB steps)
    python benchmarks/trust.py --fast    # smoke run, a few minutes
    python benchmarks/trust.py --parts dsb --dsb-steps 40   # one part, shorter training

On a 2-core CPU shared with other jobs (load 15-20) a CARE step took 2-6 s, so the
default run exceeds half an hour there; the recorded runs (RESULTS.md) used the
part-wise commands with fewer steps, about 10 minutes each.

Outputs ``bench_out/trust[_fast]/results.json`` and ``results.md`` (``results_fmd.*``
or ``results_dsb.*`` with ``--parts``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skimage.draw import random_shapes
from skimage.io import imread

sys.path.insert(0, str(Path(__file__).resolve().parent))
from care_fmd import TEST_FOVS, TRAIN_FOVS, fov_frames, read_gray, write_pairs

from microsight import load_model, predict, train
from microsight.config import get_method
from microsight.engine.ood import describe_training_data, score_image
from microsight.io import Image
from microsight.metrics.ood import auroc, detection_rate, spearman

REPO = Path(__file__).resolve().parent.parent
FMD = REPO.parent / "shared/data/fmd-confocal-bpae-b"
DSB = REPO.parent / "shared/data/dsb2018-stage1-train"
SPLIT = REPO / "benchmarks/splits/dsb_detect_split.csv"
SCALES = (0.1, 10.0)
PIXEL_SAMPLE = 2_000_000
TILE = 32


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fmd", type=Path, default=FMD)
    p.add_argument("--dsb", type=Path, default=DSB)
    p.add_argument("--out", type=Path, default=None,
                   help="default bench_out/trust (bench_out/trust_fast with --fast)")
    p.add_argument("--fast", action="store_true", help="smoke run: few steps, few images")
    p.add_argument("--care-steps", type=int, default=None, help="steps per CARE model (120)")
    p.add_argument("--dsb-steps", type=int, default=None, help="steps of the DSB U-Net (120)")
    p.add_argument("--members", type=int, default=None, help="CARE ensemble size (3)")
    p.add_argument("--test-frames", type=int, default=None,
                   help="noisy frames per held-out FMD FOV (1)")
    p.add_argument("--base-channels", type=int, default=16, help="U-Net features at level 1")
    p.add_argument("--batch", type=int, default=8, help="patches per step")
    p.add_argument("--crop", type=int, default=256,
                   help="uncertainty is measured on the central CROPxCROP of each held-out "
                        "frame (0: whole 512x512 frames)")
    p.add_argument("--dsb-method", default="unet-seg", choices=("unet-seg", "detect"),
                   help="U-Net method trained on the DSB fluorescence images")
    p.add_argument("--parts", default="fmd,dsb", help="which parts to run (fmd, dsb)")
    p.add_argument("--max-shifted", type=int, default=32,
                   help="images per shifted set of the DSB part (evenly chosen)")
    p.add_argument("--skip-train", action="store_true",
                   help="reuse the models in --out (those with a descriptor)")
    p.add_argument("--refit-descriptors", action="store_true",
                   help="with --skip-train: re-fit each reused model's out-of-distribution "
                        "descriptor on its training data (weights unchanged)")
    return p.parse_args()


# --- images -------------------------------------------------------------------------------
def gray(path: Path) -> np.ndarray:
    """A DSB image as one float32 plane (mean of the colour channels, alpha dropped)."""
    img = imread(path)
    if img.ndim == 3:
        img = img[..., :3].mean(-1)
    return img.astype(np.float32)


def shapes(n: int, shape: tuple[int, int], seed: int, peak: float) -> list[np.ndarray]:
    """Rectangles and triangles on a dark background, with Gaussian noise (float32)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = "rectangle" if i % 2 == 0 else "triangle"
        img, _ = random_shapes(shape, max_shapes=12, min_shapes=4, shape=kind,
                               min_size=shape[0] // 16, max_size=shape[0] // 3,
                               channel_axis=None, intensity_range=(60, 220),
                               rng=int(rng.integers(1 << 31)))
        img = np.where(img == 255, 0, img).astype(np.float32) * (peak / 255)
        out.append(img + rng.normal(0, 0.05 * peak, shape).astype(np.float32))
    return out


def scores(model, images: list[np.ndarray]) -> list[float]:
    return [score_image(model, Image(x, "YX", {}))["score"] for x in images]


def ood_table(model, id_images: list[np.ndarray], shifted: dict[str, list[np.ndarray]],
              acceptance: set[str]) -> dict:
    """AUROC of every shifted set against the in-distribution images, and rates at score 1."""
    inside = scores(model, id_images)
    rows, pooled = [], []
    for name, images in shifted.items():
        outside = scores(model, images)
        if name in acceptance:
            pooled += outside
        rows.append({"shift": name, "images": len(images), "auroc": auroc(inside, outside),
                     "median_score": float(np.median(outside)),
                     **detection_rate(inside, outside)})
    rows.append({"shift": "all of the above (acceptance sets)", "images": len(pooled),
                 "auroc": auroc(inside, pooled), "median_score": float(np.median(pooled)),
                 **detection_rate(inside, pooled)})
    return {"in_distribution_images": len(id_images),
            "in_distribution_median_score": float(np.median(inside)),
            "false_alarm_rate": float(np.mean(np.asarray(inside) > 1)), "rows": rows}


def refit_descriptor(folder: Path, inputs: Path, targets: Path) -> None:
    """Re-fit a trained bundle's out-of-distribution descriptor (weights unchanged)."""
    model = load_model(folder)
    module_class = get_method(model.method).module_class
    data, _ = module_class.prepare_training(model.config.model_copy(deep=True), inputs,
                                            targets)
    describe_training_data(model, data, folder)
    print(f"re-fitted the descriptor of {folder.name}", flush=True)


# --- FMD: CARE ensemble, OOD, uncertainty --------------------------------------------------
def train_care(args, work: Path, out: Path) -> list:
    models = []
    for seed in range(args.members):
        folder = out / f"care_seed{seed}"
        if not (args.skip_train and (folder / "ood.json").is_file()):
            if folder.exists():
                shutil.rmtree(folder)
            t0 = time.perf_counter()
            train("care", work / "train/low", work / "train/high", out=folder, progress=False,
                  steps=args.care_steps, config={
                      "name": f"trust-care-fmd-seed{seed}",
                      "method": {"method": "care", "probabilistic": True,
                                 "base_channels": args.base_channels},
                      "data": {"patch_size": [64, 64], "batch_size": args.batch},
                      "training": {"seed": seed, "steps_per_epoch": min(50, args.care_steps)}})
            print(f"CARE seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
        elif args.refit_descriptors:
            refit_descriptor(folder, work / "train/low", work / "train/high")
        models.append(load_model(folder))
    return models


def error_vs_uncertainty(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Spearman of uncertainty vs absolute error per pixel, per tile and per image."""
    rng = np.random.default_rng(0)
    unc = np.concatenate([u.ravel() for u, _ in pairs])
    err = np.concatenate([e.ravel() for _, e in pairs])
    pick = rng.choice(unc.size, min(PIXEL_SAMPLE, unc.size), replace=False)

    def tiles(a: np.ndarray) -> np.ndarray:
        h, w = (s // TILE * TILE for s in a.shape)
        return a[:h, :w].reshape(h // TILE, TILE, w // TILE, TILE).mean((1, 3)).ravel()

    tu = np.concatenate([tiles(u) for u, _ in pairs])
    te = np.concatenate([tiles(e) for _, e in pairs])
    draws = np.abs(rng.standard_normal(pick.size))
    return {"per_pixel": spearman(unc[pick], err[pick]), "pixels": int(pick.size),
            "per_pixel_ceiling": spearman(unc[pick], unc[pick] * draws),
            "per_tile": spearman(tu, te), "tiles": int(tu.size),
            "per_image": spearman([u.mean() for u, _ in pairs], [e.mean() for _, e in pairs]),
            "images": len(pairs),
            "mean_uncertainty": float(unc.mean()), "mean_abs_error": float(err.mean())}


def _centre(size: int) -> tuple[slice, slice]:
    """Central ``size`` x ``size`` window of a 512 x 512 frame (everything for 0)."""
    if not size:
        return (slice(None), slice(None))
    start = max(0, (512 - size) // 2)
    return (slice(start, start + size),) * 2


def run_fmd(args, out: Path, dsb_near: list[np.ndarray], dsb_shift: list[np.ndarray]) -> dict:
    work = out / "data"
    if work.exists():
        shutil.rmtree(work)
    write_pairs(args.fmd, TRAIN_FOVS, 8, work / "train")
    t0 = time.perf_counter()
    models = train_care(args, work, out)
    train_s = time.perf_counter() - t0
    tests = []
    for fov in TEST_FOVS:
        gt = read_gray(args.fmd / "gt" / str(fov) / "avg50.png").astype(np.float32)
        for frame in fov_frames(args.fmd, fov)[:args.test_frames]:
            tests.append((read_gray(frame).astype(np.float32), gt, fov))
    id_images = [x for x, _, _ in tests]
    shifted = {f"intensity x{s:g}": [x * s for x in id_images] for s in SCALES}
    shifted["DSB2018 brightfield / H&E (grey)"] = dsb_shift
    shifted["synthetic shapes"] = shapes(len(id_images), (512, 512), 1, 160.0)
    shifted["DSB2018 fluorescence nuclei (near shift)"] = dsb_near
    t0 = time.perf_counter()
    ood = ood_table(models[0], id_images, shifted,
                    {k for k in shifted if "near" not in k})
    ood_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    modes = {"model (Laplace scale)": ([models[0]], "model"),
             "tta (8 flips/rotations)": ([models[0]], "tta"),
             f"ensemble ({len(models)} seeds)": (models, "ensemble")}
    unc = {}
    crop = _centre(args.crop)
    for label, (members, mode) in modes.items():
        pairs = []
        for x, gt, _ in ((x[crop], gt[crop], fov) for x, gt, fov in tests):
            mean, spread = predict(members if len(members) > 1 else members[0], x,
                                   uncertainty=mode, check=False)
            pairs.append((spread, np.abs(mean - gt)))
        unc[label] = error_vs_uncertainty(pairs)
        print(f"uncertainty {label}: {unc[label]}", flush=True)
    return {"models": [str(m.path) for m in models], "train_seconds": train_s,
            "best_val_psnr": [m.qc.get("best_val_psnr") for m in models],
            "descriptor": {k: models[0].ood[k] for k in ("images", "patch_size")}
            | {"intensity_threshold": models[0].ood["intensity"]["threshold"],
               "feature_threshold": models[0].ood["features"]["threshold"]},
            "test_images": len(tests), "ood": ood, "ood_seconds": ood_s,
            "uncertainty": unc, "uncertainty_seconds": time.perf_counter() - t0}


# --- DSB: fluorescence U-Net, OOD on validation and test ----------------------------------
def _evenly(items: list, n: int) -> list:
    if len(items) <= n:
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def read_split(path: Path) -> dict[str, list[str]]:
    split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            split[r["split"]].append(r["image_id"])
    return split


def others(dsb: Path) -> list[str]:
    with open(dsb / "index.csv", newline="") as fh:
        return sorted(r["image_id"] for r in csv.DictReader(fh)
                      if r["appearance"] != "grayscale_darkbg")


def run_dsb(args, out: Path, split: dict[str, list[str]], other_ids: list[str]) -> dict:
    folder = out / args.dsb_method
    if not (args.skip_train and (folder / "ood.json").is_file()):
        data = out / "data"
        for sub in ("images", "labels"):
            if (data / sub).exists():
                shutil.rmtree(data / sub)
            (data / sub).mkdir(parents=True)
            for i in split["train"]:
                (data / sub / f"{i}.png").symlink_to(args.dsb / sub / f"{i}.png")
        if folder.exists():
            shutil.rmtree(folder)
        t0 = time.perf_counter()
        train(args.dsb_method, data / "images", data / "labels", out=folder, progress=False,
              steps=args.dsb_steps, config={
                  "name": "trust-dsb-fluorescence-unet",
                  "method": {"method": args.dsb_method, "depth": 3,
                             "base_channels": args.base_channels},
                  "data": {"patch_size": [64, 64], "batch_size": args.batch,
                           "normalization": {"mode": "dataset"}},
                  "training": {"steps_per_epoch": min(50, args.dsb_steps), "val_tile": 256}})
        print(f"DSB U-Net: {time.perf_counter() - t0:.0f} s", flush=True)
    elif args.refit_descriptors:
        refit_descriptor(folder, out / "data" / "images", out / "data" / "labels")
    model = load_model(folder)
    result = {"model": str(folder), "method": args.dsb_method,
              "descriptor": {"images": model.ood["images"],
                             "intensity_threshold": model.ood["intensity"]["threshold"],
                             "feature_threshold": model.ood["features"]["threshold"]}}
    for part, parity, seed in (("val", 0, 2), ("test", 1, 3)):
        id_images = [gray(args.dsb / "images" / f"{i}.png") for i in split[part]]
        few = _evenly(id_images, args.max_shifted)
        shifted = {f"intensity x{s:g}": [x * s for x in few] for s in SCALES}
        shifted["DSB2018 brightfield / H&E (grey)"] = [
            gray(args.dsb / "images" / f"{i}.png")
            for i in _evenly(other_ids[parity::2], args.max_shifted)]
        shifted["synthetic shapes"] = shapes(len(few), (256, 256), seed, 255.0)
        t0 = time.perf_counter()
        result[part] = ood_table(model, id_images, shifted, set(shifted))
        result[part]["seconds"] = time.perf_counter() - t0
        print(f"DSB {part}: {[(r['shift'], round(r['auroc'], 3)) for r in result[part]['rows']]}",
              flush=True)
    return result


# --- report -------------------------------------------------------------------------------
def ood_markdown(title: str, table: dict) -> list[str]:
    lines = [f"{title}: {table['in_distribution_images']} in-distribution images (median score "
             f"{table['in_distribution_median_score']:.2f}, false alarms at score > 1: "
             f"{table['false_alarm_rate']:.0%})", "",
             "| shifted set | images | AUROC | median score | flagged (score > 1) |",
             "|---|---:|---:|---:|---:|"]
    for r in table["rows"]:
        lines.append(f"| {r['shift']} | {r['images']} | {r['auroc']:.3f} | "
                     f"{r['median_score']:.2f} | {r['detection_rate']:.0%} |")
    return lines + [""]


def markdown(res: dict) -> str:
    f, d = res["fmd"], res["dsb"]
    lines = ["# Trust: out-of-distribution warnings and uncertainty", "",
             f"Command: `{res['command']}`; {res['machine']}; load average before "
             f"{'/'.join(f'{v:.1f}' for v in res['load_before'])}, after "
             f"{'/'.join(f'{v:.1f}' for v in res['load_after'])}; total "
             f"{res['total_seconds'] / 60:.1f} min.", "",
             "## Out-of-distribution detection (score = max of feature / intensity score "
             "over its training-calibrated threshold)", ""]
    if f:
        lines += ood_markdown("CARE (FMD, held-out FOVs, test)", f["ood"])
    if d:
        for part, label in (("val", "validation"), ("test", "test")):
            lines += ood_markdown(f"DSB fluorescence U-Net ({d['method']}), {label} split",
                                  d[part])
    if not f:
        return "\n".join(lines)
    lines += ["## Uncertainty vs absolute error (FMD held-out FOVs, Spearman)", "",
              "| uncertainty | per pixel | per-pixel ceiling | per 32x32 tile | per image | "
              "mean uncertainty | mean abs error |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, u in f["uncertainty"].items():
        lines.append(f"| {name} | {u['per_pixel']:.3f} | {u.get('per_pixel_ceiling', np.nan):.3f}"
                     f" | {u['per_tile']:.3f} | "
                     f"{u['per_image']:.3f} | {u['mean_uncertainty']:.2f} | "
                     f"{u['mean_abs_error']:.2f} |")
    first = next(iter(f["uncertainty"].values()))
    lines += ["", f"{first['pixels']} sampled pixels, {first['tiles']} tiles, "
              f"{first['images']} images (central {res['config']['crop']} px crops; "
              "intensity units 0-255).", ""]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    out = (args.out or REPO / "bench_out" / ("trust_fast" if args.fast else "trust")).resolve()
    args.care_steps = args.care_steps or (20 if args.fast else 120)
    args.dsb_steps = args.dsb_steps or (20 if args.fast else 120)
    args.members = args.members or (2 if args.fast else 3)
    args.test_frames = args.test_frames or 1
    for path in (args.fmd / "raw", args.dsb / "images", SPLIT):
        if not path.exists():
            sys.exit(f"{path} not found; pass --fmd / --dsb")
    out.mkdir(parents=True, exist_ok=True)
    t_start, load_before = time.perf_counter(), os.getloadavg()
    split = read_split(SPLIT)
    other_ids = others(args.dsb)
    if args.fast:
        split = {k: v[:8] for k, v in split.items()}
        split["train"] = read_split(SPLIT)["train"][:40]
        other_ids = other_ids[::8]
    near = [gray(args.dsb / "images" / f"{i}.png") for i in split["test"][:16]]
    far = [gray(args.dsb / "images" / f"{i}.png") for i in other_ids[1::2][:16]]
    parts = set(args.parts.split(","))
    fmd = run_fmd(args, out / "fmd", near, far) if "fmd" in parts else None
    dsb = run_dsb(args, out / "dsb", split, other_ids) if "dsb" in parts else None
    res = {"benchmark": "trust", "command": " ".join(["python", *sys.argv]),
           "machine": (f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads, "
                       "no GPU") if not torch.cuda.is_available()
           else torch.cuda.get_device_name(0),
           "load_before": load_before, "load_after": os.getloadavg(),
           "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "fmd": fmd, "dsb": dsb, "total_seconds": time.perf_counter() - t_start}
    name = "results" if parts == {"fmd", "dsb"} else "results_" + "_".join(sorted(parts))
    (out / f"{name}.json").write_text(json.dumps(res, indent=2, default=float))
    md = markdown(res)
    (out / f"{name}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
