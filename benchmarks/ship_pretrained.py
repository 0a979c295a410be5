"""Turn a trained nucleus model into a shipped pretrained model, with its card.

Not part of the test suite (it reads the DSB2018 data set). Steps, all through the
public API a user has (so the card's numbers are what a user gets):

1. copy the bundle (weights stored as float16, no checkpoints) to
   ``src/microsight/pretrained/<name>/`` under a temporary name;
2. choose its post-processing thresholds on the validation split
   (``microsight tune``; test is never used for a choice);
3. predict every validation and test image with ``microsight.predict`` and score
   mean-over-images and pooled AP at IoU 0.5 / 0.75 / 0.9, and seconds per image;
4. write ``pretrained.yaml`` (the card) and its row of ``results/segmentation-dsb.json``.

Run::

    python benchmarks/ship_pretrained.py --run /work/runs/nuclei-fluo --name nuclei-fluo \
        --recipe recipes/distmap-dsb-contact.yaml --train-command "python benchmarks/..."
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from safetensors.torch import load_file, save_file
from skimage import io as skio

from microsight.api import load_model, predict, tune
from microsight.engine.bundle import Model
from microsight.metrics.segmentation import matching, pool_matching

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import command_line, write_result

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "src" / "microsight" / "pretrained"
THRESHOLDS = (0.5, 0.75, 0.9)
SKIP = {"checkpoints", "history.csv"}
DATA = Path("/work/shared/data/dsb2018-stage1-train")


def copy_fp16(bundle: Path, dest: Path) -> None:
    """The bundle's files, weights as float16 (half the size; restored to float32 on load)."""
    dest.mkdir(parents=True)
    for item in bundle.iterdir():
        if item.name in SKIP or item.is_dir():
            continue
        if item.name == "weights.safetensors":
            state = {k: v.half() if v.is_floating_point() else v
                     for k, v in load_file(item).items()}
            save_file(state, dest / item.name)
            (dest / item.name).chmod(0o644)  # safetensors writes 0600; others must read it
        else:
            shutil.copy2(item, dest / item.name)
    if (bundle / "history.csv").is_file():  # the training curve belongs to the card
        shutil.copy2(bundle / "history.csv", dest / "history.csv")


