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

from microsight.engine.files import atomic_write_text
from microsight.engine.progress import Monitor, ProgressEvent

HISTORY_COLUMNS = ["epoch", "step", "train_loss", "val_loss", "val_psnr", "lr", "train_seconds",
                   "patches_per_second"]


def history_to_csv(rows: list[dict[str, Any]]) -> str:
    """Render history rows as CSV text with a fixed column order."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
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
        row = {
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "train_loss": pl_module._train_loss_sum / max(steps, 1),
            "val_loss": float(metrics["val_loss"]) if "val_loss" in metrics else None,
            "val_psnr": float(metrics["val_psnr"]) if "val_psnr" in metrics else None,
            "lr": trainer.optimizers[0].param_groups[0]["lr"],
            "train_seconds": round(seconds, 3),
            "patches_per_second": round(steps * batch / seconds, 1) if seconds > 0 else None,
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


def _total_steps(module: L.LightningModule) -> int:
    cfg = module.config.training
    return int(cfg.max_steps or cfg.epochs * cfg.steps_per_epoch)


class EpochPrinter(L.Callback):
    """One line per epoch, for logs and notebooks where a live progress bar is noise."""

    def __init__(self, recorder: EpochRecorder, total_epochs: int):
        self.recorder = recorder
        self.total = total_epochs

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.recorder.rows or not trainer.is_global_zero:
            return
        row = self.recorder.rows[-1]
        parts = [f"epoch {row['epoch'] + 1}/{self.total}", f"step {row['step']}",
                 f"train_loss {row['train_loss']:.4g}"]
        if row.get("val_loss") is not None:
            parts += [f"val_loss {row['val_loss']:.4g}", f"val_psnr {row['val_psnr']:.2f}"]
        if row.get("patches_per_second"):
            parts.append(f"{row['patches_per_second']:.0f} patches/s")
        print("  " + ", ".join(parts), flush=True)
