"""Callbacks that make training safe to interrupt and easy to inspect."""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

from microsight.engine.files import atomic_write_text
from microsight.engine.progress import Monitor, ProgressEvent
from microsight.qc.epochs import shown_epoch

HISTORY_COLUMNS = ["epoch", "step", "train_loss", "val_loss", "val_psnr", "lr", "train_seconds",
                   "patches_per_second"]


def history_to_csv(rows: list[dict[str, Any]]) -> str:
    """Render history rows as CSV text: the fixed columns, then a method's own metrics."""
    extra = [k for row in rows for k in row if k not in HISTORY_COLUMNS]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[*HISTORY_COLUMNS, *dict.fromkeys(extra)],
                            extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


class EpochRecorder(L.Callback):
    """After every epoch: record history, keep the best weights, checkpoint atomically.

    The order matters for ``kill -9``: the best weights are written first
    (always a usable model), then the resumable checkpoint (history inside),
    then ``history.csv``. Whatever moment the process dies, a resume
    continues from the last complete epoch and rewrites the history from
    the checkpoint, so at most the running epoch is lost.

    Parameters
    ----------
    checkpoint_path : Path
        Where the resumable ``last.ckpt`` goes.
    history_path : Path
        Where ``history.csv`` goes.
    on_best : callable
        ``on_best(module, row)``, called when the validation loss improves.
    """

    def __init__(self, checkpoint_path: Path, history_path: Path,
                 on_best: Callable[[L.LightningModule, dict[str, Any]], None],
                 monitor: Monitor | None = None):
        self.monitor = monitor or Monitor()
        self.cancelled = False
        self.checkpoint_path = Path(checkpoint_path)
        self.history_path = Path(history_path)
        self.on_best = on_best
        self.rows: list[dict[str, Any]] = []
        self._t0 = 0.0
        self._train_seconds = 0.0
        self._validated = False

    @property
    def best_val_loss(self) -> float:
        losses = [r["val_loss"] for r in self.rows if r.get("val_loss") is not None]
        return min(losses) if losses else float("inf")

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict.get("rows", []))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()
        self._train_seconds = 0.0
        self._validated = False

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._train_seconds = time.perf_counter() - self._t0
            self._validated = True

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.monitor.callback is not None:
            # Reading the loss waits for the device: only when someone listens.
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.monitor.report(ProgressEvent(
                "step", trainer.global_step, _total_steps(pl_module),
                trainer.current_epoch + 1,
                {"train_loss": None if loss is None else float(loss.detach())}))
        if self.monitor.cancelled:
            # Stop now; the epoch's end below then keeps the folder as after the last
            # complete epoch, so a resume retraces what an unbroken run would do.
            self.cancelled = True
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.cancelled:
            return
        # A last, partial epoch cut short by max_steps is not validated: its row must not
        # repeat the previous epoch's validation metrics.
        steps = pl_module._train_loss_n
        if steps == 0 and self.rows and self.rows[-1]["step"] == trainer.global_step:
            # A resume from an end-of-epoch checkpoint can replay that epoch's end
            # without running a batch: nothing new to record or save.
            return
        metrics = trainer.callback_metrics if self._validated else {}
        seconds = self._train_seconds or (time.perf_counter() - self._t0)
        batch = pl_module.config.data.batch_size
        # Only the validation metrics the method declares meaningful are kept (a PSNR
        # of a probability map or of noisy data would mislead); the loss always is.
        shown = tuple(getattr(pl_module, "val_metrics", ()))
        row = {
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "train_loss": pl_module._train_loss_sum / max(steps, 1),
            "val_loss": _metric(metrics, "val_loss"),
            "val_psnr": _metric(metrics, "val_psnr") if "val_psnr" in shown else None,
            "lr": trainer.optimizers[0].param_groups[0]["lr"],
            "train_seconds": round(seconds, 3),
            "patches_per_second": round(steps * batch / seconds, 1) if seconds > 0 else None,
            **{k: _metric(metrics, k) for k in shown if k != "val_psnr"},
        }
        improved = row["val_loss"] is not None and row["val_loss"] < self.best_val_loss
        self.rows.append(row)
        # Every process of a multi-device run takes part in saving (a collective
        # call); only the first writes the bundle's files.
        writer = trainer.is_global_zero
        if improved and writer:
            self.on_best(pl_module, row)
        tmp = self.checkpoint_path.with_name(f".{self.checkpoint_path.name}.tmp")
        if writer:
            self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(tmp)
        if writer:
            os.replace(tmp, self.checkpoint_path)
            atomic_write_text(self.history_path, history_to_csv(self.rows))
        self.monitor.report(ProgressEvent("epoch", trainer.global_step,
                                          _total_steps(pl_module), row["epoch"] + 1, row))


