"""Train and apply one CAREamics 0.3.5 model for ``restoration_fmd.py`` (reference runs).

Runs INSIDE the separate CAREamics virtual environment made by
``benchmarks/setup_careamics_venv.sh`` (default ``bench_out/careamics-venv``), never in
microsight's own environment; ``restoration_fmd.py`` starts it with ``subprocess``::

    bench_out/careamics-venv/bin/python benchmarks/careamics_runner.py SPEC.json

SPEC.json (written by restoration_fmd.py)::

    {"algorithm": "n2v" | "care",
     "train_inputs": [tif, ...], "train_targets": [tif, ...] | null,
     "test_inputs": [tif, ...], "out": folder,
     "epochs": E, "steps_per_epoch": S, "patch": 64, "batch": 16, "seed": 0,
     "tile": 256, "overlap": 48}

It trains with CAREamics' public API only (``CAREamist``, ``create_advanced_n2v_config``
/ ``create_advanced_care_config``, the 0.3.5 names of the configuration factories),
keeping CAREamics' defaults (U-Net depth 2 with 32 initial channels, Adam with torch's
default lr 1e-3, ReduceLROnPlateau, mean/std normalization, flips + 90-degree rotations,
stratified random patches, 8 validation patches taken from the training images) except
for what the comparison fixes: patch size, batch size, seed, and the number of optimizer
steps = ``epochs * steps_per_epoch`` (``num_steps`` is Lightning's
``limit_train_batches``; one epoch of the training images holds far more batches than
``steps_per_epoch``, so every epoch runs exactly ``steps_per_epoch`` steps; the runner
checks ``trainer.global_step`` afterwards).

Writes into ``out``: ``pred/<name>.npy`` (float32, input intensity scale) for every test
input and ``timing.json`` (train seconds, optimizer steps, patches/s over the whole ``train()`` call
and over the training loop alone, prediction Mpx/s).

torchvision: CAREamics imports it (``torchvision.__version__`` for BioImage Model Zoo
export, ``torchvision.transforms.functional.center_crop`` in its LVAE code), but it has
no working CPU build here and N2V/CARE never call it. The runner imports lightning and
torchmetrics first (so their optional-dependency probes see no torchvision) and then
registers a minimal stand-in module with a small ``center_crop``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import types
from pathlib import Path

import lightning  # before the torchvision stand-in, see docstring
import numpy as np
import tifffile
import torch
import torchmetrics  # noqa: F401


def _center_crop(img: torch.Tensor, output_size) -> torch.Tensor:
    """Crop the last two axes of ``img`` around their centre (pads with zeros if smaller)."""
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    elif len(output_size) == 1:
        output_size = (output_size[0], output_size[0])
    th, tw = int(output_size[0]), int(output_size[1])
    h, w = img.shape[-2], img.shape[-1]
    if th > h or tw > w:
        pad_h, pad_w = max(th - h, 0), max(tw - w, 0)
        img = torch.nn.functional.pad(
            img, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        h, w = img.shape[-2], img.shape[-1]
    top = int(round((h - th) / 2.0))
    left = int(round((w - tw) / 2.0))
    return img[..., top:top + th, left:left + tw]


def install_torchvision_standin() -> None:
    """Register ``torchvision`` (+ ``transforms``, ``transforms.functional``, ``v2``)."""
    if "torchvision" in sys.modules:
        return
    tv = types.ModuleType("torchvision")
    tv.__version__ = "0.0.0+microsight-benchmark-standin"
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.center_crop = _center_crop
    v2 = types.ModuleType("torchvision.transforms.v2")
    v2_functional = types.ModuleType("torchvision.transforms.v2.functional")
    v2_functional.center_crop = _center_crop
    tv.transforms = transforms
    transforms.functional = functional
    transforms.v2 = v2
    v2.functional = v2_functional
    sys.modules.update({
        "torchvision": tv,
        "torchvision.transforms": transforms,
        "torchvision.transforms.functional": functional,
        "torchvision.transforms.v2": v2,
        "torchvision.transforms.v2.functional": v2_functional,
    })


class LoopTimer(lightning.pytorch.Callback):
    """Seconds spent in the training loop proper: from each epoch start to its validation.

    Same definition as microsight's per-epoch ``patches_per_second`` in ``history.csv``
    (validation, data set-up and checkpoint writing excluded).
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.steps = 0
        self._t0: float | None = None
        self._step0 = 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t0, self._step0 = time.perf_counter(), trainer.global_step

    def _stop(self, trainer) -> None:
        if self._t0 is not None:
            self.seconds += time.perf_counter() - self._t0
            self.steps += trainer.global_step - self._step0
            self._t0 = None

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._stop(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._stop(trainer)


def load_stack(paths: list[str]) -> np.ndarray:
    """Stack 2D TIFFs into one float32 SYX array."""
    return np.stack([tifffile.imread(p).astype(np.float32) for p in paths])


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    install_torchvision_standin()
    import careamics
    from careamics import CAREamist
    from careamics.config import create_advanced_care_config, create_advanced_n2v_config

    out = Path(spec["out"])
    (out / "pred").mkdir(parents=True, exist_ok=True)
    algorithm = spec["algorithm"]
    epochs, spe = int(spec["epochs"]), int(spec["steps_per_epoch"])
    common = dict(experiment_name=f"fmd_{algorithm}", data_type="array", axes="SYX",
                  patch_size=[spec["patch"], spec["patch"]], batch_size=spec["batch"],
                  num_epochs=epochs, num_steps=spe,
                  seed=spec["seed"] + 1)  # CAREamics requires seed > 0
    if algorithm == "n2v":
        config = create_advanced_n2v_config(**common)
    elif algorithm == "care":
        config = create_advanced_care_config(**common)
    else:
        sys.exit(f"unknown algorithm {algorithm!r}")

    x = load_stack(spec["train_inputs"])
    y = load_stack(spec["train_targets"]) if spec.get("train_targets") else None
    test = load_stack(spec["test_inputs"])
    names = [Path(p).stem for p in spec["test_inputs"]]

    torch.manual_seed(spec["seed"])
    timer = LoopTimer()
    careamist = CAREamist(config, work_dir=out / "work", enable_progress_bar=False,
                          callbacks=[timer])
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    careamist.train(train_data=x, train_data_target=y)
    train_seconds = time.perf_counter() - t0
    load_after = os.getloadavg()
    steps_done = int(careamist.trainer.global_step)
    epochs_done = int(careamist.trainer.current_epoch)

    tile = (spec["tile"], spec["tile"])
    overlap = (spec["overlap"], spec["overlap"])
    # Warm-up (not timed): first call builds the prediction loop and loads the checkpoint.
    careamist.predict(test[:1], axes="SYX", tile_size=tile, tile_overlap=overlap)
    t0 = time.perf_counter()
    preds, _ = careamist.predict(test, axes="SYX", tile_size=tile, tile_overlap=overlap)
    predict_seconds = time.perf_counter() - t0
    stack = np.concatenate([np.asarray(p, np.float32).reshape(-1, *test.shape[1:])
                            for p in preds])
    if stack.shape != test.shape:
        sys.exit(f"prediction shape {stack.shape} != input shape {test.shape}")
    for name, p in zip(names, stack, strict=True):
        np.save(out / "pred" / f"{name}.npy", p)

    timing = {
        "careamics_version": careamics.__version__, "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(), "algorithm": algorithm,
        "epochs_requested": epochs, "steps_per_epoch": spe,
        "optimizer_steps": steps_done, "epochs_run": epochs_done,
        "train_images": int(x.shape[0]), "batch": spec["batch"], "patch": spec["patch"],
        "train_seconds": train_seconds,
        "patches_per_second": steps_done * spec["batch"] / train_seconds,
        "loop_seconds": timer.seconds, "loop_steps": timer.steps,
        "loop_patches_per_second": timer.steps * spec["batch"] / timer.seconds,
        "predict_seconds": predict_seconds, "predict_images": int(test.shape[0]),
        "predict_mpx_per_s": test.size / 1e6 / predict_seconds,
        "tile": spec["tile"], "overlap": spec["overlap"],
        "predict_checkpoint": "CAREamics default (last for N2V/N2N, best for CARE)",
        "num_workers": config.data_config.num_workers,
        "load_average_before_training": load_before,
        "load_average_after_training": load_after,
        "config": json.loads(config.model_dump_json()),
    }
    (out / "timing.json").write_text(json.dumps(timing, indent=2, default=str))
    print(json.dumps({k: v for k, v in timing.items() if k != "config"}, default=str))


if __name__ == "__main__":
    main()
