"""Training: from files to a bundle, on Lightning, resumable.

:func:`train_model` is the one training loop of microsight. Methods differ
in their network, loss and data preparation, never in the loop.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from microsight.config import Configuration, get_method
from microsight.data.normalization import fit_normalizer
from microsight.data.overlap import check_split
from microsight.data.pairs import TrainingSet, load_items
from microsight.data.split import load_and_split
from microsight.data.tiling import tile_starts
from microsight.engine.bundle import (
    Model,
    load_model,
    update_qc,
    write_bundle_header,
    write_model_card,
    write_weights,
)
from microsight.engine.callbacks import EpochBar, EpochPrinter, EpochRecorder
from microsight.engine.checks import check_checkpoint
from microsight.engine.evaluate import write_training_report
from microsight.engine.module import MicrosightModule
from microsight.engine.ood import describe_training_data
from microsight.engine.progress import Monitor
from microsight.engine.sampling import PatchSampler
from microsight.errors import Cancelled, MicrosightError
from microsight.qc.overfitting import overfitting_verdict, validation_noise


def normalize_set(data: TrainingSet, config: Configuration) -> dict[str, Any]:
    """Normalize a training set in place; return the parameters saved in the bundle."""
    norm = config.data.normalization
    # Inverted inputs: the percentiles swap places, so the stored parameters invert
    # every image the model is later given, with no other code knowing about it.
    x_low, x_high = (norm.p_high, norm.p_low) if norm.invert else (norm.p_low, norm.p_high)
    if norm.mode == "per_image":
        def each(items, low=norm.p_low, high=norm.p_high):
            if items is None:
                return None
            return [fit_normalizer([x], p_low=low, p_high=high).apply(x) for x in items]

        data.train_inputs = each(data.train_inputs, x_low, x_high)
        data.val_inputs = each(data.val_inputs, x_low, x_high)
        data.train_targets, data.val_targets = each(data.train_targets), each(data.val_targets)
        return {"mode": "per_image", "p_low": x_low, "p_high": x_high}
    x_norm = fit_normalizer(data.train_inputs, p_low=x_low, p_high=x_high)
    y_norm = x_norm if data.train_targets is None else fit_normalizer(
        data.train_targets, p_low=norm.p_low, p_high=norm.p_high)
    data.train_inputs = [x_norm.apply(x) for x in data.train_inputs]
    data.val_inputs = [x_norm.apply(x) for x in data.val_inputs]
    if data.train_targets is not None:
        data.train_targets = [y_norm.apply(y) for y in data.train_targets]
        data.val_targets = [y_norm.apply(y) for y in data.val_targets]
    return {"mode": "dataset", "p_low": norm.p_low, "p_high": norm.p_high,
            "input": x_norm.to_dict(), "target": y_norm.to_dict()}


def normalize_inputs(data: TrainingSet, config: Configuration, out_channels: int
                     ) -> dict[str, Any]:
    """Normalize only the inputs of ``data`` in place; the targets stay as they are.

    For targets that are not intensities (labels, heat-maps, class maps): the
    bundle stores the identity over ``out_channels`` as the 'target' normalization.
    """
    targets = data.train_targets, data.val_targets
    data.train_targets = data.val_targets = None
    try:
        params = normalize_set(data, config)
    finally:
        data.train_targets, data.val_targets = targets
    params["target"] = {"low": [0.0] * out_channels, "high": [1.0] * out_channels}
    return params


def prepare_supervised(config: Configuration, input_path: str | Path,
                       target_path: str | Path | None, axes: str | None = None
                       ) -> tuple[TrainingSet, dict[str, Any]]:
    """Load, check, split and normalize training data (or load the validation data
    given in ``config.data.val_input``).

    Returns
    -------
    TrainingSet, dict
        The normalized set and the normalization parameters for the bundle.
    """
    ndim = len(config.data.patch_size)

    def load(inputs: str | Path, targets: str | Path | None):
        return load_items(inputs, targets, ndim=ndim, axes=axes or config.data.axes)

    data = load_and_split(config, load, input_path, target_path)
    return data, normalize_set(data, config)


def validation_batches(inputs: list[np.ndarray], targets: list[np.ndarray], *, tile: int,
                       divisor: int, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Cut whole validation images into tiles covering every pixel, batched by shape."""
    groups: dict[tuple[int, ...], list[tuple[np.ndarray, np.ndarray]]] = {}
    for x, y in zip(inputs, targets, strict=True):
        spatial = x.shape[1:]
        sizes = [max(divisor, min(tile, s) // divisor * divisor) for s in spatial]
        if any(s < d for s, d in zip(spatial, sizes, strict=True)):
            continue
        grids = [tile_starts(s, t, 0) for s, t in zip(spatial, sizes, strict=True)]
        for start in np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, len(sizes)):
            key = (...,) + tuple(slice(a, a + t) for a, t in zip(start, sizes, strict=True))
            groups.setdefault(tuple(sizes), []).append((x[key], y[key]))
    batches = []
    for tiles in groups.values():
        for i in range(0, len(tiles), batch_size):
            chunk = tiles[i:i + batch_size]
            batches.append((torch.from_numpy(np.stack([c[0] for c in chunk])),
                            torch.from_numpy(np.stack([c[1] for c in chunk]))))
    if not batches:
        raise MicrosightError("validation images are smaller than the network's minimum size")
    return batches


def _accelerator(config: Configuration) -> tuple[str, str]:
    want = config.training.device
    if want == "cuda" and not torch.cuda.is_available():
        raise MicrosightError("training.device is 'cuda' but no CUDA GPU is available")
    if want == "mps":
        if not torch.backends.mps.is_available():
            raise MicrosightError("training.device is 'mps' but no Apple GPU is available; "
                                  "use device: cpu or auto")
        # Apple GPUs have no bf16 autocast worth having; float32 is the safe choice.
        precision = config.training.precision
        return "mps", "32-true" if precision == "auto" else precision
    use_cuda = want == "cuda" or (want == "auto" and torch.cuda.is_available())
    precision = config.training.precision
    if precision == "auto":
        precision = "bf16-mixed" if use_cuda or cpu_has_bf16() else "32-true"
    return ("gpu" if use_cuda else "cpu"), precision


def _strategy(config: Configuration, accelerator: str) -> Any:
    """Lightning's strategy: one device, or distributed data parallel over several.

    On CPUs the processes are forked and talk over gloo; on GPUs each process
    re-runs the command (Lightning's launcher) and talks over NCCL.
    """
    tcfg = config.training
    if tcfg.devices * tcfg.num_nodes == 1:
        return "auto"
    if accelerator == "mps":
        raise MicrosightError("an Apple GPU trains on one device; set training.devices: 1")
    from lightning.pytorch.strategies import DDPStrategy

    if accelerator == "cpu":
        # Fresh processes: a forked one deadlocks in OpenMP once the parent has run a
        # parallel torch operation (seen with libgomp), which any earlier work does.
        return DDPStrategy(start_method="spawn", process_group_backend="gloo")
    return DDPStrategy(process_group_backend="nccl")


def global_rank(config: Configuration) -> int:
    """This process's rank in a multi-device run (0 otherwise): set by Lightning's
    launcher, torchrun (``RANK``) or SLURM's ``srun`` (``SLURM_PROCID``)."""
    if config.training.devices * config.training.num_nodes == 1:
        return 0
    for var in ("RANK", "SLURM_PROCID"):
        if var in os.environ:
            return int(os.environ[var])
    local = int(os.environ.get("LOCAL_RANK", 0))
    return int(os.environ.get("NODE_RANK", 0)) * config.training.devices + local


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 / AMX).

    There, bf16 autocast roughly doubles the training speed of a U-Net; on other
    CPUs it would emulate bf16 and be slower than float32.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _quiet_lightning() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # Multi-device runs: every process validates on all tiles with the same weights, so
    # epoch metrics need no reduction; gloo's gradient buckets warn about NHWC strides.
    warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
    warnings.filterwarnings("ignore", message=".*Grad strides do not match.*")


