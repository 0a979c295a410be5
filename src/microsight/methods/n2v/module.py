"""Noise2Void (Krull et al., CVPR 2019), N2V2 (Höck et al., ECCV BIC 2022) and
structN2V (Broaddus et al., ISBI 2020): denoising from noisy images alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from microsight.config import Configuration
from microsight.data.pairs import TrainingSet
from microsight.engine.module import MicrosightModule
from microsight.errors import MicrosightError
from microsight.families.restoration.module import RestorationMixin
from microsight.methods.n2v.config import N2VConfig
from microsight.methods.n2v.masking import mask_and_manipulate, masked_mse
from microsight.nn import UNet

# Validation masks are drawn from this fixed seed every epoch, so the
# validation loss of different epochs compares the same pixels.
VAL_MASK_SEED = 1234


class N2VModule(RestorationMixin, MicrosightModule):
    """Blind-spot U-Net: predicts masked pixels from their neighbourhood.

    Training and validation losses are mean squared errors on the masked
    pixels against their original (noisy) values. A PSNR from that error would
    measure agreement with noisy data, not with a clean ground truth
    (``microsight evaluate`` does that), so only the loss is shown.
    """

    val_metrics = ()


    @classmethod
    def prepare_training(cls, config: Configuration, input_path: str | Path,
                         target_path: str | Path | None, axes: str | None = None
                         ) -> tuple[TrainingSet, dict[str, Any]]:
        if target_path is not None:
            raise MicrosightError(
                "method n2v learns from noisy images alone: drop --target (use n2n for pairs "
                "of noisy frames, care for noisy/clean pairs)"
            )
        return super().prepare_training(config, input_path, None, axes)

    def build_network(self, config: Configuration, in_channels: int, out_channels: int
                      ) -> nn.Module:
        m: N2VConfig = config.method
        n2v2 = m.variant == "n2v2"
        # No residual connection: an identity shortcut would hand the network the
        # manipulated input at the masked pixel, and the head is then not zeroed.
        return UNet(
            m.ndim, in_channels, out_channels, depth=m.depth, base_channels=m.base_channels,
            kernel_size=m.kernel_size, batch_norm=m.batch_norm, residual=False,
            skip_top=not n2v2, pooling="blurmax" if n2v2 else "max",
            upsampling=m.upsampling if m.upsampling != "auto" else (
                "linear" if n2v2 else "transpose"),
        )

    @classmethod
    def config_for_weights(cls, config: Configuration, state: dict[str, Any]) -> None:
        """Bundles written before ``upsampling`` existed used transposed convolutions."""
        if config.method.upsampling == "auto" and "network.up.0.weight" in state:
            config.method.upsampling = "transpose"

    def mask(self, x: torch.Tensor, generator: torch.Generator | None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """The configured blind-spot masking of a batch: ``(network input, loss mask)``."""
        m: N2VConfig = self.config.method
        return mask_and_manipulate(
            x, fraction=m.masked_fraction, neighborhood=m.neighborhood,
            manipulator=m.manipulator, struct_mask=m.struct_mask, struct_span=m.struct_span,
            generator=generator)

    def loss(self, prediction: torch.Tensor, target: torch.Tensor,
             mask: torch.Tensor | None = None) -> torch.Tensor:
        """MSE on the masked pixels (on every pixel when no mask is given)."""
        if mask is None:
            return nn.functional.mse_loss(prediction.float(), target.float())
        return masked_mse(prediction, target, mask)[0]

    # --- training -------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, _ = self.sampler.sample()
        # The sampler's generator is reseeded every epoch: a resumed run masks
        # the same pixels as an unbroken one.
        manipulated, mask = self.mask(x, self.sampler.generator)
        loss = self.loss(self(manipulated), x, mask)
        self._train_loss_sum += float(loss.detach())
        self._train_loss_n += 1
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False,
                 batch_size=x.shape[0])
        return loss

    # --- validation -----------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._val_generator = torch.Generator(device=self.device)
        self._val_generator.manual_seed(VAL_MASK_SEED)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, _ = batch  # self-supervised: the held-out inputs are their own targets
        manipulated, mask = self.mask(x, self._val_generator)
        mse, count = masked_mse(self(manipulated), x, mask)
        mse, n = float(mse.detach()), int(count)
        # The base class turns these sums into val_loss and val_psnr (data range 1).
        self._val["loss"] += mse * n
        self._val["sq"] += mse * n
        self._val["n"] += n

    def on_validation_epoch_end(self) -> None:
        if self._val["n"] == 0:
            raise MicrosightError(
                "no validation pixel was masked: raise method.masked_fraction or hold out "
                "more validation data (data.val_fraction)"
            )
        super().on_validation_epoch_end()
