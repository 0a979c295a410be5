"""Train StarDist 2D from scratch on the DSB2018 fluorescence split and predict val/test.

Runs INSIDE the StarDist environment made by ``setup_stardist_venv.sh``, never in
microsight's own one::

    bench_out/peers-venvs/stardist/bin/python benchmarks/peers/stardist_runner.py \
        --epochs 6 --steps 100            # real run
    bench_out/peers-venvs/stardist/bin/python benchmarks/peers/stardist_runner.py \
        --epochs 400 --steps 100 --time-budget 1600   # as long as microsight's distmap trained
    bench_out/peers-venvs/stardist/bin/python benchmarks/peers/stardist_runner.py \
        --smoke                           # 2 epochs x 3 steps, 4 images per split

Recipe: StarDist's documented 2D training example, unchanged except for the budget:
32 rays, grid (2, 2), one input channel, images normalized to percentiles 1 / 99.8 per
image, label holes filled, random 90-degree rotations / flips plus a random intensity
scale/offset and weak Gaussian noise as augmentation, the default U-Net, loss and learning
rate schedule; the validation split is used for the validation loss (best weights are
kept) and ``optimize_thresholds`` (probability and NMS thresholds). The test split is only
predicted and scored, never used for a choice. Nothing is downloaded (no pretrained
weights); TensorBoard logging is off.

Writes ``bench_out/seg_peers/stardist/`` (see ``dsb_common.py``): ``{val,test}/*.tif``,
``times.json`` and ``peer_scores.json`` (StarDist's ``matching_dataset``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
from dsb_common import (
    DATA,
    OUT,
    SPLIT,
    load_image,
    load_labels,
    predict_split,
    read_split,
    write_json,
)
from score_peers import score_tool, summary

# The augmenter and StarDist's own patch sampling both draw from numpy's global random
# state, so one np.random.seed call makes a run repeatable: hence the legacy calls.
# ruff: noqa: NPY002


def _augment(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # the augmentation of StarDist's training example: dihedral transforms of image and
    # labels together, then a random gain/offset and weak noise on the image only
    if np.random.rand() < 0.5:
        x, y = x.T, y.T
    for axis in (0, 1):
        if np.random.rand() < 0.5:
            x, y = np.flip(x, axis), np.flip(y, axis)
    x = x * np.random.uniform(0.6, 2.0) + np.random.uniform(-0.2, 0.2)
    x = x + 0.02 * np.random.uniform() * np.random.normal(size=x.shape)
    return x.astype(np.float32), np.ascontiguousarray(y)


def _time_budget(seconds: float | None):
    """A Keras callback that ends training after the epoch that crosses ``seconds``."""
    import tensorflow as tf

    class TimeBudget(tf.keras.callbacks.Callback):
        """Ends training after the epoch that crosses a wall-clock budget (None: never)."""

        def __init__(self, seconds: float | None):
            super().__init__()
            self.seconds, self.epochs_run, self.start = seconds, 0, time.perf_counter()

        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.epochs_run = epoch + 1
            if self.seconds and time.perf_counter() - self.start > self.seconds:
                self.model.stop_training = True

    return TimeBudget(seconds)


def _load(ids: list[str], data: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from csbdeep.utils import normalize
    from stardist import fill_label_holes
    xs = [normalize(load_image(i, data), 1, 99.8, axis=(0, 1)).astype(np.float32) for i in ids]
    ys = [fill_label_holes(load_labels(i, data)) for i in ids]
    return xs, ys


def run(args: argparse.Namespace) -> dict:
    """Train, choose thresholds on val, predict val and test, write times and scores."""
    import tensorflow as tf
    from csbdeep.utils import normalize
    from stardist.models import Config2D, StarDist2D

    np.random.seed(args.seed)
    tf.random.set_seed(args.seed)
    split = read_split(args.split, limit=4 if args.smoke else None)
    out = args.out / "stardist"
    x_trn, y_trn = _load(split["train"], args.data)
    x_val, y_val = _load(split["val"], args.data)

    conf = Config2D(n_rays=32, grid=(2, 2), n_channel_in=1, use_gpu=False,
                    train_patch_size=(args.patch, args.patch), train_batch_size=args.batch,
                    train_epochs=args.epochs, train_steps_per_epoch=args.steps,
                    train_tensorboard=False)
    model = StarDist2D(conf, name="model", basedir=str(out))
    model.prepare_for_training()
    budget = _time_budget(args.time_budget)
    model.callbacks.append(budget)
    t0 = time.perf_counter()
    model.train(x_trn, y_trn, validation_data=(x_val, y_val), augmenter=_augment,
                epochs=args.epochs, steps_per_epoch=args.steps)
    train_s = time.perf_counter() - t0
    args.epochs = budget.epochs_run
    t0 = time.perf_counter()
    thresholds = model.optimize_thresholds(x_val, y_val)
    thresh_s = time.perf_counter() - t0

    def predict(img: np.ndarray) -> np.ndarray:
        labels, _ = model.predict_instances(normalize(img, 1, 99.8, axis=(0, 1)))
        return labels

    pred = {s: predict_split(predict, split[s], out / s, args.data) for s in ("val", "test")}
    steps = args.epochs * args.steps
    times = {
        "tool": "stardist", "versions": _versions(), "machine": platform.processor() or "cpu",
        "smoke": args.smoke, "split_file": str(args.split),
        "n_images": {k: len(v) for k, v in split.items()},
        "budget": {"epochs": args.epochs, "steps_per_epoch": args.steps,
                   "time_budget_s": args.time_budget,
                   "optimizer_steps": steps, "batch": args.batch,
                   "patch": [args.patch, args.patch],
                   "patches_seen": steps * args.batch,
                   "megapixels_seen": round(steps * args.batch * args.patch ** 2 / 1e6, 1)},
        "config": {"n_rays": 32, "grid": [2, 2], "normalize_percentiles": [1, 99.8],
                   "train_learning_rate": conf.train_learning_rate,
                   "best_weights_by": "validation loss (StarDist default checkpoint)"},
        "thresholds": {"prob": float(thresholds["prob"]), "nms": float(thresholds["nms"]),
                       "chosen_on": "val (optimize_thresholds)"},
        "train_seconds": round(train_s, 1),
        "optimize_thresholds_seconds": round(thresh_s, 1),
        "train_steps_per_s": round(steps / train_s, 3),
        "predict": pred,
    }
    write_json(times, out / "times.json")
    return times


def _versions() -> dict:
    import importlib.metadata as md
    return {p: md.version(p) for p in ("stardist", "csbdeep", "tensorflow-cpu")}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--steps", type=int, default=100, help="optimizer steps per epoch")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                    help="stop after the epoch that passes this much training wall clock "
                         "(to match another model's training time); --epochs is the cap")
    ap.add_argument("--smoke", action="store_true",
                    help="4 images per split, 2 epochs x 3 steps (overrides the budget)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", type=Path, default=SPLIT)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.smoke:
        args.epochs, args.steps = 2, 3
        if args.out == OUT:  # keep smoke output apart from the real run's
            args.out = OUT.parent / "seg_peers_smoke"
    times = run(args)
    print(f"train {times['train_seconds']} s ({times['budget']['optimizer_steps']} steps), "
          f"thresholds {times['thresholds']}")
    print(summary(score_tool(args.out / "stardist", args.data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
