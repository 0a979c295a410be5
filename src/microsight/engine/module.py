"""The base LightningModule every method subclasses.

It owns what all methods share: the optimizer and learning-rate schedule,
drawing training batches from the on-device :class:`PatchSampler`,
validation over whole held-out images, and tiled inference. A method
supplies its network (:meth:`build_network`), its loss (:meth:`loss`) and,
if it needs them, its own training step or output post-processing.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from microsight.config import Configuration
from microsight.engine.sampling import PatchSampler
from microsight.nn import UNet


class MicrosightModule(L.LightningModule):
    """Shared training/validation/inference logic.

    Parameters
    ----------
    config : Configuration
        The full, validated configuration.
    in_channels, out_channels : int
        Channels of the network's input and output.
    """

    method_name = "base"
    #: Whether every output channel turns with the image, so that predictions may be
    #: averaged over flips and rotations (test-time augmentation). Not so for outputs
    #: tied to directions, such as star-convex rays or sub-pixel offsets.
    dihedral_maps = True
    #: How targets are read under random zoom (``data.scale_jitter``): "linear",
    #: "nearest" (label images), or None where zooming would falsify them (pixel
    #: noise statistics of denoisers, sub-pixel or fixed-width targets).
    zoom_targets: str | None = None
    #: Validation metrics shown beside ``val_loss`` (progress bar, log lines, history):
    #: only those that mean something for the method, e.g. ``val_psnr`` for a
    #: restoration against clean targets; none where only the loss is computed.
    val_metrics: tuple[str, ...] = ()

    def __init__(self, config: Configuration, in_channels: int = 1, out_channels: int = 1):
        super().__init__()
        self.config = config
        self.in_channels, self.out_channels = in_channels, out_channels
        self.network = self.build_network(config, in_channels, out_channels)
        self.sampler: PatchSampler | None = None
        self._train_loss_sum = 0.0  # sets the device-side sum too (see the property)
        self._train_loss_n = 0
        self._val = {"loss": 0.0, "sq": 0.0, "n": 0}

    # --- what a method provides -------------------------------------------------
    @abstractmethod
    def build_network(self, config: Configuration, in_channels: int, out_channels: int
                      ) -> nn.Module:
        """Return the network; methods override this."""
        raise NotImplementedError

    @abstractmethod
    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training loss; methods override this."""
        raise NotImplementedError

    @property
    def divisor(self) -> int:
        """Spatial sizes the network accepts must be multiples of this."""
        return int(getattr(self.network, "divisor", 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    # --- training -------------------------------------------------------------
    def attach_sampler(self, sampler: PatchSampler) -> None:
        """Give the module its training data (moved to the device when fitting starts)."""
        self.sampler = sampler

    def on_fit_start(self) -> None:
        if self.sampler is not None:
            self.sampler.to(self.device)
        if self.network_ndim == 2:
            # Faster convolutions on GPUs and on CPUs alike (oneDNN prefers NHWC).
            self.network.to(memory_format=torch.channels_last)

    @property
    def network_ndim(self) -> int:
        return len(self.config.data.patch_size)

    def on_train_epoch_start(self) -> None:
        if self.sampler is not None:
            self.sampler.reseed(self.current_epoch, self.global_rank)
        self._train_loss_sum, self._train_loss_n = 0.0, 0

    def prepare_batch(self, x: torch.Tensor, y: torch.Tensor | None
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Turn a sampled (or validation) batch into network input and target."""
        return x, y

    def add_train_loss(self, loss: torch.Tensor) -> None:
        """Add one step's loss to the epoch's mean, without reading it on the host.

        Reading it every step (``float(loss)``) would make the host wait for the GPU
        at each step instead of queueing the next one; the sum is read once, when
        the epoch's mean is asked for (``_train_loss_sum``).
        """
        value = loss.detach().float()
        pending = self._train_loss_pending
        self._train_loss_pending = value if pending is None else pending + value
        self._train_loss_n += 1

    @property
    def _train_loss_sum(self) -> float:
        """Sum of this epoch's training losses (reads the device-side sum once)."""
        if self._train_loss_pending is not None:
            self._train_loss_total += float(self._train_loss_pending)
            self._train_loss_pending = None
        return self._train_loss_total

    @_train_loss_sum.setter
    def _train_loss_sum(self, value: float) -> None:
        self._train_loss_total, self._train_loss_pending = float(value), None

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = self.prepare_batch(*self.sampler.sample())
        loss = self.loss(self(x), y)
        self.add_train_loss(loss)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False,
                 batch_size=x.shape[0])
        return loss

    def on_train_epoch_end(self) -> None:
        mean = self._train_loss_sum / max(self._train_loss_n, 1)
        self.log("train_loss_epoch", mean, on_epoch=True, prog_bar=False)

    # --- validation over whole held-out images --------------------------------
    def on_validation_epoch_start(self) -> None:
        self._val = {"loss": 0.0, "sq": 0.0, "n": 0}

    def point_estimate(self, output: torch.Tensor) -> torch.Tensor:
        """The network's best guess from its raw output (e.g. the mean of a distribution)."""
        return output

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = self.prepare_batch(*batch)
        out = self(x)
        n = y.numel()
        self._val["loss"] += float(self.loss(out, y)) * n
        pred = self.point_estimate(out)
        self._val["sq"] += float(torch.sum((pred.float() - y.float()) ** 2))
        self._val["n"] += n

    def on_validation_epoch_end(self) -> None:
        n = max(self._val["n"], 1)
        mse = self._val["sq"] / n
        self.log("val_loss", self._val["loss"] / n, prog_bar=True)
        # Targets are percentile-normalized to about [0, 1], hence data range 1.
        self.log("val_psnr", -10 * math.log10(max(mse, 1e-12)),
                 prog_bar="val_psnr" in self.val_metrics)

    # --- optimization ---------------------------------------------------------
    def configure_optimizers(self) -> Any:
        cfg = self.config.training
        # On a GPU one fused kernel updates every parameter (fewer launches per step).
        opt = torch.optim.Adam(self.parameters(), lr=cfg.learning_rate,
                               fused=True if self.device.type == "cuda" else None)
        if cfg.lr_schedule == "constant":
            return opt
        if cfg.lr_schedule == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=5)
            return {"optimizer": opt,
                    "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}
        total = cfg.max_steps or cfg.epochs * cfg.steps_per_epoch
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total, 1),
                                                           eta_min=cfg.learning_rate * 0.01)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    @classmethod
    def after_training(cls, model: Any, data: Any, out: Path, *, progress: bool = False
                       ) -> Any:
        """Finish a trained bundle (e.g. choose thresholds on validation data).

        Called by training with the best-epoch model, the (normalized) training
        set and the bundle folder; returns the model, updated if the method
        changed its configuration. The default does nothing.
        """
        return model

    # --- inference ------------------------------------------------------------
    #: Set by prediction code to also return a per-pixel uncertainty (if the method has one).
    predict_uncertainty = False
    #: A method whose items are not predicted tile by tile sets a classmethod
    #: ``predict_item(model, item, settings) -> prediction`` here (e.g. care-iso).
    predict_item = None
    #: Distribution of a probabilistic output, for the calibration of its uncertainty.
    uncertainty_distribution = "laplace"

    @property
    def output_scale(self) -> int:
        """The output grid is this many times finer than the input's (super-resolution)."""
        return 1

    @classmethod
    def config_for_weights(cls, config: Configuration, state: dict[str, Any]) -> None:
        """Settle, in place, config choices that the stored weights decide.

        Called when a bundle is loaded, before the module is built. The default
        does nothing; a method whose config gained an ``auto`` choice after
        bundles were written overrides it, so that those bundles still load.
        """

    @classmethod
    def export_notes(cls, model: Any) -> dict[str, Any]:
        """What an exported network's channels hold and what microsight does around it.

        Used for the channel names and the model card of a BioImage Model Zoo
        package and the metadata of TorchScript/ONNX files. Keys, all optional:
        ``inputs`` and ``outputs`` (one identifier per channel) and ``steps``
        (sentences: microsight's processing before and after the network, for a
        method whose result is more than the network's output). The default
        says nothing beyond the method's ``network_output``.
        """
        return {}

    #: Whether an 8-bit colour image is made grey for a one-channel network of this
    #: method (segmentation: nucleus models for H&E are trained on grey images).
    grey_colour: bool = False

    @classmethod
    def makes_grey(cls, model: Any, image: Any) -> bool:
        """Whether ``image`` is colour that this method makes grey for ``model``'s network."""
        from microsight.io.image import is_colour

        return cls.grey_colour and model.module.in_channels == 1 and is_colour(image)

    @classmethod
    def input_image(cls, model: Any, image: Any) -> Any:
        """The input image as this method reads it, before any prediction or check.

        The default returns ``image`` unchanged; a method whose inputs need
        relabelling (a z-stack used as channels) overrides it, so that the
        out-of-distribution check and every prediction path see the same axes.
        """
        return image

    @property
    def has_uncertainty(self) -> bool:
        """Whether the method can return a per-pixel uncertainty map."""
        return False

    @property
    def prediction_channels(self) -> int:
        """Channels returned by :meth:`predict_batch` (outputs, then uncertainties if asked)."""
        both = self.predict_uncertainty and self.has_uncertainty
        return self.out_channels * (2 if both else 1)

    @torch.inference_mode()
    def predict_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized input tiles ``(B, C, *S)`` -> normalized output tiles (float32)."""
        return self.point_estimate(self(x)).float()

    # --- evaluation report ----------------------------------------------------
    @classmethod
    def report_sections(cls, report: Any, context: Any) -> None:
        """Add the method's own sections to its evaluation report.

        The default shows the example panels (error panels in a heat colour
        map) and the per-image metrics; methods extend or replace it.

        Parameters
        ----------
        report : microsight.qc.Report
            The report being built.
        context : microsight.engine.evaluate.ReportContext
            The model, the evaluation, the data summary and the panels.
        """
        for name, images in context.panels:
            errors = [k for k in images if "error" in k or k.startswith("|")]
            report.add_image_panels(
                f"Example: {name}", images,
                shared_range=[k for k in images if k in ("prediction", "target")
                              or k.startswith("input")],
                cmaps={k: "magma" for k in errors},
                labels={k: "error (target intensity scale)" for k in errors},
                from_zero=errors,
                caption="Error maps: bright where the prediction differs from the target.")
        report.add_table("Per-image metrics", context.evaluation.rows)

    def features(self, x: torch.Tensor) -> torch.Tensor | None:
        """Globally pooled encoder features ``(B, F)`` of normalized inputs, or None.

        Used by the out-of-distribution check (``engine/ood.py``). The default
        pools the U-Net bottleneck (mean and standard deviation per channel) or
        a network's own ``features(x)``; methods with other networks return None
        and are checked on intensity statistics only.
        """
        net = self.network
        if isinstance(net, UNet):
            h = x
            for block in net.down:
                h = net.pool(block(h))
            h = net.bottom(h)
        elif callable(getattr(net, "features", None)):
            h = net.features(x)
        else:
            return None
        if h.ndim == 2:
            return h
        flat = h.flatten(2).float()
        return torch.cat([flat.mean(-1), flat.std(-1)], dim=1)