def _metric(metrics: dict[str, Any], key: str) -> float | None:
    return float(metrics[key]) if key in metrics else None


def _total_steps(module: L.LightningModule) -> int:
    cfg = module.config.training
    return int(cfg.max_steps or cfg.epochs * cfg.steps_per_epoch)


#: Seconds between the plain progress lines of a training run outside a terminal.
STEP_LINE_SECONDS = 30.0


def metric_text(row: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """``name value`` for the numbers of ``row`` among ``keys`` (PSNR in dB, RMSE in nm)."""
    parts = []
    for key in keys:
        value = row.get(key)
        if value is None:
            continue
        if key.endswith("psnr"):
            parts.append(f"{key} {value:.2f} dB")
        elif "rmse" in key:
            parts.append(f"{key} {value:.3g} nm")
        else:
            parts.append(f"{key} {value:.4g}")
    return parts


class EpochPrinter(L.Callback):
    """Plain progress lines for logs and notebooks, where a live progress bar is noise.

    One line per epoch (losses, the method's validation metrics, speed) and,
    inside an epoch, a line every :data:`STEP_LINE_SECONDS` seconds (step,
    training loss, time left), so that a log shows a long epoch advancing.
    Epochs are counted from 1.
    """

    def __init__(self, recorder: EpochRecorder, total_epochs: int):
        self.recorder = recorder
        self.total = total_epochs
        self._last = time.monotonic()
        self._start: tuple[float, int] | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last = time.monotonic()
        self._start = (self._last, trainer.global_step)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        now = time.monotonic()
        per_epoch = pl_module.config.training.steps_per_epoch
        if (now - self._last < STEP_LINE_SECONDS or batch_idx + 1 >= per_epoch
                or not trainer.is_global_zero):
            return
        self._last = now
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        parts = [f"epoch {shown_epoch(trainer.current_epoch)}/{self.total}",
                 f"step {batch_idx + 1}/{per_epoch}"]
        if loss is not None:
            parts.append(f"train_loss {float(loss.detach()):.4g}")
        left = self._seconds_left(trainer, pl_module, now)
        if left is not None:
            parts.append(f"about {_duration(left)} left")
        print("  " + ", ".join(parts), flush=True)

    def _seconds_left(self, trainer: L.Trainer, pl_module: L.LightningModule, now: float
                      ) -> float | None:
        if self._start is None:
            return None
        t0, step0 = self._start
        done = trainer.global_step - step0
        if done <= 0 or now <= t0:
            return None
        # Training steps only: validation and saving add a little per epoch.
        return (_total_steps(pl_module) - trainer.global_step) * (now - t0) / done

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.recorder.rows or not trainer.is_global_zero:
            return
        self._last = time.monotonic()
        row = self.recorder.rows[-1]
        parts = [f"train_loss {row['train_loss']:.4g}"]
        shown = tuple(getattr(pl_module, "val_metrics", ()))
        parts += metric_text(row, ("val_loss", *shown))
        if row.get("patches_per_second"):
            parts.append(f"{row['patches_per_second']:.0f} patches/s")
        print(f"  epoch {shown_epoch(row['epoch'])}/{self.total} done: " + ", ".join(parts),
              flush=True)


def _duration(seconds: float) -> str:
    """A rough duration: ``45 s``, ``12 min``, ``3.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class EpochBar(RichProgressBar):
    """Lightning's live progress bar, with epochs counted from 1 like everywhere else."""

    def _get_train_description(self, current_epoch: int) -> str:
        text = f"epoch {shown_epoch(current_epoch)}"
        if self.trainer.max_epochs is not None and self.trainer.max_epochs > 0:
            text += f"/{self.trainer.max_epochs}"
        width = len(self.validation_description)
        return f"{text:{width}}" if width > len(text) else text
