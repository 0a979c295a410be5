"""Checks of blind-spot networks: the checkerboard artefact of N2V.

Plain N2V often leaves a faint pattern with a 2-pixel period in its
predictions (Höck et al. 2022). Its power sits at the Nyquist frequency
(0.5 cycles/pixel) along Y or X. :func:`checkerboard_score` measures the
share of an image's (mean-free) power in those rows and columns of its
spectrum; :func:`flat_field_checkerboard` applies it to a network's
prediction of a flat, noisy image, where the clean answer has no structure
and anything periodic comes from the network.
"""

from __future__ import annotations

import numpy as np
import torch


def _nyquist(n: int) -> np.ndarray:
    """Spectrum bins with the highest frequency along an axis of ``n`` pixels."""
    freq = np.abs(np.fft.fftfreq(n))
    return freq == freq.max()


def checkerboard_score(image: np.ndarray) -> float:
    """Share of the power at 0.5 cycles/pixel along Y or X, in ``[0, 1]``.

    The mean (and for stacks the mean of every YX plane) is removed first;
    the spectrum is taken over the last two axes and summed over the others.
    A pure checkerboard or stripe pattern of period 2 scores 1; white noise
    scores about ``1/Y + 1/X`` (twice that for odd sizes, which have two
    highest-frequency bins); a flat image scores 0.

    Parameters
    ----------
    image : numpy.ndarray
        At least 2D, YX last; each axis at least 2 pixels.

    Returns
    -------
    float
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim < 2 or min(img.shape[-2:]) < 2:
        raise ValueError(f"need an image of at least 2x2 pixels (YX last), got {img.shape}")
    img = img - img.mean(axis=(-2, -1), keepdims=True)
    power = np.abs(np.fft.fft2(img, axes=(-2, -1))) ** 2
    power = power.reshape(-1, *img.shape[-2:]).sum(axis=0)
    total = power.sum()
    if total <= 0:
        return 0.0
    rows, cols = _nyquist(img.shape[-2]), _nyquist(img.shape[-1])
    peak = power[rows, :].sum() + power[:, cols].sum() - power[np.ix_(rows, cols)].sum()
    return float(peak / total)


@torch.inference_mode()
def flat_field_checkerboard(network: torch.nn.Module, *, ndim: int = 2, size: int = 64,
                            channels: int = 1, level: float = 0.5, noise: float = 0.1,
                            seed: int = 0) -> float:
    """:func:`checkerboard_score` of a network's prediction of a flat, noisy image.

    Parameters
    ----------
    network : torch.nn.Module
        Maps normalized ``(B, C, *spatial)`` tensors to predictions.
    ndim : {2, 3}
        Spatial dimensions of the network.
    size : int
        Edge of the test image (a multiple of the network's divisor).
    channels : int
        Input channels.
    level, noise : float
        Flat value and standard deviation of the Gaussian noise added to it.
    seed : int
        Seed of the noise.

    Returns
    -------
    float
        Near ``2 / size`` for a clean prediction; higher with checkerboard artefacts.
    """
    rng = np.random.default_rng(seed)
    shape = (1, channels) + (size,) * ndim
    x = (level + noise * rng.standard_normal(shape)).astype(np.float32)
    param = next(network.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = network.training
    network.eval()
    try:
        pred = network(torch.from_numpy(x).to(device)).float().cpu().numpy()
    finally:
        network.train(was_training)
    return checkerboard_score(pred[0])
