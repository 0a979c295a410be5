"""Benchmark: label-free prediction of DAPI, MAP2 and NFH from a phase-contrast z-stack.

Not part of the test suite (it needs the external data and trains for many minutes).

Data
    In silico labeling (Christiansen et al. 2018), Condition B, well A4: one field of
    768 x 1024 pixels, 13 phase-contrast planes (input) and confocal max-projections of
    DAPI, MAP2 and NFH (targets), 16-bit PNG, read from ``--data`` (default
    ``/work/shared/data/isl-finkbeiner-conditionB-wellA4``; see its PROVENANCE.md). The
    planes are stacked into a ZYX TIFF (the model reads its planes as channels,
    ``z_as_channels``) and the targets into a CYX TIFF under ``<out>/data/``.

Split (rows of the one field; fixed, stated here)
    - train: rows 0-511 (512 x 1024);
    - validation: rows 512-639 (128 x 1024): scores every epoch, picks the kept weights;
    - test: rows 640-767 (128 x 1024): scored once at the end, never used to choose.

Protocol
    - ``labelfree`` U-Net: 13 planes in, 3 targets out, L1 loss, dataset percentile
      normalization per channel, flips/rotations, patches centred half of the time on
      bright target pixels; epochs of ``--epoch-steps`` steps, the epoch with the
      lowest validation loss is kept.
    - ``labelfree`` with ``gan: true``: the kept U-Net refined by a conditional PatchGAN
      (pix2pix) for ``--gan-steps`` more steps, selected on validation the same way.
    - Baseline: per-pixel linear regression of each target on the 13 planes and their
      Gaussian-smoothed copies (sigma 2 and 6), fitted on the training rows.
    - Scores: pixel-wise Pearson r per target (and SSIM, NRMSE), on validation and test
      separately.
    - ``--ensemble RUN [RUN ...]``: no training; the U-Nets of earlier runs (``RUN/unet``)
      scored as one ensemble (the mean of their predictions), e.g. models trained with
      and without flips, whose errors differ.

Run::

    python benchmarks/labelfree_isl.py                 # ~25 min on a shared 2-core CPU
    python benchmarks/labelfree_isl.py --fast          # smoke run (minutes)
    python benchmarks/labelfree_isl.py --ensemble bench_out/run_a bench_out/run_b \
        --out bench_out/ensemble_ab                    # score earlier runs' mean
    python benchmarks/labelfree_isl.py --steps 6000 --patch 256 --batch 16 --depth 4 \
        --base 32                                      # the size of a GPU run
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from microsight import evaluate, load_model, train
from microsight.io import write_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import command_line, write_result

DATA = Path("/work/shared/data/isl-finkbeiner-conditionB-wellA4")
TARGETS = ("DAPI", "MAP2", "NFH")
ROWS = {"train": (0, 512), "validation": (512, 640), "test": (640, 768)}


def prepare(data: Path, out: Path) -> dict[str, tuple[Path, Path]]:
    """Stack the planes and targets and cut the regions; return (input, target) per part."""
    planes = sorted(data.glob("input_PHASE_CONTRAST_z*.png"))
    if len(planes) != 13:
        raise SystemExit(f"expected 13 phase-contrast planes in {data}, found {len(planes)}")
    phase = np.stack([iio.imread(p) for p in planes])
    fluo = np.stack([iio.imread(data / f"target_MAXPROJECT_{t}_CONFOCAL.png") for t in TARGETS])
    folder = out / "data"
    parts = {
        # The training file holds train + validation rows; the model holds out its bottom
        # 128 rows (val_fraction 0.2), i.e. exactly the validation region.
        "fit": (0, 640),
        "validation": ROWS["validation"],
        "test": ROWS["test"],
    }
    paths = {}
    for name, (r0, r1) in parts.items():
        x = folder / name / "input" / "field.tif"
        y = folder / name / "target" / "field.tif"
        write_image(x, phase[:, r0:r1], "ZYX")
        write_image(y, fluo[:, r0:r1], "CYX")
        paths[name] = (x.parent, y.parent)
    return paths


def unet_config(args: argparse.Namespace) -> dict:
    return {
        "name": "isl-labelfree-unet",
        "method": {"method": "labelfree", "depth": args.depth, "base_channels": args.base,
                   "batch_norm": True, "loss": "l1", "z_as_channels": True,
                   "target_names": list(TARGETS)},
        "data": {"patch_size": [args.patch, args.patch], "batch_size": args.batch,
                 "val_fraction": 0.2, "foreground_fraction": 0.5,
                 "flips": not args.no_flips, "rotations": not args.no_flips},
        "training": {"learning_rate": args.lr, "steps_per_epoch": args.epoch_steps,
                     "val_tile": 128, "early_stopping_patience": None},
    }


def gan_config(args: argparse.Namespace, unet_path: Path) -> dict:
    cfg = unet_config(args)
    cfg["name"] = "isl-labelfree-gan"
    cfg["method"].update({"gan": True, "refine_from": str(unet_path),
                          "gan_weight": args.gan_weight, "disc_channels": 16,
                          "disc_layers": 3})
    cfg["training"]["learning_rate"] = args.lr / 4
    cfg["training"]["steps_per_epoch"] = max(args.gan_steps // 3, 1)
    return cfg


def scores(model, parts: dict, out: Path, tag: str) -> list[dict]:
    """Pearson r / SSIM / NRMSE per target on validation and test (a list of models:
    their ensemble)."""
    rows = []
    for split in ("validation", "test"):
        x, y = parts[split]
        result = evaluate(model, x, y, report=out / f"report_{tag}_{split}.html")
        for r in result.summary:
            row = {"model": tag, "split": split, "source": r["source"]}
            for t in TARGETS:
                row[f"pearson {t}"] = round(r[f"pearson {t}"], 4)
                row[f"ssim {t}"] = round(r[f"ssim {t}"], 4)
                row[f"nrmse {t}"] = round(r[f"nrmse {t}"], 4)
            rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--out", type=Path, default=Path("bench_out/labelfree_isl"))
    p.add_argument("--steps", type=int, default=300, help="U-Net optimizer steps")
    p.add_argument("--gan-steps", type=int, default=60, help="GAN refinement steps (0: none)")
    p.add_argument("--epoch-steps", type=int, default=50, help="steps between validations")
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--base", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--gan-weight", type=float, default=0.01)
    p.add_argument("--no-flips", action="store_true",
                   help="train without flips/rotations: the targets sit a few pixels off the "
                        "input (see the registration check), and a flipped patch turns that "
                        "offset around, so the network cannot learn it")
    p.add_argument("--ensemble", type=Path, nargs="+", default=None, metavar="RUN",
                   help="no training: score the mean of the U-Nets of these earlier runs")
    p.add_argument("--fast", action="store_true", help="smoke run: a few steps")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted U-Net run in --out up to --steps")
    p.add_argument("--reuse-unet", action="store_true",
                   help="score the U-Net already trained in --out instead of training one")
    p.add_argument("--no-gan", action="store_true",
                   help="skip the GAN refinement (--gan-steps still sets the control's length)")
    p.add_argument("--record", action="store_true",
                   help="also add this run's rows to results/labelfree-isl.json "
                        "(then run benchmarks/results_page.py)")
    p.add_argument("--control", action="store_true",
                   help="also continue the U-Net with the pixel loss only, for as many steps "
                        "and the same schedule as the GAN refinement")
    args = p.parse_args()
    if args.record and args.fast:
        p.error("--record keeps full runs only, not --fast smoke runs")
    if args.fast:
        args.steps, args.gan_steps, args.epoch_steps, args.patch = 6, 3, 3, 64
        args.out = args.out.with_name(args.out.name + "_fast")
    if args.out.exists() and not (args.resume or args.reuse_unet):
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    parts = prepare(args.data, args.out)
    if args.ensemble:
        members = [load_model(run / "unet") for run in args.ensemble]
        write_results(args, scores(members, parts, args.out, "ensemble"), {}, members[0])
        return
    t0 = time.perf_counter()
    if args.reuse_unet:
        unet = load_model(args.out / "unet")
    else:
        unet = train("labelfree", *parts["fit"], out=args.out / "unet",
                     config=unet_config(args), steps=args.steps, progress=True,
                     resume=args.resume)
    timing = {"unet_train_s": round(time.perf_counter() - t0, 1)}
    rows = scores(unet, parts, args.out, "unet")
    if args.control and args.gan_steps:
        cfg = gan_config(args, args.out / "unet")
        cfg["name"] = "isl-labelfree-continued"
        cfg["method"]["gan"] = False
        t0 = time.perf_counter()
        cont = train("labelfree", *parts["fit"], out=args.out / "continued", config=cfg,
                     steps=args.gan_steps, progress=True)
        timing["continued_train_s"] = round(time.perf_counter() - t0, 1)
        rows += scores(cont, parts, args.out, "continued")
    if args.gan_steps and not args.no_gan:
        t0 = time.perf_counter()
        gan = train("labelfree", *parts["fit"], out=args.out / "gan",
                    config=gan_config(args, args.out / "unet"), steps=args.gan_steps,
                    progress=True)
        timing["gan_train_s"] = round(time.perf_counter() - t0, 1)
        rows += scores(gan, parts, args.out, "gan")
    write_results(args, rows, timing, unet)


def record(rows: list[dict], timing: dict, run: str) -> Path:
    """Add this run's rows to ``results/labelfree-isl.json`` (the table of RESULTS.md):
    one row per model and source, validation and test apart."""
    seconds = {"unet": "unet_train_s", "continued": "continued_train_s", "gan": "gan_train_s"}
    out: dict[tuple[str, str], dict] = {}
    for r in rows:
        network, linear = r["source"] == "network", r["source"].startswith("linear")
        name = r["model"] if network else r["source"] if linear else f"{r['model']}: {r['source']}"
        row = out.setdefault((r["model"], r["source"]), {
            "model": f"{name} ({run})", "kind": "baseline" if linear else "microsight",
            "command": command_line(__file__, sys.argv[1:]), "recipe": None,
            "train_s": timing.get(seconds.get(r["model"], "")) if network else None})
        part = "val" if r["split"] == "validation" else "test"
        row[part] = {f"r {t}": r[f"pearson {t}"] for t in TARGETS}
    # Baselines are scored next to every model of the run: keep one row each.
    return write_result("labelfree-isl", list({r["model"]: r for r in out.values()}.values()))


def write_results(args: argparse.Namespace, rows: list[dict], timing: dict, unet) -> None:
    keys = list(rows[0])
    with open(args.out / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    summary = {"args": {k: str(v) for k, v in vars(args).items()}, "timing": timing,
               "split_rows": ROWS, "rows": rows,
               "registration": unet.qc["data"].get("registration"),
               "unet_best_epoch": unet.qc.get("best_epoch")}
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(timing))
    print("| model | split | source | " + " | ".join(f"r {t}" for t in TARGETS) + " |")
    for r in rows:
        print(f"| {r['model']} | {r['split']} | {r['source']} | "
              + " | ".join(f"{r[f'pearson {t}']:.3f}" for t in TARGETS) + " |")
    if args.record:
        print(f"recorded in {record(rows, timing, args.out.name)}")


if __name__ == "__main__":
    main()
