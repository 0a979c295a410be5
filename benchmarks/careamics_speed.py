"""Training and prediction speed of CAREamics 0.3.5, for ``gpu_suite.py`` (side by side).

Runs in its own process, in any Python where ``careamics`` imports (on the GPU machine:
the image's python3 with the carried wheels; here: ``setup_careamics_venv.sh``'s venv)::

    python benchmarks/careamics_speed.py SPEC.json
    python benchmarks/careamics_speed.py --probe     # prints the version if it imports

SPEC.json::

    {"algorithm": "n2v" | "care", "noisy": "x.npy", "clean": "y.npy" | null,
     "batch": 128, "patch": 64, "warmup": 20, "steps": 200, "precision": "bf16-mixed",
     "predict_size": 4096, "tile": 512, "overlap": 64, "out": "timing.json"}

Training uses CAREamics' public API (``CAREamist`` and the 0.3.5 configuration
factories) with its defaults (U-Net depth 2 / 32 channels, Adam, mean/std
normalization, flips and rotations, its own data loader and worker count) except
what the comparison fixes: patch, batch, precision and the number of steps (one
epoch of ``warmup + steps`` batches, so validation runs only after the timed
window). Throughput is the timed steps' patches over the seconds between the end
of the last warm-up step and the end of the last step, with the device
synchronized at both ends. Prediction times ``CAREamist.predict`` on one
``predict_size``-square image (a warm-up prediction of a small image first).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import lightning  # before any torchvision stand-in: its optional-import probes run now
import numpy as np
import torch
import torchmetrics  # noqa: F401


def ensure_torchvision() -> str:
    """Real torchvision if it imports; else the stand-in of ``careamics_runner.py``."""
    try:
        import torchvision  # noqa: F401
        return "real"
    except Exception:  # a CPU machine without a working build
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from careamics_runner import install_torchvision_standin

        for name in [k for k in sys.modules if k.startswith("torchvision")]:
            del sys.modules[name]
        install_torchvision_standin()
        return "stand-in"


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepTimer(lightning.pytorch.Callback):
    """Seconds from the end of step ``warmup`` to the end of the last step."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.t0: float | None = None
        self.t1: float | None = None
        self.steps = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        done = trainer.global_step
        if done == self.warmup:
            _sync()
            self.t0 = time.perf_counter()
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
        elif done > self.warmup:
            _sync()
            self.t1 = time.perf_counter()
            self.steps = done - self.warmup


def main() -> None:
    tv = ensure_torchvision()
    import careamics

    if sys.argv[1] == "--probe":  # does careamics import here?
        print(careamics.__version__)
        return
    spec = json.loads(Path(sys.argv[1]).read_text())
    from careamics import CAREamist
    from careamics.config import create_advanced_care_config, create_advanced_n2v_config

    algorithm = spec["algorithm"]
    warmup, steps = int(spec["warmup"]), int(spec["steps"])
    noisy = np.load(spec["noisy"]).astype(np.float32)
    clean = np.load(spec["clean"]).astype(np.float32) if spec.get("clean") else None
    common = dict(experiment_name=f"speed_{algorithm}", data_type="array", axes="SYX",
                  patch_size=[spec["patch"], spec["patch"]], batch_size=spec["batch"],
                  num_epochs=1, num_steps=warmup + steps, seed=1,
                  trainer_params={"precision": spec["precision"]})
    factory = create_advanced_n2v_config if algorithm == "n2v" else create_advanced_care_config
    config = factory(**common)
    timer = StepTimer(warmup)
    work = Path(spec["out"]).parent / f"careamics_{algorithm}"
    careamist = CAREamist(config, work_dir=work, enable_progress_bar=False, callbacks=[timer])
    params = sum(p.numel() for p in careamist.model.parameters())
    t0 = time.perf_counter()
    careamist.train(train_data=noisy, train_data_target=clean if algorithm == "care" else None)
    fit_seconds = time.perf_counter() - t0
    if timer.t1 is None or timer.t0 is None:
        raise SystemExit(f"only {careamist.trainer.global_step} steps ran; need > {warmup}")
    seconds = timer.t1 - timer.t0
    memory = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None

    size, tile, overlap = int(spec["predict_size"]), int(spec["tile"]), int(spec["overlap"])
    reps = -(-size // noisy.shape[-1])
    image = np.tile(noisy[0], (reps, reps))[:size, :size].copy()
    # Axes as in training (CARE checks them against its target axes).
    kw = dict(data_type="array", axes="SYX", tile_size=(tile, tile),
              tile_overlap=(overlap, overlap))
    careamist.predict(image[None, : 2 * tile, : 2 * tile].copy(), **kw)  # warm-up, not timed
    _sync()
    t0 = time.perf_counter()
    pred = careamist.predict(image[None], **kw)
    _sync()
    predict_seconds = time.perf_counter() - t0
    pred = np.asarray(pred[0] if isinstance(pred, tuple) else pred)
    if isinstance(pred, np.ndarray) and pred.dtype == object:
        pred = np.asarray(pred[0])
    row = {
        "tool": f"careamics {careamics.__version__}", "algorithm": algorithm,
        "torch": torch.__version__, "torchvision": tv,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "params": params, "batch": spec["batch"], "patch": spec["patch"],
        "precision": spec["precision"], "num_workers": config.data_config.num_workers,
        "warmup_steps": warmup, "timed_steps": timer.steps, "timed_seconds": seconds,
        "patches_per_s": timer.steps * spec["batch"] / seconds,
        "fit_seconds": fit_seconds, "max_memory_allocated": memory,
        "predict_size": size, "tile": tile, "overlap": overlap,
        "predict_seconds": predict_seconds, "predict_mpx_per_s": size * size / 1e6
        / predict_seconds, "predict_shape": list(np.shape(pred)),
    }
    Path(spec["out"]).write_text(json.dumps(row, indent=2))
    print(json.dumps(row))


if __name__ == "__main__":
    main()
