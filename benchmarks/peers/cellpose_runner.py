"""Train Cellpose 3 from scratch on the DSB2018 fluorescence split and predict val/test.

Runs INSIDE the Cellpose environment made by ``setup_cellpose_venv.sh``, never in
microsight's own one::

    bench_out/peers-venvs/cellpose/bin/python benchmarks/peers/cellpose_runner.py \
        --epochs 12                       # Cellpose defaults, 12 passes over the images
    bench_out/peers-venvs/cellpose/bin/python benchmarks/peers/cellpose_runner.py \
        --epochs 22 --nimg-per-epoch 8 --nimg-val-per-epoch 8 --diam-mean 17
                                          # short run on a loaded CPU (see below)
    bench_out/peers-venvs/cellpose/bin/python benchmarks/peers/cellpose_runner.py \
        --smoke                           # 2 epochs, 8 images per split

Recipe: Cellpose 3.1's own training function ``cellpose.train.train_seg`` with its defaults
(AdamW, learning rate 0.005 with its 10-epoch warm-up, weight decay 1e-5, batch 8 of
224 x 224 patches, random rotation/flip/rescale augmentation, percentile normalization,
images with fewer than 5 nuclei left out, every training image once per epoch unless
``--nimg-per-epoch`` is given) on a
network built with ``CellposeModel(pretrained_model=None, model_type=None)``: random
initial weights, nothing downloaded. Grayscale input (``channels=[0, 0]``). Diameter
handling is Cellpose's default: training rescales every image so that its median nucleus
diameter becomes ``diam_mean`` (default 30; Cellpose's own nuclei model uses 17), and
prediction (``diameter=None``) rescales by ``diam_mean`` over the mean training diameter
stored in the saved model (``diam_labels``).

A Cellpose optimizer step (6.6 M parameters, batch 8 of 224 x 224) is slow on a CPU, and
its learning rate warms up over the first 10 epochs; on a short CPU budget
``--nimg-per-epoch 8`` (one step per epoch) lets the warm-up end within the budget,
``--nimg-val-per-epoch 8`` keeps each validation pass to one batch, and
``--diam-mean 17`` (the DSB nuclei are about 22 pixels across) makes prediction
downscale the images instead of upscaling them (about 3x fewer pixels through the network
than with 30). Prediction uses the default flow
threshold 0.4 and cell-probability threshold 0.0 (Cellpose has no threshold tuning step,
so the validation split only gives the validation loss). The test split is only predicted
and scored.

Writes ``bench_out/seg_peers/cellpose/`` (see ``dsb_common.py``): ``{val,test}/*.tif``,
``times.json`` and, when the StarDist environment exists, ``peer_scores.json`` (scored by
``score_peers.py`` in that environment, so both tools are scored by the same code).
"""

from __future__ import annotations

import argparse
import logging
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from dsb_common import (
    DATA,
    OUT,
    REPO,
    SPLIT,
    load_image,
    load_labels,
    predict_split,
    read_split,
    write_json,
)

STARDIST_PY = REPO / "bench_out" / "peers-venvs" / "stardist" / "bin" / "python"
MIN_TRAIN_MASKS = 5  # train_seg's default: images with fewer nuclei are skipped
BSIZE = 224          # train_seg's default patch size


