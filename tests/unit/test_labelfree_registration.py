"""The registration check finds a known shift between images of different contrast."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from microsight.data.registration import check_registration, estimate_shift


def cells(shape=(96, 96), n=14, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.zeros(shape)
    for _ in range(n):
        cy, cx = rng.uniform(10, shape[0] - 10), rng.uniform(10, shape[1] - 10)
        r = rng.uniform(3, 6)
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return img


def phase_like(fluo: np.ndarray, seed: int = 1) -> np.ndarray:
    """Dark cells with bright halos: contrast unrelated to the fluorescence's."""
    rng = np.random.default_rng(seed)
    return 100 - 5 * ndimage.gaussian_laplace(fluo, 2) - fluo + rng.normal(0, 0.05, fluo.shape)


def test_estimate_shift_across_modalities():
    fluo = cells()
    shifted = ndimage.shift(fluo, (5, -3), mode="nearest")
    shift = estimate_shift(phase_like(fluo), shifted)
    assert shift == pytest.approx([-5, 3], abs=0.6)


def test_check_flags_only_the_shifted_target():
    fluo = cells()
    phase = phase_like(fluo)
    inputs = np.stack([phase, 0.5 * phase])
    targets = np.stack([ndimage.shift(fluo, (6, 4), mode="nearest"), fluo])
    checks = check_registration(inputs, targets, tolerance=2.0)
    assert [c.channel for c in checks] == [0, 1]
    assert checks[0].misaligned and checks[0].reliable
    assert checks[0].shift == pytest.approx((-6, -4), abs=0.6)
    assert not checks[1].misaligned and checks[1].distance < 1


def test_check_in_3d():
    fluo = np.stack([cells((48, 48), 6, seed=s) for s in range(3)])
    fluo = ndimage.gaussian_filter(np.repeat(fluo, 6, axis=0), (2, 0, 0))
    phase = np.stack([phase_like(p) for p in fluo])
    target = ndimage.shift(fluo, (0, 3, -4), mode="nearest")
    (check,) = check_registration(phase[None], target[None], tolerance=2.0)
    assert check.shift[1:] == pytest.approx((-3, 4), abs=0.7)
    assert check.misaligned
