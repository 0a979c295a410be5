"""Benchmark: nucleus detection on DSB2018 fluorescence images vs. a LoG blob detector.

Not part of the test suite (it needs the external data set and trains for minutes).

Data
    DSB2018 stage1_train (BBBC038, community-fixed annotations) read from ``--data``
    (default ``/work/shared/data/dsb2018-stage1-train``; see its PROVENANCE.md): the
    ``appearance == grayscale_darkbg`` (fluorescence-like) images, 8-bit PNG, with
    ground-truth points = centroids of the 16-bit instance label images. Nothing is
    copied into the repository; symlinked folders go to ``<out>/data/``.

Split
    ``benchmarks/splits/dsb_detect_split.csv`` (image_id, split): a seeded (seed 2018)
    shuffle of the sorted image ids, 70% train / 15% validation / 15% test. It is written
    once and then only read, so every run uses the same split.

Protocol
    - microsight ``detect``: U-Net (depth 4, 16 features), 10 epochs x 100 steps of 8
      patches of 96x96, heat-maps whose width follows each nucleus' size (sigma = 0.5 x
      equivalent radius, at least 2 px), per-image percentile normalization, trained
      on the train split; every other validation image scores the epochs (best
      validation loss is kept) and all validation images choose the peak threshold /
      minimum distance (grid, best pooled F1).
    - baseline: ``skimage.feature.blob_log`` on percentile-scaled images; threshold and
      sigma range chosen by pooled F1 on the validation split.
    - ``--seg-model``: the object centroids of an instance-segmentation bundle trained on
      the same train split (``segmentation_dsb.py`` uses this split file), its
      post-processing thresholds chosen by pooled F1 on validation: detection through
      segmentation, for label-image annotations.
    - Scores: one-to-one Hungarian matching within 5 pixels; precision, recall, F1 pooled
      over images (micro) and averaged per image, on validation and test separately.
      Nothing is tuned on test.

Run (about 10 minutes on 2 free CPU cores; longer when they are shared)::

    python benchmarks/detect_dsb.py            # writes bench_out/detect_dsb/
    python benchmarks/detect_dsb.py --quick    # smoke run: few steps, few images
    python benchmarks/detect_dsb.py --skip-train --seg-model \
        bench_out/seg_distmap_b32_8k/model_distmap   # + distmap object centroids
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from microsight.api import build_config
from microsight.data.pairs import TrainingSet
from microsight.data.points import coords, find_peaks, label_centroids
from microsight.engine.bundle import load_model
from microsight.engine.predict import TileSettings
from microsight.engine.training import train_model
from microsight.families.segmentation.tuning import extract_with
from microsight.methods.detect.module import (
    DetectModule,
    load_detection_data,
    log_points,
    training_heatmaps,
)
from microsight.metrics.detection import detection_scores, pooled_scores

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import bootstrap_ci, command_line, write_result

REPO = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/dsb2018-stage1-train")
SPLIT = REPO / "benchmarks" / "splits" / "dsb_detect_split.csv"
SEED = 2018
TOL = 5.0


def make_split(data: Path, path: Path) -> dict[str, list[str]]:
    """Read the stored split, or create it (seeded) the first time."""
    if not path.is_file():
        with open(data / "index.csv", newline="") as fh:
            ids = sorted(r["image_id"] for r in csv.DictReader(fh)
                         if r["appearance"] == "grayscale_darkbg")
        order = np.random.default_rng(SEED).permutation(len(ids))
        n_val = n_test = round(0.15 * len(ids))
        split = {}
        for rank, i in enumerate(order):
            split[ids[i]] = "test" if rank < n_test else "val" if rank < n_test + n_val \
                else "train"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["image_id", "split"])
            w.writerows(sorted(split.items()))
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            out[r["split"]].append(r["image_id"])
    return out


def link_folder(data: Path, ids: list[str], folder: Path) -> tuple[Path, Path]:
    """images/ and labels/ folders of symlinks to the chosen ids."""
    if folder.exists():
        shutil.rmtree(folder)
    for sub in ("images", "labels"):
        (folder / sub).mkdir(parents=True)
        for i in ids:
            (folder / sub / f"{i}.png").symlink_to(data / sub / f"{i}.png")
    return folder / "images", folder / "labels"


def pooled(points_pred: list[np.ndarray], truths: list[np.ndarray]) -> dict[str, float]:
    return pooled_scores([detection_scores(coords(p), coords(t), TOL)
                          for p, t in zip(points_pred, truths, strict=True)])


def score_set(pred: list[np.ndarray], truths: list[np.ndarray]) -> dict[str, float]:
    per = [detection_scores(coords(p), coords(t), TOL) for p, t in zip(pred, truths,
                                                                      strict=True)]
    pool = pooled_scores(per)
    return {"precision": pool["precision"], "recall": pool["recall"], "f1": pool["f1"],
            "mean_image_f1": float(np.mean([r["f1"] for r in per])),
            "mean_image_f1_ci95": bootstrap_ci([r["f1"] for r in per]),
            "tp": pool["tp"], "fp": pool["fp"], "fn": pool["fn"]}


def segmentation_rows(model_dir: Path, loaded: dict) -> tuple[list[dict], dict]:
    """Object centroids of an instance-segmentation bundle as detections.

    The bundle must have been trained on this split's training images (e.g. by
    ``segmentation_dsb.py``, which uses the same split file). Its post-processing
    thresholds are chosen here by pooled F1 on validation, as the detector's are.
    """
    # segmentation_dsb imports this module: import it late.
    from segmentation_dsb import GRIDS, dense_maps

    model = load_model(model_dir)
    name = model.config.method.method

    def points(dense: np.ndarray, params: dict) -> np.ndarray:
        return label_centroids(extract_with(model, dense, params))

    maps, seconds = {}, {}
    for part in ("val", "test"):
        maps[part], seconds[part] = dense_maps(model, loaded[part][0])
    grid = [dict(zip(GRIDS[name], v, strict=True))
            for v in itertools.product(*GRIDS[name].values())]
    val_f1 = [pooled([points(m, g) for m in maps["val"]], loaded["val"][1])["f1"] for g in grid]
    best = grid[int(np.argmax(val_f1))]
    print(f"{name} centroids on validation: {best}, F1 {max(val_f1):.4f}", flush=True)
    rows = [{"split": part, "source": f"microsight {name} (object centroids)",
             "images": len(maps[part]),
             **score_set([points(m, best) for m in maps[part]], loaded[part][1]),
             "predict_s": round(seconds[part], 1)} for part in ("val", "test")]
    return rows, {"bundle": str(model_dir), "params": best}


def record(rows: list[dict], train_s: float, command: str, run: str) -> Path:
    """Add this run's rows to ``results/detection-dsb.json`` (the table of RESULTS.md):
    one row per source, validation and test apart, the interval of the per-image F1."""
    names = {"precision": "precision", "recall": "recall", "f1": "F1", "mean_image_f1": "img F1"}
    out: dict[str, dict] = {}
    for r in rows:
        kind = "baseline" if r["source"].startswith("LoG") else "microsight"
        row = out.setdefault(r["source"], {
            "model": f"{r['source']} ({run})", "kind": kind, "command": command,
            "recipe": None, "train_s": train_s if r["source"] == "microsight detect" else None})
        part = "val" if r["split"] == "val" else "test"
        row[part] = {name: r[key] for key, name in names.items()}
        if r.get("mean_image_f1_ci95"):
            row.setdefault("ci95", {})[f"{part}.img F1"] = r["mean_image_f1_ci95"]
    return write_result("detection-dsb", list(out.values()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=REPO / "bench_out" / "detect_dsb")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps-per-epoch", type=int, default=100)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--base-channels", type=int, default=16, help="U-Net features at level 1")
    ap.add_argument("--quick", action="store_true", help="smoke run on a few images")
    ap.add_argument("--skip-train", action="store_true", help="reuse <out>/model")
    ap.add_argument("--resume", action="store_true",
                    help="continue <out>/model up to --epochs (e.g. after an interruption)")
    ap.add_argument("--report", action="store_true", help="also write the test HTML report")
    ap.add_argument("--seg-model", type=Path, default=None,
                    help="also score the object centroids of this instance-segmentation "
                         "bundle (trained on this split's train images, e.g. "
                         "bench_out/<run>/model_distmap from segmentation_dsb.py)")
    ap.add_argument("--record", action="store_true",
                    help="also add this run's rows to results/detection-dsb.json "
                         "(then run benchmarks/results_page.py)")
    args = ap.parse_args(argv)
    if args.record and args.quick:
        ap.error("--record keeps full runs only, not --quick smoke runs")
    split = make_split(args.data, SPLIT)
    if args.quick:
        split = {k: v[:6] for k, v in split.items()}
        args.epochs, args.steps_per_epoch = 1, 5
    print({k: len(v) for k, v in split.items()}, flush=True)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    folders = {k: link_folder(args.data, v, out / "data" / k) for k, v in split.items()}
    loaded = {k: load_detection_data(*folders[k]) for k in split}

    config = build_config("detect", {
        "name": "dsb-detect",
        "method": {"method": "detect", "depth": args.depth, "base_channels": args.base_channels,
                   "sigma": 2.0, "sigma_mode": "object", "object_scale": 0.5},
        "data": {"patch_size": [args.patch] * 2, "batch_size": args.batch,
                 "foreground_fraction": 0.7,
                 "normalization": {"mode": "per_image"}},
        "training": {"epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch,
                     "learning_rate": 1e-3, "val_tile": 256, "early_stopping_patience": 4},
    })
    model_dir = out / "model"
    t0 = time.time()
    if not args.skip_train:
        if model_dir.exists() and not args.resume:
            shutil.rmtree(model_dir)
        tx, tsum, vx = loaded["train"][0], loaded["train"][2], loaded["val"][0]

        def heat(part: str, keep: slice = slice(None)) -> list[np.ndarray]:
            xs, points, summ = loaded[part]
            return training_heatmaps(config.method, folders[part][1],
                                     summ["item_names"][keep], xs[keep], points[keep], 1)

        # Every other validation image scores the epochs (picks the best weights); all of
        # them choose the peak threshold below.
        data = TrainingSet(tx, heat("train"), vx[::2], heat("val", slice(None, None, 2)),
                           {**tsum, "split": f"{len(tx)} train / {len(vx[::2])} validation images "
                                             f"({SPLIT.name})", "classes": 1})
        norm = DetectModule.normalize(data, config, 1)
        train_model(config, data, norm, model_dir, resume=args.resume, progress=True)
    train_s = time.time() - t0 if not args.skip_train else float("nan")
    model = load_model(model_dir)
    if args.skip_train:
        train_s = float((model.history[-1].get("train_seconds") if model.history else None)
                        or float("nan"))
    settings = TileSettings.default(2, 256, 32)

    # --- choose the peak threshold / min distance on validation --------------------------
    vx, vtruth = loaded["val"][0], loaded["val"][1]
    heats = [DetectModule.predict_heatmap(model, x, settings) for x in vx]
    grid = []
    for thr in (0.2, 0.3, 0.4, 0.5, 0.6):
        for md in (2, 3, 4, 6):
            s = pooled([find_peaks(h, threshold=thr, min_distance=md) for h in heats], vtruth)
            grid.append({"threshold": thr, "min_distance": md, "val_f1": s["f1"]})
    best_net = max(grid, key=lambda r: r["val_f1"])
    print("network on validation:", best_net, flush=True)

    # --- choose the LoG parameters on validation -----------------------------------------
    log_grid = []
    for smin, smax in ((2, 8), (4, 14), (6, 20)):
        for thr in (0.05, 0.1, 0.15, 0.2, 0.3):
            s = pooled([log_points(x, threshold=thr, min_sigma=smin, max_sigma=smax)
                        for x in vx], vtruth)
            log_grid.append({"min_sigma": smin, "max_sigma": smax, "threshold": thr,
                             "val_f1": s["f1"]})
    best_log = max(log_grid, key=lambda r: r["val_f1"])
    print("LoG on validation:", best_log, flush=True)

    m = model.config.method
    m.threshold, m.min_distance = best_net["threshold"], best_net["min_distance"]
    m.log_threshold = best_log["threshold"]
    m.log_min_sigma, m.log_max_sigma = best_log["min_sigma"], best_log["max_sigma"]

    rows = []
    for part in ("val", "test"):
        xs, truths = loaded[part][0], loaded[part][1]
        t1 = time.time()
        part_heats = heats if part == "val" else [
            DetectModule.predict_heatmap(model, x, settings) for x in xs]
        net = [find_peaks(h, threshold=m.threshold, min_distance=m.min_distance)
               for h in part_heats]
        net_s = time.time() - t1
        base = [log_points(x, threshold=m.log_threshold, min_sigma=m.log_min_sigma,
                           max_sigma=m.log_max_sigma) for x in xs]
        rows.append({"split": part, "source": "microsight detect", "images": len(xs),
                     **score_set(net, truths), "predict_s": round(net_s, 1)})
        rows.append({"split": part, "source": "LoG blob_log (tuned on val)", "images": len(xs),
                     **score_set(base, truths)})
    seg = None
    if args.seg_model is not None:
        seg_rows, seg = segmentation_rows(args.seg_model, loaded)
        rows += seg_rows
    if args.report:
        DetectModule.evaluate_model(model, *folders["test"], report=out / "test_report.html",
                                    settings=settings)

    results = {"tolerance_px": TOL, "split_file": str(SPLIT.relative_to(REPO)),
               "images": {k: len(v) for k, v in split.items()},
               "train_seconds": round(train_s, 1), "epochs_run": len(model.history),
               "best_epoch": model.qc.get("best_epoch"), "network_params": best_net,
               "log_params": best_log, "segmentation_model": seg, "rows": rows,
               "network_grid": grid,
               "log_grid": log_grid, "quick": args.quick}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    lines = ["| split | source | images | precision | recall | F1 (pooled) | mean image F1 |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['split']} | {r['source']} | {r['images']} | {r['precision']:.3f} "
                     f"| {r['recall']:.3f} | {r['f1']:.3f} | {r['mean_image_f1']:.3f} |")
    table = "\n".join(lines)
    (out / "results.md").write_text(
        f"# DSB2018 fluorescence nuclei detection (F1 at {TOL:g} px)\n\n{table}\n\n"
        f"training {train_s:.0f} s, {len(model.history)} epochs (best "
        f"{model.qc.get('best_epoch')}); network threshold {m.threshold}, min distance "
        f"{m.min_distance}; LoG sigma {m.log_min_sigma}-{m.log_max_sigma}, threshold "
        f"{m.log_threshold} (chosen on validation)\n")
    print(table)
    if args.record:
        command = command_line(__file__, sys.argv[1:] if argv is None else argv)
        print(f"recorded in {record(rows, train_s, command, out.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