def run(args: argparse.Namespace) -> dict:
    """Train, predict val and test, write labels and ``times.json``."""
    import torch
    from cellpose import models, train

    np.random.seed(args.seed)  # noqa: NPY002 (Cellpose samples from the global state)
    torch.manual_seed(args.seed)
    split = read_split(args.split, limit=8 if args.smoke else None)
    out = args.out / "cellpose"
    x_trn = [load_image(i, args.data) for i in split["train"]]
    y_trn = [load_labels(i, args.data) for i in split["train"]]
    x_val = [load_image(i, args.data) for i in split["val"]]
    y_val = [load_labels(i, args.data) for i in split["val"]]
    n_used = sum(len(np.unique(y)) - 1 >= MIN_TRAIN_MASKS for y in y_trn)
    per_epoch = args.nimg_per_epoch or n_used
    steps = args.epochs * math.ceil(per_epoch / args.batch)

    net_model = models.CellposeModel(gpu=False, pretrained_model=None, model_type=None,
                                     diam_mean=args.diam_mean)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    path, train_losses, val_losses = train.train_seg(
        net_model.net, train_data=x_trn, train_labels=y_trn, test_data=x_val,
        test_labels=y_val, channels=[0, 0], normalize=True, n_epochs=args.epochs,
        batch_size=args.batch, min_train_masks=MIN_TRAIN_MASKS, bsize=BSIZE,
        nimg_per_epoch=args.nimg_per_epoch, nimg_test_per_epoch=args.nimg_val_per_epoch,
        save_path=str(out), model_name="model")
    train_s = time.perf_counter() - t0

    # reload the saved file, as Cellpose users do: this sets diam_labels for prediction
    model = models.CellposeModel(gpu=False, pretrained_model=str(path))

    def predict(img: np.ndarray) -> np.ndarray:
        masks, _, _ = model.eval(img, channels=[0, 0], diameter=None)
        return masks

    pred = {s: predict_split(predict, split[s], out / s, args.data) for s in ("val", "test")}
    times = {
        "tool": "cellpose", "versions": _versions(), "machine": platform.processor() or "cpu",
        "smoke": args.smoke, "split_file": str(args.split),
        "n_images": {k: len(v) for k, v in split.items()},
        "n_train_images_used": int(n_used),
        "budget": {"epochs": args.epochs, "nimg_per_epoch": per_epoch,
                   "nimg_val_per_epoch": args.nimg_val_per_epoch or len(split["val"]),
                   "steps_per_epoch": math.ceil(per_epoch / args.batch),
                   "optimizer_steps": steps, "batch": args.batch, "patch": [BSIZE, BSIZE],
                   "patches_seen": args.epochs * per_epoch,
                   "megapixels_seen": round(args.epochs * per_epoch * BSIZE ** 2 / 1e6, 1),
                   "note": "patches are cut after rescaling each image to diam_mean"},
        "config": {"pretrained_model": None, "model_type": None,
                   "diam_mean": float(model.diam_mean),
                   "diam_labels": float(model.diam_labels),
                   "optimizer": "AdamW (train_seg default), lr 0.005, weight decay 1e-5",
                   "weights_used": "last epoch (train_seg saves the final network)",
                   "train_loss_last": float(train_losses[-1]),
                   "val_loss_logged": {str(i): float(v) for i, v in enumerate(val_losses)
                                       if v}},
        "thresholds": {"flow_threshold": 0.4, "cellprob_threshold": 0.0,
                       "diameter": "None -> rescale diam_mean / diam_labels",
                       "chosen_on": "Cellpose defaults (no tuning)"},
        "train_seconds": round(train_s, 1),
        "train_seconds_note": "includes train_seg's flow computation for the labels",
        "train_steps_per_s": round(steps / train_s, 3),
        "predict": pred,
    }
    write_json(times, out / "times.json")
    return times


def _versions() -> dict:
    import importlib.metadata as md
    return {p: md.version(p) for p in ("cellpose", "torch")}


def _score(out: Path, data: Path) -> None:
    # the reference matching lives in the StarDist environment, not in Cellpose's
    if not STARDIST_PY.is_file():
        print(f"no StarDist environment at {STARDIST_PY}: run setup_stardist_venv.sh, then "
              f"score_peers.py cellpose --out {out}")
        return
    subprocess.run([str(STARDIST_PY), str(Path(__file__).with_name("score_peers.py")),
                    "cellpose", "--out", str(out), "--data", str(data)], check=True)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=12,
                    help="passes over the training images (one batch per 8 images)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--nimg-per-epoch", type=int, default=None,
                    help="training images per epoch (train_seg's nimg_per_epoch; default all)")
    ap.add_argument("--nimg-val-per-epoch", type=int, default=None,
                    help="validation images per validation pass (default all)")
    ap.add_argument("--diam-mean", type=float, default=30.0,
                    help="diameter objects are rescaled to (Cellpose: 30, its nuclei model 17)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true",
                    help="8 images per split, 2 epochs (overrides --epochs)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", type=Path, default=SPLIT)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.smoke:
        args.epochs = 2
        if args.out == OUT:  # keep smoke output apart from the real run's
            args.out = OUT.parent / "seg_peers_smoke"
    # train_seg reports its per-epoch losses only through this logger
    logging.basicConfig(format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("cellpose.train").setLevel(logging.INFO)
    times = run(args)
    print(f"train {times['train_seconds']} s ({times['budget']['optimizer_steps']} steps)")
    _score(args.out, args.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
