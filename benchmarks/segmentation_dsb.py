"""Benchmark: nucleus instance segmentation on DSB2018 fluorescence images.

Not part of the test suite (it needs the external data set and trains for minutes).

Data
    DSB2018 stage1_train (BBBC038, community-fixed annotations) read from ``--data``
    (default ``/work/shared/data/dsb2018-stage1-train``; see its PROVENANCE.md): the
    ``appearance == grayscale_darkbg`` (fluorescence-like) images, 8-bit PNG, with
    16-bit instance label images. Nothing is copied into the repository.

Split
    ``benchmarks/splits/dsb_detect_split.csv`` (321 train / 69 validation / 69 test),
    the split of the detection benchmark.

Protocol
    - ``starconvex`` (32 rays) and ``distmap``: U-Nets trained on the train split with
      per-image percentile normalization; every other validation image scores the
      epochs (the best validation loss is kept).
    - Post-processing thresholds (starconvex: probability and NMS IoU; distmap: mask and
      marker thresholds, marker peak height) and the classical baseline's parameters
      (Otsu + distance watershed: smoothing and seed distance) are chosen on the
      validation split by the pooled mean of AP@0.5 and AP@0.75. Nothing is tuned on test.
    - Peers: label images written by ``benchmarks/peers/`` (StarDist, Cellpose) under
      ``bench_out/seg_peers/<tool>/<split>/<image_id>.tif`` are scored with the same
      metrics when present (skipped with a note otherwise).
    - Scores: StarDist-style matching (``microsight.metrics.segmentation``); AP =
      TP / (TP + FP + FN) pooled over the images of a split (counts summed), plus the
      mean over images of the per-image AP@0.5.

Run (about 25 minutes on a loaded 2-core CPU)::

    python benchmarks/segmentation_dsb.py               # writes bench_out/segmentation_dsb/
    python benchmarks/segmentation_dsb.py --steps 300   # shorter training
    python benchmarks/segmentation_dsb.py --quick       # smoke run: few steps, few images
    python benchmarks/segmentation_dsb.py --methods distmap --ensemble RUN1 RUN2 --tta \
        --no-baseline --out bench_out/seg_ensemble     # mean maps of earlier runs' models
    python benchmarks/segmentation_dsb.py --methods distmap --init-from RUN --lr 3e-4 ...
                                                       # continue an earlier run's model
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from microsight.api import build_config
from microsight.config import get_method
from microsight.data.baselines import classical_instances
from microsight.data.pairs import TrainingSet, load_items
from microsight.data.shapes import relabel_random
from microsight.engine.bundle import load_model
from microsight.engine.training import normalize_inputs, train_model
from microsight.engine.uncertainty import DihedralTTA, combine
from microsight.families.segmentation.tuning import (
    dense_outputs,
    extract_with,
    label_images,
    objective,
)
from microsight.metrics.segmentation import matching, pool_matching

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detect_dsb import SPLIT, link_folder, make_split
from results import bootstrap_ci, command_line, write_result

REPO = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/dsb2018-stage1-train")
THRESHOLDS = (0.5, 0.7, 0.75, 0.9)
# Methods whose dense maps are equivariant to flips/rotations (test-time averaging valid).
TTA_OK = {"distmap"}
PEERS = REPO / "bench_out" / "seg_peers"
# Size normalization never shrinks an image more than this.
SHRINK_LIMIT = 0.25

METHODS = {
    "starconvex": {"method": "starconvex", "n_rays": 32, "depth": 3},
    "distmap": {"method": "distmap", "depth": 3},
}
# Post-processing candidates: the methods' own grids (those training chooses from).
GRIDS = {
    name: get_method(name).module_class.threshold_grid(None) for name in METHODS
} | {"baseline": {"sigma": [1.0, 2.0], "min_distance": [3, 5, 8]}}


def score(truths: list[np.ndarray], preds: list[np.ndarray]) -> dict[str, float]:
    """Pooled AP at the report thresholds, F1@0.5 and the per-image mean APs."""
    per = [matching(t, p, THRESHOLDS) for t, p in zip(truths, preds, strict=True)]
    pooled = pool_matching(per)
    out = {f"ap@{t:g}": pooled[t]["ap"] for t in THRESHOLDS}
    out["f1@0.5"] = pooled[0.5]["f1"]
    for t in (0.5, 0.75, 0.9):
        out[f"mean_image_ap@{t:g}"] = float(np.mean([r[t]["ap"] for r in per]))
    out["mean_image_ap@0.5_ci95"] = bootstrap_ci([r[0.5]["ap"] for r in per])
    out["pq@0.5"] = pooled[0.5]["pq"]
    return out


def per_image_rows(out: Path, source: str, split_name: str, ids: list[str],
                   truths: list[np.ndarray], preds: list[np.ndarray]) -> None:
    """Append each image's size, object count and AP@0.5 / 0.75 to <out>/per_image.csv."""
    path = out / "per_image.csv"
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(["source", "split", "image_id", "height", "width", "true_objects",
                        "ap@0.5", "ap@0.75"])
        for i, t, p in zip(ids, truths, preds, strict=True):
            r = matching(t, p, (0.5, 0.75))
            w.writerow([source, split_name, i, *t.shape, r[0.5]["n_true"],
                        f"{r[0.5]['ap']:.3f}", f"{r[0.75]['ap']:.3f}"])


