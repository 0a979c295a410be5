"""PatchGAN discriminator (Isola et al. 2017, *Image-to-image translation with cGANs*).

The discriminator sees an (input, output) pair stacked along channels and
returns a map of logits, one per overlapping receptive field ("patch"), each
saying whether that patch of the output looks real *given* the input. It
judges local texture only; the pixel loss of the generator keeps the global
content. Instance normalization (no running statistics) keeps it usable with
parameters swapped in functionally, as in a simultaneous generator/critic
update.
"""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: ``layers`` stride-2 convolutions, then two stride-1 ones.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensions.
    in_channels : int
        Channels of input and output together (the pair is concatenated).
    base_channels : int
        Features of the first layer, doubled per layer (at most 8 times).
    layers : int
        Stride-2 down-samplings; inputs need at least ``2 ** (layers + 1)``
        pixels per axis.
    """

    def __init__(self, ndim: int = 2, in_channels: int = 2, *, base_channels: int = 32,
                 layers: int = 3):
        super().__init__()
        if ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {ndim}")
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        norm = nn.InstanceNorm2d if ndim == 2 else nn.InstanceNorm3d
        self.layers = layers
        blocks: list[nn.Module] = [conv(in_channels, base_channels, 4, stride=2, padding=1),
                                   nn.LeakyReLU(0.2)]
        c = base_channels
        for i in range(1, layers):
            w = base_channels * min(2**i, 8)
            blocks += [conv(c, w, 4, stride=2, padding=1), norm(w, affine=True),
                       nn.LeakyReLU(0.2)]
            c = w
        w = base_channels * min(2**layers, 8)
        blocks += [conv(c, w, 3, padding=1), norm(w, affine=True), nn.LeakyReLU(0.2),
                   conv(w, 1, 3, padding=1)]
        self.net = nn.Sequential(*blocks)

    @property
    def min_size(self) -> int:
        """Smallest spatial size per axis the discriminator accepts."""
        return 2 ** (self.layers + 1)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, 1, *S / 2**layers)`` for a batch of stacked (input, output) pairs."""
        return self.net(pair)