def train_model(
    config: Configuration,
    data: TrainingSet,
    normalization: dict[str, Any],
    out: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    monitor: Monitor | None = None,
) -> Model:
    """Train a model and keep its bundle up to date after every epoch.

    Parameters
    ----------
    config : Configuration
        Validated configuration.
    data : TrainingSet
        Normalized training and validation items.
    normalization : dict
        Normalization parameters to store in the bundle.
    out : str or Path
        Bundle folder (created; must not hold another model unless ``resume``).
    resume : bool
        Continue from ``out/checkpoints/last.ckpt``.
    progress : bool
        Show a progress bar.
    monitor : Monitor, optional
        Progress events (steps, epochs) and a cancel signal; a cancelled run raises
        :class:`~microsight.errors.Cancelled` and stays resumable.

    Returns
    -------
    Model
        The trained model with its best-validation weights.
    """
    out = Path(out)
    ckpt = out / "checkpoints" / "last.ckpt"
    # Other processes of a multi-device run re-run the command; only rank 0 writes.
    writer = global_rank(config) == 0
    if resume and not ckpt.is_file():
        raise MicrosightError(f"nothing to resume: {ckpt} does not exist")
    if resume:
        check_checkpoint(ckpt)
    if writer and not resume and (out / "model.json").exists() and (
            (out / "weights.safetensors").exists() or ckpt.exists()):
        raise MicrosightError(
            f"{out} already holds a model; pass --resume to continue it or choose another --out"
        )
    _quiet_lightning()
    L.seed_everything(config.training.seed, verbose=False)
    method = get_method(config.method.method)
    module = method.module_class(config, data.in_channels, data.out_channels)
    if config.training.init_from and not resume:
        initialize_from(module, config)
    cfg = config.data
    if cfg.scale_jitter > 0 and module.zoom_targets is None:
        raise MicrosightError(
            f"method {config.method.method} cannot train on zoomed patches (its targets "
            "would no longer match them); set data.scale_jitter: 0")
    module.attach_sampler(PatchSampler(
        data.train_inputs, data.train_targets, tuple(cfg.patch_size), cfg.batch_size,
        foreground_fraction=cfg.foreground_fraction, flips=cfg.flips, rotations=cfg.rotations,
        intensity_jitter=cfg.intensity_jitter, scale_jitter=cfg.scale_jitter,
        nearest_targets=module.zoom_targets == "nearest", seed=config.training.seed))
    val_targets = data.val_targets if data.val_targets is not None else data.val_inputs
    val = validation_batches(data.val_inputs, val_targets, tile=config.training.val_tile,
                             divisor=module.divisor, batch_size=cfg.batch_size)
    if not resume and writer:
        write_bundle_header(out, config, in_channels=data.in_channels,
                            out_channels=data.out_channels, normalization=normalization,
                            data_summary=data.summary)
        _check_split(data, cfg.patch_size, out, progress)
    # 'complete' turns true only after the last after-training step: predict warns about
    # a bundle without it, and --resume finishes what is missing.
    update_qc(out, {"complete": False})

    tcfg = config.training
    if tcfg.devices * tcfg.num_nodes > 1 and monitor is not None and (
            monitor.callback is not None or monitor.cancel is not None):
        # The training processes are started afresh and cannot call back into this one.
        warnings.warn("progress callbacks and cancel signals are not passed to a "
                      "multi-device run; it reports per epoch in history.csv", stacklevel=2)
        monitor = None
    recorder = EpochRecorder(ckpt, out / "history.csv", BestWeights(out), monitor)
    callbacks: list[L.Callback] = [recorder]
    if tcfg.early_stopping_patience:
        callbacks.append(L.pytorch.callbacks.EarlyStopping(
            "val_loss", patience=tcfg.early_stopping_patience, mode="min",
            check_on_train_epoch_end=False))
    accelerator, precision = _accelerator(config)
    live_bar = progress and sys.stdout.isatty()
    if live_bar:
        callbacks.append(EpochBar(leave=True))
    elif progress:
        callbacks.append(EpochPrinter(recorder, tcfg.epochs))
    trainer = L.Trainer(
        accelerator=accelerator, devices=tcfg.devices, num_nodes=tcfg.num_nodes,
        strategy=_strategy(config, accelerator), precision=precision,
        # Every process draws its own patches for every step (no sampler to split).
        use_distributed_sampler=False,
        max_epochs=tcfg.epochs, max_steps=tcfg.max_steps or -1,
        callbacks=callbacks, logger=False, enable_checkpointing=False,
        enable_progress_bar=live_bar, enable_model_summary=False,
        num_sanity_val_steps=0, log_every_n_steps=max(1, tcfg.steps_per_epoch // 4),
    )
    loaders = (DataLoader(range(tcfg.steps_per_epoch), batch_size=None),
               DataLoader(val, batch_size=None))
    try:
        trainer.fit(module, *loaders, ckpt_path=str(ckpt) if resume else None,
                    **_weights_only(trainer))
    except SystemExit:
        # Lightning turns SIGTERM into SystemExit at its next loop boundary; when the
        # signal also set our cancel signal, end as a cancelled run (resumable).
        if not (monitor and monitor.cancelled):
            raise
        recorder.cancelled = True
    if trainer.global_rank != 0:
        # A process re-running the command for a multi-device run: rank 0 finishes.
        raise SystemExit(0)
    if tcfg.devices * tcfg.num_nodes > 1 and not recorder.rows:
        # Spawned processes trained; their history is in the bundle.
        recorder.rows = load_model(out).history
    if recorder.cancelled:
        done = len(recorder.rows)
        raise Cancelled(f"training cancelled; {out} keeps {done} complete epoch(s): continue "
                        "with --resume" if done else f"training cancelled before its first "
                        f"epoch ended; {out} holds no weights yet: start again")
    monitor = monitor or Monitor()
    _stop_if_cancelled(monitor, out)
    if not (out / "weights.safetensors").exists():
        write_weights(module, out / "weights.safetensors")
    model = method.module_class.after_training(load_model(out), data, out, progress=progress)
    _stop_if_cancelled(monitor, out)
    model.ood = describe_training_data(model, data, out)
    _stop_if_cancelled(monitor, out)
    model.qc = update_qc(out, {"epochs_run": len(recorder.rows),
                               "stopped_early": trainer.should_stop and
                               len(recorder.rows) < tcfg.epochs,
                               "device": accelerator, "precision": precision,
                               **_training_qc(module, model, val, recorder.rows)})
    write_model_card(out, model)
    write_training_report(model, out / "report.html")
    model.qc = update_qc(out, {"complete": True})
    return model


def _stop_if_cancelled(monitor: Monitor, out: Path) -> None:
    """Between the after-training steps: stop when asked; ``--resume`` finishes them."""
    if monitor.cancelled:
        raise Cancelled(f"training stopped during its final steps; {out} keeps every epoch: "
                        "finish the thresholds, data description and report with --resume")


def _weights_only(trainer: L.Trainer) -> dict[str, bool]:
    """Ask Lightning to load checkpoints with ``weights_only=True`` where it can be asked."""
    import inspect

    return {"weights_only": True} if "weights_only" in inspect.signature(
        trainer.fit).parameters else {}


class BestWeights:
    """Write the best weights and their scores into the bundle (picklable for spawned
    training processes)."""

    def __init__(self, out: Path):
        self.out = Path(out)

    def __call__(self, module: L.LightningModule, row: dict[str, Any]) -> None:
        write_weights(module, self.out / "weights.safetensors")
        update_qc(self.out, {"best_epoch": row["epoch"], "best_val_loss": row["val_loss"],
                             "best_val_psnr": row["val_psnr"]})


def initialize_from(module: MicrosightModule, config: Configuration) -> None:
    """Copy the weights of the bundle ``config.training.init_from`` into ``module``.

    Fine-tuning: the bundle must hold the same method, with the same network
    (architecture fields, channels) and normalization mode; anything else is
    refused with a message naming what differs, rather than half-loaded.

    Parameters
    ----------
    module : MicrosightModule
        The freshly built module of this training run.
    config : Configuration
        This run's configuration.
    """
    path = Path(config.training.init_from)
    ref = load_model(path)
    if ref.method != config.method.method:
        raise MicrosightError(f"init_from {path} is a {ref.method} model, not "
                              f"{config.method.method}")
    got = (ref.module.in_channels, ref.module.out_channels)
    want = (module.in_channels, module.out_channels)
    if got != want:
        raise MicrosightError(
            f"init_from {path} maps {got[0]} -> {got[1]} channels but these data need "
            f"{want[0]} -> {want[1]}")
    if ref.normalization.get("mode") != config.data.normalization.mode:
        raise MicrosightError(
            f"init_from {path} used normalization mode {ref.normalization.get('mode')}; set "
            "data.normalization.mode to the same")
    theirs, ours = ref.module.state_dict(), module.state_dict()
    differ = sorted(k for k in ours.keys() | theirs.keys()
                    if k not in ours or k not in theirs or ours[k].shape != theirs[k].shape)
    if differ:
        raise MicrosightError(
            f"init_from {path} has another network ({len(differ)} tensors differ, e.g. "
            f"{differ[0]}); use the same method fields (depth, base_channels...) as that "
            "model's config.yaml")
    module.load_state_dict(theirs)


def _check_split(data: TrainingSet, patch_size: list[int], out: Path, progress: bool) -> None:
    """Warn (and note in qc.json) about meaningless data (constant images, targets equal
    to inputs) and validation that repeats training data or is too small."""
    checks, overlap = check_split(data.train_inputs, data.val_inputs, patch_size=patch_size,
                                  train_targets=data.train_targets, val_targets=data.val_targets)
    checks = (list(data.summary.get("warnings", [])) + list(data.summary.get(
        "split_warnings", [])) + list(checks))
    update_qc(out, {"data_checks": checks, "overlap": overlap})
    for text in checks:
        if progress:
            print(f"microsight: warning: {text}", file=sys.stderr)
        else:
            warnings.warn(text, DataSplitWarning, stacklevel=3)


class DataSplitWarning(UserWarning):
    """The validation data repeat the training data, or are too few to be trusted."""


def _training_qc(module: MicrosightModule, model: Model,
                 val: list[tuple[torch.Tensor, torch.Tensor]],
                 history: list[dict[str, Any]]) -> dict[str, Any]:
    """Over-fitting verdict and, for the base validation metric, its noise over tiles."""
    qc: dict[str, Any] = {"overfitting": overfitting_verdict(history).to_dict()}
    # Methods with their own validation metric (masked, per class...) have no
    # per-tile squared error to resample; a PSNR of maps that are not images (heat maps,
    # probabilities) would mislead.
    if (type(module).validation_step is not MicrosightModule.validation_step
            or "val_psnr" not in module.val_metrics):
        return qc
    module.load_state_dict(model.module.state_dict())  # the best epoch's weights
    module.eval()
    tile_mse: list[float] = []
    with torch.inference_mode():
        for x, y in val:
            x, y = module.prepare_batch(x.to(module.device), y.to(module.device))
            pred = module.point_estimate(module(x)).float()
            tile_mse += ((pred - y.float()) ** 2).flatten(1).mean(1).tolist()
    qc["validation"] = validation_noise(tile_mse)
    qc["baseline_check"] = _baseline_check(module, val, float(np.mean(tile_mse)))
    return qc


#: Classical baselines cheap enough to run on every validation set after training.
_QUICK_BASELINES = ("input (no restoration)", "gaussian (sigma=1)")


def _baseline_check(module: MicrosightModule, val: list[tuple[torch.Tensor, torch.Tensor]],
                    network_mse: float) -> dict[str, Any] | None:
    """Compare the network with quick classical baselines on its own validation tiles.

    A model that does worse than leaving the image alone (or than a Gaussian blur)
    has learnt nothing useful: say so rather than let its numbers look fine.
    """
    if get_method(module.method_name).family != "restoration" or any(
            x.shape != y.shape for x, y in val):
        return None  # not a restoration on the input's grid
    baselines = module.baselines
    chosen = {k: f for k, f in baselines(module.config).items() if k in _QUICK_BASELINES}
    scores = {}
    for name, fn in chosen.items():
        errors = [float(((fn(x.numpy()) - y.numpy()) ** 2).mean())
                  for xs, ys in val for x, y in zip(xs.float(), ys.float(), strict=True)]
        scores[name] = float(np.mean(errors))
    if not scores:
        return None
    best = min(scores, key=scores.get)
    worse = network_mse > scores[best]
    if worse:
        warnings.warn(f"the trained model does worse on its own validation data (MSE "
                      f"{network_mse:.4g}) than the classical baseline '{best}' "
                      f"({scores[best]:.4g}): train longer or check the data",
                      ModelQualityWarning, stacklevel=4)
    return {"network_mse": network_mse, "baseline_mse": scores, "worse_than_baseline": worse}


class ModelQualityWarning(UserWarning):
    """The trained model scores below a classical baseline on its validation data."""
