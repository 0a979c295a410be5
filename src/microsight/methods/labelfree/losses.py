"""Pixel losses of label-free prediction (torch): MSE, L1 and an SSIM/L1 mix.

The mix follows Zhao et al. 2017 (*Loss functions for image restoration with
neural networks*): SSIM rewards local structure and contrast, L1 keeps the
absolute intensities that SSIM alone leaves free.
"""

from __future__ import annotations

import torch
from torch import nn

# SSIM constants for data in [0, 1] (Wang et al. 2004), the range of normalized targets.
C1, C2 = 0.01**2, 0.03**2


def _gaussian(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, window: int, sigma: float) -> torch.Tensor:
    """Separable Gaussian filter over every spatial axis, valid region only."""
    ndim = x.ndim - 2
    conv = nn.functional.conv2d if ndim == 2 else nn.functional.conv3d
    c = x.shape[1]
    for axis in range(ndim):
        size = min(window, x.shape[2 + axis])
        size -= 1 - size % 2  # odd
        shape = [1] * ndim
        shape[axis] = size
        kernel = _gaussian(size, sigma, x.device).reshape(1, 1, *shape).repeat(c, 1,
                                                                                *[1] * ndim)
        x = conv(x, kernel, groups=c)
    return x


def ssim_loss(prediction: torch.Tensor, target: torch.Tensor, *, window: int = 11,
              sigma: float = 1.5) -> torch.Tensor:
    """``1 - mean SSIM`` over batch, channels and (valid) pixels of ``(B, C, *S)`` tensors."""
    p, t = prediction.float(), target.float()
    mu_p, mu_t = _blur(p, window, sigma), _blur(t, window, sigma)
    var_p = _blur(p * p, window, sigma) - mu_p**2
    var_t = _blur(t * t, window, sigma) - mu_t**2
    cov = _blur(p * t, window, sigma) - mu_p * mu_t
    ssim = ((2 * mu_p * mu_t + C1) * (2 * cov + C2)) / (
        (mu_p**2 + mu_t**2 + C1) * (var_p + var_t + C2))
    return 1 - ssim.mean()


def pixel_loss(kind: str, prediction: torch.Tensor, target: torch.Tensor, *,
               ssim_weight: float = 0.5) -> torch.Tensor:
    """The configured pixel loss: ``'mse'``, ``'l1'`` or ``'ssim_l1'``."""
    p, t = prediction.float(), target.float()
    if kind == "mse":
        return nn.functional.mse_loss(p, t)
    l1 = nn.functional.l1_loss(p, t)
    if kind == "l1":
        return l1
    return ssim_weight * ssim_loss(p, t) + (1 - ssim_weight) * l1
