"""A plain 2D/3D U-Net (Ronneberger et al. 2015) as used by CARE.

Only the architecture lives here: no loss, no training logic. Spatial sizes
must be divisible by ``2**depth``; the prediction engine pads to that.
N2V2 (Höck et al. 2022) variations are options: no top-level skip
connection and max-blur-pool down-sampling.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from microsight.nn.blurpool import MaxBlurPool


def _conv(ndim: int) -> type[nn.Module]:
    return nn.Conv2d if ndim == 2 else nn.Conv3d


def _norm(ndim: int, channels: int, batch_norm: bool) -> nn.Module:
    if not batch_norm:
        return nn.Identity()
    return nn.BatchNorm2d(channels) if ndim == 2 else nn.BatchNorm3d(channels)


class ConvBlock(nn.Sequential):
    """Two convolutions, each followed by optional batch norm and ReLU."""

    def __init__(self, ndim: int, c_in: int, c_out: int, kernel: int, batch_norm: bool):
        conv = _conv(ndim)
        pad = kernel // 2
        super().__init__(
            conv(c_in, c_out, kernel, padding=pad),
            _norm(ndim, c_out, batch_norm),
            nn.ReLU(inplace=True),
            conv(c_out, c_out, kernel, padding=pad),
            _norm(ndim, c_out, batch_norm),
            nn.ReLU(inplace=True),
        )


def _up(ndim: int, c_in: int, c_out: int, mode: str) -> nn.Module:
    """2x up-sampling from ``c_in`` to ``c_out`` channels (see ``UNet``'s ``upsampling``)."""
    if mode == "transpose":
        return (nn.ConvTranspose2d if ndim == 2 else nn.ConvTranspose3d)(c_in, c_out, 2,
                                                                          stride=2)
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear" if ndim == 2 else "trilinear",
                    align_corners=False),
        _conv(ndim)(c_in, c_out, 1))


class UNet(nn.Module):
    """U-Net with ``depth`` poolings and channel doubling at each level.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensions.
    in_channels, out_channels : int
        Channels of the input and of the output.
    depth : int
        Number of 2x down-samplings.
    base_channels : int
        Feature channels at the first level (doubled at every level).
    kernel_size : int
        Odd convolution kernel size.
    batch_norm : bool
        Batch normalization after every convolution.
    residual : bool
        Add the input to the output (needs ``in_channels == out_channels``);
        CARE learns the correction rather than the whole image.
    skip_top : bool
        Keep the skip connection at full resolution. N2V2 drops it (``False``):
        it carries the high-frequency input straight to the output, which
        shows up as checkerboard artefacts in blind-spot training.
    pooling : {"max", "blurmax"}
        Down-sampling: 2x max pooling, or N2V2's max-blur-pool (max over 2-pixel
        windows at stride 1, then a fixed binomial blur at stride 2). Neither
        has weights, so the state-dict names are the same for both.
    upsampling : {"transpose", "linear"}
        Up-sampling: a learned 2x2 transposed convolution at stride 2, or linear
        interpolation followed by a 1x1 convolution. Without the top skip, every
        full-resolution pixel comes out of the up-sampling, and a transposed
        convolution gives the even and odd pixels separate weights: a 2-pixel
        checkerboard. Interpolation cannot make one.
    """

    def __init__(
        self,
        ndim: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        *,
        depth: int = 2,
        base_channels: int = 32,
        kernel_size: int = 3,
        batch_norm: bool = False,
        residual: bool = True,
        skip_top: bool = True,
        pooling: Literal["max", "blurmax"] = "max",
        upsampling: Literal["transpose", "linear"] = "transpose",
    ):
        super().__init__()
        if ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {ndim}")
        if residual and in_channels != out_channels:
            raise ValueError("a residual U-Net needs as many input as output channels")
        if pooling not in ("max", "blurmax"):
            raise ValueError(f"pooling must be 'max' or 'blurmax', got {pooling!r}")
        if upsampling not in ("transpose", "linear"):
            raise ValueError(f"upsampling must be 'transpose' or 'linear', got {upsampling!r}")
        self.ndim, self.depth, self.residual = ndim, depth, residual
        self.skip_top = skip_top
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        c = in_channels
        for w in widths[:-1]:
            self.down.append(ConvBlock(ndim, c, w, kernel_size, batch_norm))
            c = w
        self.bottom = ConvBlock(ndim, widths[-2] if depth else in_channels, widths[-1],
                                kernel_size, batch_norm)
        if pooling == "blurmax":
            self.pool: nn.Module = MaxBlurPool(ndim)
        else:
            self.pool = nn.MaxPool2d(2) if ndim == 2 else nn.MaxPool3d(2)
        self.up = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for i in reversed(range(depth)):
            self.up.append(_up(ndim, widths[i + 1], widths[i], upsampling))
            c_in = widths[i] if i == 0 and not skip_top else 2 * widths[i]
            self.up_blocks.append(ConvBlock(ndim, c_in, widths[i], kernel_size, batch_norm))
        self.head = _conv(ndim)(widths[0], out_channels, 1)
        if residual:
            # Start as the identity: early training refines the input instead of
            # first undoing a random offset added to every pixel.
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    @property
    def divisor(self) -> int:
        """Spatial sizes must be multiples of this."""
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for block in self.down:
            h = block(h)
            skips.append(h)
            h = self.pool(h)
        h = self.bottom(h)
        for level, (up, block, skip) in enumerate(
                zip(self.up, self.up_blocks, reversed(skips), strict=True)):
            if level == self.depth - 1 and not self.skip_top:
                h = block(up(h))
            else:
                h = block(torch.cat([up(h), skip], dim=1))
        out = self.head(h)
        return out + x if self.residual else out
