"""CARE (Weigert et al., Nature Methods 2018): supervised restoration with a U-Net."""

from __future__ import annotations

import torch
from torch import nn

from microsight.config import Configuration
from microsight.engine.module import MicrosightModule
from microsight.families.restoration.module import RestorationMixin
from microsight.methods.care.config import CareConfig
from microsight.nn import UNet

# Smallest Laplace scale (normalized units): keeps the likelihood finite on flat regions.
MIN_SCALE = 1e-3


class CareModule(RestorationMixin, MicrosightModule):
    """U-Net regression from a degraded image to its high-quality counterpart.

    With ``probabilistic: true`` the network predicts, per pixel, the location
    and scale of a Laplace distribution (CARE's probabilistic mode); the scale
    is the uncertainty map returned next to the restored image.
    """

    def build_network(self, config: Configuration, in_channels: int, out_channels: int
                      ) -> nn.Module:
        m: CareConfig = config.method
        self.residual = m.residual and in_channels == out_channels
        net = UNet(
            m.ndim, in_channels, out_channels * (2 if m.probabilistic else 1),
            depth=m.depth, base_channels=m.base_channels, kernel_size=m.kernel_size,
            batch_norm=m.batch_norm, residual=self.residual and not m.probabilistic,
        )
        if m.probabilistic and self.residual:
            # Start from "output = input, scale = softplus(0)", as the residual U-Net does.
            nn.init.zeros_(net.head.weight)
            nn.init.zeros_(net.head.bias)
        return net

    @property
    def has_uncertainty(self) -> bool:
        return self.probabilistic

    @property
    def probabilistic(self) -> bool:
        return bool(self.config.method.probabilistic)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.network(x)
        if self.probabilistic and self.residual:
            c = self.out_channels
            out = torch.cat([out[:, :c] + x, out[:, c:]], dim=1)
        return out

    def laplace_scale(self, output: torch.Tensor) -> torch.Tensor:
        """Per-pixel Laplace scale from the raw network output (normalized units)."""
        return nn.functional.softplus(output[:, self.out_channels:].float()) + MIN_SCALE

    def point_estimate(self, output: torch.Tensor) -> torch.Tensor:
        return output[:, :self.out_channels] if self.probabilistic else output

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float()
        if self.probabilistic:
            mean = prediction[:, :self.out_channels].float()
            scale = self.laplace_scale(prediction)
            return torch.mean(torch.abs(target - mean) / scale + torch.log(scale))
        if self.config.method.loss == "l1":
            return nn.functional.l1_loss(prediction.float(), target)
        return nn.functional.mse_loss(prediction.float(), target)

    @torch.inference_mode()
    def predict_batch(self, x: torch.Tensor) -> torch.Tensor:
        out = self(x)
        mean = self.point_estimate(out).float()
        if self.predict_uncertainty and self.probabilistic:
            return torch.cat([mean, self.laplace_scale(out)], dim=1)
        return mean
