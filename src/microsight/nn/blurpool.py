"""Max-blur-pool down-sampling (Zhang 2019), as used by N2V2 (Höck et al. 2022).

Strided max pooling aliases: a pattern with a 2-pixel period survives it and
comes back as checkerboard artefacts after up-sampling. Max-blur-pool first
takes the max over 2-pixel windows at stride 1, then low-passes with a fixed
binomial kernel and only then sub-samples by 2.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def binomial_kernel(ndim: int) -> torch.Tensor:
    """The normalized ``3 x 3`` (or ``3 x 3 x 3``) binomial kernel ``[1, 2, 1] / 4`` per axis."""
    k1 = torch.tensor([1.0, 2.0, 1.0]) / 4
    kernel = k1
    for _ in range(ndim - 1):
        kernel = kernel[..., None] * k1
    return kernel


class MaxBlurPool(nn.Module):
    """Halve every spatial size: max-pool (window 2, stride 1), then blur with stride 2.

    Has no parameters and no state-dict entries, so swapping it for
    ``MaxPool`` leaves the weight names of a network unchanged.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensions.
    """

    def __init__(self, ndim: int = 2):
        super().__init__()
        if ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {ndim}")
        self.ndim = ndim
        self.register_buffer("kernel", binomial_kernel(ndim), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        max_pool = F.max_pool2d if self.ndim == 2 else F.max_pool3d
        conv = F.conv2d if self.ndim == 2 else F.conv3d
        # Window 2 at stride 1 loses one pixel per axis; padding the far edge by
        # replication keeps even sizes even (then exactly halved below).
        h = max_pool(F.pad(x, (0, 1) * self.ndim, mode="replicate"), 2, stride=1)
        channels = h.shape[1]
        weight = self.kernel.to(h.dtype).expand(channels, 1, *self.kernel.shape)
        h = F.pad(h, (1, 1) * self.ndim, mode="replicate")
        return conv(h, weight, stride=2, groups=channels)
