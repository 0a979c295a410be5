"""RCAN: residual channel attention network for super-resolution (Zhang et al., ECCV 2018).

Residual groups of residual channel-attention blocks (RCAB) with a long skip
connection, then a pixel-shuffle upsampler. Two departures from the paper,
both usual for microscopy: no RGB mean shift (inputs are percentile
normalized), and an optional global skip that adds the bicubic upsampling
of the input, with the last convolution initialized to zero so that an
untrained network starts as bicubic interpolation and learns the detail.
2D only; no torchvision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelAttention(nn.Module):
    """Squeeze (global average) and excite (two 1x1 convolutions, sigmoid gate)."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class RCAB(nn.Module):
    """Residual channel-attention block: conv, ReLU, conv, channel attention, + input."""

    def __init__(self, channels: int, reduction: int, kernel_size: int = 3):
        super().__init__()
        pad = kernel_size // 2
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, kernel_size, padding=pad),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size, padding=pad),
            ChannelAttention(channels, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """``n_blocks`` RCABs and a convolution, with a short skip connection."""

    def __init__(self, channels: int, n_blocks: int, reduction: int, kernel_size: int = 3):
        super().__init__()
        self.body = nn.Sequential(
            *[RCAB(channels, reduction, kernel_size) for _ in range(n_blocks)],
            nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _upsample_stages(factor: int) -> list[int]:
    """Pixel-shuffle steps: 2s and 3s when ``factor`` factors into them, else one step."""
    stages, rest = [], factor
    for p in (2, 3):
        while rest % p == 0:
            stages.append(p)
            rest //= p
    return stages if rest == 1 else [factor]


class RCAN(nn.Module):
    """Residual-in-residual network with channel attention and a pixel-shuffle upsampler.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the low-resolution input and of the output.
    factor : int
        Upsampling factor: the output is ``factor`` times larger in Y and X.
    n_groups : int
        Residual groups.
    n_blocks : int
        Residual channel-attention blocks per group.
    channels : int
        Feature channels.
    reduction : int
        Channel reduction inside the attention gate.
    kernel_size : int
        Odd convolution kernel size.
    residual : bool
        Add the bicubic upsampling of the input to the output (needs
        ``in_channels == out_channels``).
    """

    divisor = 1

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        *,
        factor: int = 2,
        n_groups: int = 3,
        n_blocks: int = 4,
        channels: int = 32,
        reduction: int = 8,
        kernel_size: int = 3,
        residual: bool = True,
    ):
        super().__init__()
        if factor < 1:
            raise ValueError(f"factor must be at least 1, got {factor}")
        if residual and in_channels != out_channels:
            raise ValueError("a residual RCAN needs as many input as output channels")
        self.factor, self.residual = int(factor), residual
        pad = kernel_size // 2
        self.head = nn.Conv2d(in_channels, channels, kernel_size, padding=pad)
        self.body = nn.Sequential(
            *[ResidualGroup(channels, n_blocks, reduction, kernel_size) for _ in range(n_groups)],
            nn.Conv2d(channels, channels, kernel_size, padding=pad),
        )
        up: list[nn.Module] = []
        for step in _upsample_stages(self.factor) if self.factor > 1 else []:
            up += [nn.Conv2d(channels, channels * step * step, kernel_size, padding=pad),
                   nn.PixelShuffle(step)]
        self.upsample = nn.Sequential(*up)
        self.tail = nn.Conv2d(channels, out_channels, kernel_size, padding=pad)
        if residual:
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.body(h)
        out = self.tail(self.upsample(h))
        if not self.residual:
            return out
        if self.factor == 1:
            return out + x
        return out + F.interpolate(x, scale_factor=self.factor, mode="bicubic",
                                   align_corners=False)