def train(name: str, loaded: dict, out: Path, args: argparse.Namespace) -> tuple:
    (tx, ty, tsum), (vx, vy, _) = loaded["train"], loaded["val"]
    vx, vy = vx[::2], vy[::2]
    if args.diameter:
        tx, ty = resize_split(tx, ty, args.diameter, args.patch)
        vx, vy = resize_split(vx, vy, args.diameter, args.patch)
    config = build_config(name, {
        "name": f"dsb-{name}",
        "method": {**METHODS[name], "base_channels": args.base_channels,
                   **({"depth": args.depth} if args.depth else {}),
                   **({"contact_weight": args.contact_weight} if name == "distmap" else {})},
        "data": {"patch_size": [args.patch, args.patch], "batch_size": args.batch_size,
                 "foreground_fraction": 0.7, "scale_jitter": args.scale_jitter,
                 "normalization": {"mode": "per_image"}},
        "training": {"epochs": args.epochs, "steps_per_epoch": max(args.steps // args.epochs, 1),
                     "learning_rate": args.lr, "val_tile": 256, "early_stopping_patience": 6,
                     "init_from": (str(Path(args.init_from) / f"model_{name}")
                                   if args.init_from else None)},
    })
    rng = np.random.default_rng(config.training.seed)
    data = TrainingSet([x.copy() for x in tx], [relabel_random(t[0], rng)[None].astype(
        np.float32) for t in ty], [x.copy() for x in vx],
        [relabel_random(t[0], rng)[None].astype(np.float32) for t in vy],
        {"files": tsum["files"], "split": "benchmark split"})
    norm = normalize_inputs(data, config, 1)
    model_dir = out / f"model_{name}"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    t0 = time.time()
    train_model(config, data, norm, model_dir, progress=True)
    return load_model(model_dir), time.time() - t0


def dense_maps(model, xs: list[np.ndarray], tta: bool = False,
               scale: float | list[float] = 1.0) -> tuple[list[np.ndarray], float]:
    """Network outputs (point estimates) of every image, and the seconds they took.

    With ``tta`` each tile's outputs are the mean over its 8 flips/rotations (valid
    for maps that turn with the image, as distmap's; not for star-convex rays). With
    ``scale`` != 1 (one factor, or one per image) the images are resized by that
    factor first (linear interpolation) and the maps come back at that size: labels
    extracted from them must be resized back (:func:`unscale`).
    """
    scales = scale if isinstance(scale, list) else [scale] * len(xs)
    xs = [resize_image(x, f) for x, f in zip(xs, scales, strict=True)]
    if tta:
        model = dataclasses.replace(model, module=DihedralTTA(model.module))
    t0 = time.time()
    maps = [dense_outputs(model, x) for x in xs]
    return maps, time.time() - t0


def multiscale_maps(model, xs: list[np.ndarray], extra: list[float], tta: bool = False
                    ) -> tuple[list[np.ndarray], float]:
    """Maps averaged over the image as it is and resized by each factor of ``extra``.

    Each resized image's maps are brought back to the image's grid (linear
    interpolation) before averaging; valid for maps that do not depend on the
    object size in pixels (distmap's foreground and per-object normalized distance).
    """
    from skimage.transform import resize

    maps, seconds = dense_maps(model, xs, tta)
    for f in extra:
        scaled, t = dense_maps(model, xs, tta, f)
        seconds += t
        for m, d in zip(maps, scaled, strict=True):
            m += resize(d, m.shape, order=1, preserve_range=True, anti_aliasing=f > 1)
    return [m / (1 + len(extra)) for m in maps], seconds


def resize_image(x: np.ndarray, factor: float) -> np.ndarray:
    """A ``(C, Y, X)`` image resized by ``factor`` (linear; smoothed when shrinking)."""
    if factor == 1:
        return x
    from skimage.transform import rescale

    return rescale(x, (1, factor, factor), order=1, preserve_range=True,
                   anti_aliasing=factor < 1).astype(np.float32)


def median_diameter(labels: np.ndarray) -> float:
    """Diameter (px) of a disk with the median object area; NaN without objects."""
    areas = np.bincount(labels.ravel().astype(np.int64))[1:]
    areas = areas[areas > 0]
    return float(2 * np.sqrt(np.median(areas) / np.pi)) if len(areas) else float("nan")


def size_factor(diameter: float, target: float, shape: tuple[int, ...], least: int,
                floor: float = SHRINK_LIMIT) -> float:
    """Factor that gives objects ``target`` px, within [floor, 4] and >= ``least`` px sides
    (``floor`` 1: images are only enlarged, never shrunk)."""
    if not np.isfinite(diameter) or diameter <= 0:
        return 1.0
    return float(max(np.clip(target / diameter, floor, 4.0), least / min(shape)))


def resize_split(xs: list, ys: list, target: float, least: int) -> tuple[list, list]:
    """Training items with their objects resized to ``target`` px (known labels)."""
    from skimage.transform import rescale

    out_x, out_y = [], []
    for x, y in zip(xs, ys, strict=True):
        f = size_factor(median_diameter(np.round(y[0]).astype(np.int64)), target,
                        x.shape[1:], least)
        out_x.append(resize_image(x, f))
        out_y.append(y if f == 1 else rescale(y, (1, f, f), order=0, preserve_range=True,
                                              anti_aliasing=False).astype(np.float32))
    return out_x, out_y


def factor_error(factors: list[float], truths: list, target: float, xs: list,
                 floor: float = SHRINK_LIMIT) -> float:
    """Median |log2(estimated / true factor)|: how well object sizes were estimated."""
    true = [size_factor(median_diameter(t), target, x.shape[1:], 1, floor)
            for t, x in zip(truths, xs, strict=True)]
    return float(np.median(np.abs(np.log2(np.asarray(factors) / np.asarray(true)))))


def estimate_factors(model, xs: list, target: float, params: dict, passes: int = 2,
                     floor: float = SHRINK_LIMIT) -> list[float]:
    """Per-image resize factors from the model's own objects (no ground truth).

    Each pass segments the images at the current factors, measures the median
    object diameter on the original grid and sets the factor that brings it to
    ``target`` px.
    """
    factors = [1.0] * len(xs)
    for _ in range(passes):
        maps, _ = dense_maps(model, xs, scale=factors)
        factors = [size_factor(median_diameter(extract_with(model, d, params)) / f,
                               target, x.shape[1:], 1, floor)
                   for d, f, x in zip(maps, factors, xs, strict=True)]
    return factors


def sized(model, xs: list, truths: list, target: float, floor: float = SHRINK_LIMIT
          ) -> tuple[list[float], float, float]:
    """Resize factors of ``xs`` from the model's objects, the seconds that took, and
    their median |log2| error against the ground truth's sizes (reported only)."""
    t0 = time.time()
    factors = estimate_factors(model, xs, target,
                               {"mask_threshold": 0.5, "marker_threshold": 0.5}, floor=floor)
    seconds = time.time() - t0
    error = factor_error(factors, truths, target, xs, floor)
    print(f"  size factors {np.percentile(factors, [0, 50, 100])}, median |log2 error| "
          f"{error:.3f}", flush=True)
    return factors, seconds, error


def unscale(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Labels extracted from resized maps, back on the image's pixel grid (nearest)."""
    if labels.shape == tuple(shape):
        return labels
    from skimage.transform import resize

    return resize(labels, shape, order=0, preserve_range=True,
                  anti_aliasing=False).astype(labels.dtype)


def tune(extract, maps: list, truths: list, grid: dict) -> tuple[dict, float]:
    best, best_score = None, -1.0
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        s = objective(truths, [extract(m, params) for m in maps])
        print(f"    {params}: {s:.4f}", flush=True)
        if s > best_score:
            best, best_score = params, s
    return best, best_score


def peer_rows(ids: dict[str, list[str]], truths: dict[str, list[np.ndarray]]) -> list[dict]:
    import tifffile

    rows = []
    if not PEERS.is_dir():
        print(f"  no peer outputs in {PEERS}: peers skipped", flush=True)
        return rows
    for tool_dir in sorted(p for p in PEERS.iterdir() if p.is_dir()):
        times = {}
        if (tool_dir / "times.json").is_file():
            times = json.loads((tool_dir / "times.json").read_text())
        for split in ("val", "test"):
            files = [tool_dir / split / f"{i}.tif" for i in ids[split]]
            if not all(f.is_file() for f in files):
                print(f"  {tool_dir.name}/{split}: incomplete, skipped", flush=True)
                continue
            preds = [tifffile.imread(f).astype(np.int64) for f in files]
            rows.append({"source": tool_dir.name, "split": split,
                         **score(truths[split], preds), "times": times})
    return rows


def baseline_rows(loaded: dict, truths: dict, chosen: dict) -> list[dict]:
    """Otsu + distance watershed, parameters chosen on validation."""
    def base(x, params):
        return classical_instances(x, sigma=params["sigma"], min_distance=params["min_distance"])

    best, _ = tune(base, loaded["val"][0], truths["val"], GRIDS["baseline"])
    chosen["baseline"] = best
    rows = []
    for s in ("val", "test"):
        t0 = time.time()
        preds = [base(x, best) for x in loaded[s][0]]
        rows.append({"source": "Otsu + distance watershed", "split": s,
                     **score(truths[s], preds), "train_s": 0,
                     "predict_s_per_image": (time.time() - t0) / len(preds), "params": best})
    return rows


def save(out: Path, results: list[dict], chosen: dict, args: argparse.Namespace) -> None:
    (out / "results.json").write_text(json.dumps(
        {"results": results, "chosen": chosen,
         "args": vars(args) | {"data": str(args.data), "out": str(out)}},
        indent=1, default=str))


RECORDED = {"ap@0.5": "AP@0.5", "ap@0.75": "AP@0.75", "mean_image_ap@0.5": "img AP@0.5",
            "mean_image_ap@0.75": "img AP@0.75", "f1@0.5": "F1@0.5"}


def record(out: Path, results: list[dict], command: str) -> Path:
    """Add this run's rows to ``results/segmentation-dsb.json`` (the table of RESULTS.md).

    One row per source, named after the run's folder so that curated rows stay;
    validation and test numbers apart, test seconds per image, the interval of the
    per-image AP@0.5 over images.
    """
    rows: dict[str, dict] = {}
    for r in results:
        kind = ("peer" if "times" in r else
                "baseline" if r["source"].startswith("Otsu") else "microsight")
        row = rows.setdefault(r["source"], {
            "model": f"{r['source']} ({out.name})", "kind": kind,
            "command": command, "recipe": None, "train_s": r.get("train_s")})
        part = "val" if r["split"] == "val" else "test"
        row[part] = {name: r[key] for key, name in RECORDED.items()}
        if part == "test" and r.get("predict_s_per_image") is not None:
            row[part]["s/image"] = r["predict_s_per_image"]
        if r.get("mean_image_ap@0.5_ci95"):
            row.setdefault("ci95", {})[f"{part}.img AP@0.5"] = r["mean_image_ap@0.5_ci95"]
    return write_result("segmentation-dsb", list(rows.values()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=REPO / "bench_out" / "segmentation_dsb")
    ap.add_argument("--steps", type=int, default=400, help="training steps per method")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=6)
    ap.add_argument("--base-channels", type=int, default=16)
    ap.add_argument("--depth", type=int, default=None,
                    help="U-Net down-samplings (default: 3, as in METHODS)")
    ap.add_argument("--methods", default="starconvex,distmap")
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay)")
    ap.add_argument("--init-from", metavar="RUN",
                    help="start from the weights of <RUN>/model_<method> (fine-tuning: "
                         "give that run's --depth / --base-channels and a lower --lr)")
    ap.add_argument("--contact-weight", type=float, default=0.0,
                    help="distmap: extra loss weight where touching nuclei meet")
    ap.add_argument("--scale-jitter", type=float, default=0.0,
                    help="random zoom of training patches between 1/(1+s) and 1+s")
    ap.add_argument("--quick", action="store_true", help="smoke run on a few images")
    ap.add_argument("--skip-train", action="store_true", help="reuse <out>/model_<method>")
    ap.add_argument("--no-baseline", action="store_true", help="skip the classical baseline")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="resize images by this factor before prediction (labels resized "
                         "back): does a larger apparent nucleus size help?")
    ap.add_argument("--diameter", type=float, default=None,
                    help="train and predict with every image resized so that its median "
                         "object diameter is this many px (Cellpose's recipe); at "
                         "prediction the size comes from the model's own objects")
    ap.add_argument("--scale-tta", type=float, nargs="+", metavar="F",
                    help="average the maps of the images as they are and resized by each "
                         "F (maps brought back to the image grid)")
    ap.add_argument("--enlarge-only", action="store_true",
                    help="with --diameter: only enlarge images whose objects are smaller "
                         "(never shrink)")
    ap.add_argument("--ensemble", nargs="+", metavar="RUN",
                    help="score the mean maps of the models <RUN>/model_<method> of earlier "
                         "runs (no training; thresholds chosen on validation as usual); "
                         "one RUN re-scores that run's model")
    ap.add_argument("--tta", action="store_true",
                    help="also score distmap with 8-view test-time averaging")
    ap.add_argument("--record", action="store_true",
                    help="also add this run's rows to results/segmentation-dsb.json "
                         "(then run benchmarks/results_page.py)")
    args = ap.parse_args(argv)
    if args.enlarge_only and not args.diameter:
        ap.error("--enlarge-only needs --diameter")
    if args.record and args.quick:
        ap.error("--record keeps full runs only, not --quick smoke runs")
    if args.scale_tta and (args.diameter or args.scale != 1):
        ap.error("--scale-tta averages fixed scales: give it without --diameter / --scale")
    split = make_split(args.data, SPLIT)
    if args.quick:
        split = {k: v[:6] for k, v in split.items()}
        args.steps, args.epochs = 6, 2
    print({k: len(v) for k, v in split.items()}, flush=True)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    folders = {k: link_folder(args.data, v, out / "data" / k) for k, v in split.items()}
    loaded = {k: load_items(*folders[k], ndim=2) for k in split}
    truths = {k: label_images(loaded[k][1]) for k in ("val", "test")}
    results: list[dict] = []
    chosen: dict[str, dict] = {}
    sizing: dict[str, float] = {}
    for name in [m for m in args.methods.split(",") if m]:
        print(f"== {name}", flush=True)
        if args.ensemble:
            model, train_s = combine([load_model(Path(r) / f"model_{name}")
                                      for r in args.ensemble], None), None
        elif args.skip_train:
            model, train_s = load_model(out / f"model_{name}"), None
        else:
            model, train_s = train(name, loaded, out, args)
        def extract_back(item, params, model=model):
            """Labels of (maps, image shape): extracted, then back on the image grid."""
            dense, shape = item
            return unscale(extract_with(model, dense, params), shape)

        for tta in (False, True) if args.tta and name in TTA_OK else (False,):
            several = args.ensemble and len(args.ensemble) > 1
            label = f"{name} ensemble of {len(args.ensemble)}" if several else name
            label += " + 8-view TTA" if tta else ""
            if args.scale != 1:
                label += f" (images x{args.scale:g})"
            if args.scale_tta:
                label += f" (mean of scales 1, {', '.join(f'{f:g}' for f in args.scale_tta)})"
            if args.diameter:
                label += (f" (objects under {args.diameter:g} px enlarged)" if args.enlarge_only
                          else f" (objects resized to {args.diameter:g} px)")
            maps, seconds = {}, {}
            for s in ("val", "test"):
                factors, sizing_s = args.scale, 0.0
                if args.diameter:
                    factors, sizing_s, sizing[s] = sized(model, loaded[s][0], truths[s],
                                                         args.diameter,
                                                         1.0 if args.enlarge_only else SHRINK_LIMIT)
                if args.scale_tta:
                    dense, seconds[s] = multiscale_maps(model, loaded[s][0], args.scale_tta,
                                                        tta)
                else:
                    dense, seconds[s] = dense_maps(model, loaded[s][0], tta, factors)
                seconds[s] += sizing_s
                maps[s] = [(d, x.shape[1:]) for d, x in zip(dense, loaded[s][0], strict=True)]
            best, _val_obj = tune(extract_back, maps["val"], truths["val"], GRIDS[name])
            chosen[label] = best
            for s in ("val", "test"):
                t0 = time.time()
                preds = [extract_back(m, best) for m in maps[s]]
                post = time.time() - t0
                per_image_rows(out, label, s, split[s], truths[s], preds)
                results.append({"source": label, "split": s, **score(truths[s], preds),
                                "train_s": train_s, "predict_s_per_image":
                                (seconds[s] + post) / len(preds), "params": best,
                                "epochs": model.qc.get("epochs_run"),
                                "size_factor_log2_error": sizing.get(s),
                                "best_epoch": model.qc.get("best_epoch")})
        print(f"  {name}: {[r for r in results if r['source'].startswith(name)]}", flush=True)
        save(out, results, chosen, args)
    if not args.no_baseline:
        print("== classical baseline", flush=True)
        results += baseline_rows(loaded, truths, chosen)
    results += peer_rows(split, truths)
    save(out, results, chosen, args)
    cols = ["source", "split", "ap@0.5", "ap@0.7", "ap@0.75", "ap@0.9", "f1@0.5",
            "mean_image_ap@0.5", "mean_image_ap@0.75", "mean_image_ap@0.9", "pq@0.5",
            "train_s", "predict_s_per_image"]
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(results)
    print("| " + " | ".join(cols) + " |")
    for r in results:
        print("| " + " | ".join(f"{r.get(c):.3f}" if isinstance(r.get(c), float) else
                                str(r.get(c)) for c in cols) + " |")
    if args.record:
        command = command_line(__file__, sys.argv[1:] if argv is None else argv)
        print(f"recorded in {record(out, results, command)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
