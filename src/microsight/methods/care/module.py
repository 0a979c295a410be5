"""CARE (Weigert et al., Nature Methods 2018): supervised restoration with a U-Net."""

from __future__ import annotations

import torch
from torch import nn

from microsight.config import Configuration, register_method
from microsight.engine.module import MicrosightModule
from microsight.engine.restoration import RestorationMixin
from microsight.methods.care.config import CareConfig
from microsight.nn import UNet


@register_method(
    "care",
    summary="supervised restoration (denoising) from pairs of low/high-quality images",
    family="restoration",
    config=CareConfig,
    metrics=("psnr", "ssim", "nrmse"),
)
class CareModule(RestorationMixin, MicrosightModule):
    """U-Net regression from a degraded image to its high-quality counterpart."""

    def build_network(self, config: Configuration, in_channels: int, out_channels: int
                      ) -> nn.Module:
        m: CareConfig = config.method
        return UNet(
            m.ndim, in_channels, out_channels, depth=m.depth, base_channels=m.base_channels,
            kernel_size=m.kernel_size, batch_norm=m.batch_norm,
            residual=m.residual and in_channels == out_channels,
        )

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.config.method.loss == "l1":
            return nn.functional.l1_loss(prediction.float(), target.float())
        return nn.functional.mse_loss(prediction.float(), target.float())