def kind_folder(kind: str, out: Path) -> Path:
    """images/ and labels/ links to every DSB2018 image of one appearance kind."""
    import csv

    with open(DATA / "index.csv", newline="") as fh:
        ids = [r["image_id"] for r in csv.DictReader(fh) if r["appearance"] == kind]
    folder = out / kind
    for sub in ("images", "labels"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for i in ids:
            link = folder / sub / f"{i}.png"
            if not link.exists():
                link.symlink_to(DATA / sub / f"{i}.png")
    return folder


def grey(image: np.ndarray) -> np.ndarray:
    """One channel: the mean of R, G and B (alpha dropped), as ``microsight predict`` does."""
    return image[..., :3].mean(axis=-1) if image.ndim == 3 else image


def score(model: Path | Model, folder: Path) -> tuple[dict[str, float], int]:
    """Mean-over-images and pooled AP of ``model`` on ``folder``/{images,labels}."""
    per_image, seconds = [], 0.0
    names = sorted((folder / "images").iterdir())
    model = load_model(model)  # once, as folder prediction does: s/image is prediction alone
    for path in names:
        image = grey(skio.imread(path))
        truth = skio.imread(folder / "labels" / path.name)
        t0 = time.perf_counter()
        labels = predict(model, image, axes="YX", progress=False, check=False)
        seconds += time.perf_counter() - t0
        per_image.append(matching(truth, labels, THRESHOLDS))
    pooled = pool_matching(per_image)
    out = {}
    for t in THRESHOLDS:
        out[f"img AP@{t:g}"] = round(float(np.mean([r[t]["ap"] for r in per_image])), 3)
    for t in THRESHOLDS:
        out[f"AP@{t:g}"] = round(pooled[t]["ap"], 3)
    out["s/image"] = round(seconds / len(names), 3)
    return out, len(names)


def table_columns(results: str, val: dict, test: dict, by_kind: dict
                  ) -> tuple[dict, dict, dict[str, str] | None]:
    """The model's row for ``results/<results>.json``: the columns that table has.

    A table of its own (``segmentation-dsb``) gets every score, AP@0.9 declared; a
    table made by another benchmark keeps its columns, per-kind test scores filling
    its ``<kind> img AP@...`` columns (the card keeps everything).
    """
    path = REPO / "results" / f"{results}.json"
    if results == "segmentation-dsb" or not path.is_file():
        return val, test, {"img AP@0.9": "mean over images of the per-image AP at IoU 0.9",
                           "AP@0.9": "AP at IoU 0.9, pooled over the images"}
    declared = json.loads(path.read_text())["metrics"]
    test = test | {f"{kind} {k}": v for kind, part in by_kind.items()
                   for k, v in part.items()}
    return ({k: v for k, v in val.items() if k in declared and k != "s/image"},
            {k: v for k, v in test.items() if k in declared}, None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True,
                    help="benchmark output folder (model_distmap/, data/{train,val,test}/)")
    ap.add_argument("--model", type=Path, default=None,
                    help="the trained bundle (default: RUN/model_METHOD)")
    ap.add_argument("--method", default="distmap")
    ap.add_argument("--name", required=True)
    ap.add_argument("--aliases", nargs="*", default=[])
    ap.add_argument("--card", type=Path, required=True,
                    help="YAML with the card's words: task, data, license, intended_use, "
                         "failure_cases, citation")
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--train-command", required=True)
    ap.add_argument("--train-s", type=float, default=None)
    ap.add_argument("--other-kinds", nargs="*", default=[],
                    help="DSB2018 appearance kinds never used in training or choice, scored "
                         "as out-of-distribution data (e.g. grayscale_brightbg color)")
    ap.add_argument("--test-part", nargs="*", default=[], metavar="LABEL=FOLDER",
                    help="test images of one kind ({images,labels}/), scored apart too")
    ap.add_argument("--results", default="segmentation-dsb",
                    help="results file (results/NAME.json) that gets the model's row")
    args = ap.parse_args(argv)

    dest = SHIPPED / args.name
    staging = SHIPPED / f".{args.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    copy_fp16(args.model or args.run / f"model_{args.method}", staging)
    tuned = tune(staging, args.run / "data" / "val" / "images",
                 args.run / "data" / "val" / "labels", axes="YX", progress=False)
    print(f"thresholds chosen on validation: {tuned['params']} ({tuned['score']:.3f})")
    val, n_val = score(staging, args.run / "data" / "val")
    test, n_test = score(staging, args.run / "data" / "test")
    print(f"validation ({n_val} images): {val}\ntest ({n_test} images): {test}")
    by_kind = {}
    for part in args.test_part:
        label, _, folder = part.partition("=")
        by_kind[label], n = score(staging, Path(folder))
        by_kind[label]["images"] = n
        print(f"test, {label} ({n} images): {by_kind[label]}")
    other = {}
    for kind in args.other_kinds:
        other[kind], n = score(staging, kind_folder(kind, args.run / "data" / "other"))
        other[kind]["images"] = n
        print(f"{kind} ({n} images, never seen): {other[kind]}")
    words = yaml.safe_load(args.card.read_text())
    card = {"name": args.name, "aliases": args.aliases, **words, "method": args.method,
            "recipe": args.recipe, "command": args.train_command,
            "thresholds": tuned["params"],
            "metrics": {"validation": val, "test": test,
                        "images": {"validation": n_val, "test": n_test},
                        **({"test_by_kind": by_kind} if by_kind else {}),
                        "other_kinds_never_seen": other,
                        "measured_by": command_line(__file__, sys.argv[1:]),
                        "machine": "2-core CPU"}}
    (staging / "pretrained.yaml").write_text(yaml.safe_dump(card, sort_keys=False,
                                                            width=88))
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    row_val, row_test, declared = table_columns(args.results, val, test, by_kind)
    write_result(args.results, [{
        "model": f"{args.name} (shipped; {args.method})", "kind": "microsight",
        "command": f"{args.train_command} && {command_line(__file__, sys.argv[1:])}",
        "recipe": args.recipe,
        "val": row_val, "test": row_test, "train_s": args.train_s}], metrics=declared)
    print(f"shipped {dest} ({sum(p.stat().st_size for p in dest.iterdir()) / 2**20:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
