"""Benchmark: nucleus models for H&E-like and brightfield images, by fine-tuning.

Not part of the test suite (it reads the DSB2018 data set and trains for minutes).

Question
    The shipped fluorescence model ``nuclei-fluo`` finds almost no nuclei in DSB2018's
    H&E-like (``color``) and brightfield (``grayscale_brightbg``) images. Does
    fine-tuning it on a few annotated images of such a kind beat both the model as
    shipped and a network trained from scratch on the same images? And which start
    makes the best model for both kinds from all their training images?

Data
    DSB2018 stage1_train (CC0; ``/work/shared/data/dsb2018-stage1-train``, see its
    PROVENANCE.md): the 91 ``color`` and 14 ``grayscale_brightbg`` images. Colour images
    are made grey as a user would (the mean of R, G and B, rounded to 8 bits); every
    model here takes one channel.

Split
    ``benchmarks/splits/dsb_bright_split.csv``, drawn once (seed 2018) and stratified by
    kind: 60 % train, 20 % validation, 20 % test of each kind (color 55 / 18 / 18,
    brightfield 8 / 3 / 3). Test images are never used for a choice.

Runs (all through microsight's public API, as a user would run them)
    - ``pretrained``: ``nuclei-fluo`` as shipped, its thresholds re-chosen on the
      validation images (``microsight tune``).
    - ``scratch-N`` / ``finetune-N``: ``microsight train distmap`` on the first N
      training images of ``--study-kind`` (a seeded draw), with the validation images of
      that kind, from random weights or ``--init-from nuclei-fluo``; same network,
      same steps.
    - ``scratch-all`` / ``finetune-all``: the same on every training image of both
      kinds, validated on both kinds' validation images.
    Training chooses each model's post-processing thresholds on its validation images.
    With ``--invert`` every run inverts its inputs (``data.normalization.invert``; for
    ``pretrained`` the stored percentiles are swapped, which is what that setting
    stores), so that dark nuclei on a bright background look like fluorescence.

Scores: mean over images and pooled AP at IoU 0.5 and 0.75 (StarDist-style matching),
per kind and over both kinds, on validation and on test.

Run::

    python benchmarks/finetune_dsb.py --out /work/runs/finetune --steps 2000 --record
    python benchmarks/finetune_dsb.py --out /work/runs/finetune-inv --invert --record
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
from skimage import io as skio

from microsight.api import copy_pretrained, load_model, predict, train, tune
from microsight.api.training import fine_tune_base
from microsight.metrics.segmentation import matching, pool_matching

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import command_line, write_result

REPO = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/dsb2018-stage1-train")
SPLIT = REPO / "benchmarks" / "splits" / "dsb_bright_split.csv"
KINDS = {"color": "H&E", "grayscale_brightbg": "BF"}
SEED = 2018
RUNS = ("pretrained", "scratch-N", "finetune-N", "scratch-all", "finetune-all")


def make_split(data: Path, path: Path) -> dict[str, dict[str, list[str]]]:
    """``{kind: {split: ids}}`` from the stored split, drawn (seeded) the first time."""
    if not path.is_file():
        with open(data / "index.csv", newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["appearance"] in KINDS]
        rng = np.random.default_rng(SEED)
        lines = []
        for kind in KINDS:
            ids = sorted(r["image_id"] for r in rows if r["appearance"] == kind)
            order = rng.permutation(len(ids))
            n_test = n_val = round(0.2 * len(ids))
            for rank, i in enumerate(order):
                part = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
                lines.append((ids[i], kind, part))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["image_id", "appearance", "split"])
            w.writerows(sorted(lines))
    out: dict[str, dict[str, list[str]]] = {k: {"train": [], "val": [], "test": []}
                                            for k in KINDS}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            out[r["appearance"]][r["split"]].append(r["image_id"])
    return out


def write_folder(data: Path, ids: list[str], folder: Path) -> Path:
    """``folder``/images (grey uint8 TIFF) and ``folder``/labels (uint16 TIFF)."""
    for sub in ("images", "labels"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in ids:
        image = skio.imread(data / "images" / f"{i}.png")
        if image.ndim == 3:
            image = np.rint(image[..., :3].mean(axis=-1)).astype(np.uint8)
        tifffile.imwrite(folder / "images" / f"{i}.tif", image)
        tifffile.imwrite(folder / "labels" / f"{i}.tif",
                         skio.imread(data / "labels" / f"{i}.png").astype(np.uint16))
    return folder


def prepare(data: Path, split: dict, out: Path, study: str, n: int) -> dict[str, Path]:
    """Every folder the runs read, written once under ``out``/data."""
    base = out / "data"
    if (base / "done").is_file():
        return json.loads((base / "done").read_text(), object_hook=lambda d: {
            k: Path(v) for k, v in d.items()})
    if base.exists():
        shutil.rmtree(base)
    chosen = sorted(np.random.default_rng(SEED).permutation(split[study]["train"])[:n])
    folders = {"train-N": write_folder(data, chosen, base / "train-N"),
               "train": write_folder(data, [i for k in KINDS for i in split[k]["train"]],
                                     base / "train"),
               "val": write_folder(data, [i for k in KINDS for i in split[k]["val"]],
                                   base / "val"),
               "test": write_folder(data, [i for k in KINDS for i in split[k]["test"]],
                                    base / "test")}
    for kind in KINDS:
        for part in ("val", "test"):
            folders[f"{part}-{kind}"] = write_folder(data, split[kind][part],
                                                    base / f"{part}-{kind}")
    (base / "done").write_text(json.dumps({k: str(v) for k, v in folders.items()}))
    return folders


def score(model, folder: Path) -> dict[str, float]:
    """Mean-over-images and pooled AP@0.5 / 0.75 of ``model`` on ``folder``, s/image."""
    per, seconds = [], 0.0
    names = sorted((folder / "images").iterdir())
    for path in names:
        t0 = time.perf_counter()
        labels = predict(model, tifffile.imread(path), axes="YX", progress=False,
                         check=False)
        seconds += time.perf_counter() - t0
        per.append(matching(tifffile.imread(folder / "labels" / path.name), labels,
                            (0.5, 0.75)))
    pooled = pool_matching(per)
    out = {f"img AP@{t:g}": round(float(np.mean([r[t]["ap"] for r in per])), 3)
           for t in (0.5, 0.75)}
    out |= {f"AP@{t:g}": round(pooled[t]["ap"], 3) for t in (0.5, 0.75)}
    out["s/image"] = round(seconds / len(names), 3)
    return out


def scores(model_dir: Path, folders: dict[str, Path]) -> dict[str, dict[str, float]]:
    """Validation and test scores over both kinds and per kind (``H&E img AP@0.5``...)."""
    model = load_model(model_dir)
    result = {}
    for part in ("val", "test"):
        values = score(model, folders[part])
        if part == "val":
            values.pop("s/image")
        for kind, short in KINDS.items():
            one = score(model, folders[f"{part}-{kind}"])
            values |= {f"{short} {k}": one[k] for k in ("img AP@0.5", "img AP@0.75")}
        result[part] = values
    return result


def run_one(name: str, folders: dict[str, Path], out: Path, args: argparse.Namespace
            ) -> tuple[Path, float | None]:
    """Train (or tune) one run; its model folder and training seconds."""
    model_dir = out / "models" / name
    if (model_dir / "weights.safetensors").is_file() and not args.retrain:
        return model_dir, None
    if model_dir.exists():
        shutil.rmtree(model_dir)
    if name == "pretrained":
        copy_pretrained(args.base, model_dir)
        if args.invert:
            # What inversion alone gives: the stored percentiles swapped, as training
            # with data.normalization.invert stores them.
            norm = json.loads((model_dir / "normalization.json").read_text())
            norm["p_low"], norm["p_high"] = norm["p_high"], norm["p_low"]
            (model_dir / "normalization.json").write_text(json.dumps(norm))
        tune(model_dir, folders["val"] / "images", folders["val"] / "labels", axes="YX",
             progress=False)
        return model_dir, None
    few = name.endswith("-N")
    config = fine_tune_base(args.base)  # same network and normalization for both starts
    config["data"]["normalization"]["invert"] = args.invert
    config["training"] = {"learning_rate": args.lr_finetune if name.startswith("finetune")
                          else args.lr_scratch, "early_stopping_patience": 100,
                          "seed": args.seed}
    val = folders[f"val-{args.study_kind}"] if few else folders["val"]
    train_dir = folders["train-N"] if few else folders["train"]
    t0 = time.perf_counter()
    train("distmap", train_dir / "images", train_dir / "labels", out=model_dir,
          config=config, steps=args.steps if few else args.steps_all,
          init_from=args.base if name.startswith("finetune") else None,
          val_input=val / "images", val_target=val / "labels", progress=False)
    return model_dir, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--base", default="nuclei-fluo", help="the model fine-tuned")
    ap.add_argument("--study-kind", default="color", choices=list(KINDS))
    ap.add_argument("-n", "--n-images", type=int, default=10)
    ap.add_argument("--steps", type=int, default=2000, help="steps of the N-image runs")
    ap.add_argument("--steps-all", type=int, default=4000, help="steps of the -all runs")
    ap.add_argument("--lr-finetune", type=float, default=3e-4)
    ap.add_argument("--lr-scratch", type=float, default=1e-3)
    ap.add_argument("--invert", action="store_true",
                    help="invert the inputs (data.normalization.invert): dark nuclei on a "
                         "bright background then look like fluorescence")
    ap.add_argument("--seed", type=int, default=0,
                    help="training seed (weights, patches); the data split stays the same")
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=RUNS)
    ap.add_argument("--retrain", action="store_true", help="train runs already done again")
    ap.add_argument("--record", action="store_true",
                    help="add the rows to results/finetune-dsb.json")
    args = ap.parse_args(argv)
    split = make_split(args.data, SPLIT)
    print({k: {p: len(v) for p, v in s.items()} for k, s in split.items()}, flush=True)
    folders = prepare(args.data, split, args.out, args.study_kind, args.n_images)
    rows, command = [], command_line(__file__, sys.argv[1:] if argv is None else argv)
    study = KINDS[args.study_kind]
    for name in args.runs:
        print(f"== {name}", flush=True)
        model_dir, seconds = run_one(name, folders, args.out, args)
        result = scores(model_dir, folders)
        print(f"  {name}: {result}", flush=True)
        label = {"pretrained": f"{args.base} as shipped (thresholds re-chosen)",
                 "scratch-N": f"from scratch on {args.n_images} {study} images",
                 "finetune-N": f"{args.base} fine-tuned on {args.n_images} {study} images",
                 "scratch-all": "from scratch on all training images",
                 "finetune-all": f"{args.base} fine-tuned on all training images"}[name]
        label += ", inputs inverted" if args.invert else ""
        label += f", seed {args.seed}" if args.seed and name != "pretrained" else ""
        rows.append({"model": label, "kind": "microsight", "command": command,
                     "recipe": None, "val": result["val"], "test": result["test"],
                     "train_s": None if seconds is None else round(seconds)})
        (args.out / "results.json").write_text(json.dumps(rows, indent=1))
    if args.record:
        metrics = {"img AP@0.5": "mean over images of the per-image AP at IoU 0.5",
                   "img AP@0.75": "mean over images of the per-image AP at IoU 0.75",
                   "AP@0.5": "AP at IoU 0.5, pooled over the images",
                   "AP@0.75": "AP at IoU 0.75, pooled over the images",
                   "s/image": "seconds of prediction per test image (2 threads)"}
        for short, words in (("H&E", "H&E-like"), ("BF", "brightfield")):
            for t in ("0.5", "0.75"):
                metrics[f"{short} img AP@{t}"] = (f"mean over the {words} images of the "
                                                  f"per-image AP at IoU {t}")
        print(write_result(
            "finetune-dsb", rows, metrics=metrics,
            title="Nuclei in H&E-like and brightfield images: shipped, fine-tuned, scratch",
            data="DSB2018 stage 1 training set: the 91 `color` (H&E-like) and 14 "
                 "`grayscale_brightbg` images, made grey (mean of R, G, B)",
            split="`benchmarks/splits/dsb_bright_split.csv` (seed 2018, stratified by "
                  "kind): H&E 55 / 18 / 18, brightfield 8 / 3 / 3 train / val / test; "
                  f"the {args.n_images}-image runs use a seeded draw of the H&E training "
                  "images"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
