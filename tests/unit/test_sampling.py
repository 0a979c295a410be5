"""Patch sampling: plain crops, and random zoom (linear inputs, nearest label targets)."""

from __future__ import annotations

import numpy as np
import pytest

from microsight.engine.sampling import PatchSampler


def coordinate_image(shape: tuple[int, ...]) -> np.ndarray:
    """One channel per axis, each holding that axis' pixel coordinate."""
    return np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape],
                                indexing="ij"))


def coordinate_ids(shape: tuple[int, ...]) -> np.ndarray:
    """A 'label image' whose id encodes the pixel position (y * 1000 + x)."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy * 1000 + xx)[None].astype(np.float32)


def test_without_zoom_patches_are_crops() -> None:
    image = coordinate_image((40, 50))
    sampler = PatchSampler([image], None, (16, 16), 8, flips=False, rotations=False,
                           foreground_fraction=0, seed=3)
    x, _ = sampler.sample()
    for patch in x.numpy():
        y0, x0 = int(patch[0, 0, 0]), int(patch[1, 0, 0])
        np.testing.assert_array_equal(patch, image[:, y0:y0 + 16, x0:x0 + 16])


def test_zoom_is_linear_and_stays_inside_the_image() -> None:
    image = coordinate_image((60, 70))
    sampler = PatchSampler([image], None, (16, 16), 32, flips=False, rotations=False,
                           scale_jitter=0.5, seed=1)
    x, _ = sampler.sample()
    x = x.numpy()
    assert x.min() >= 0 and x[:, 0].max() <= 59 and x[:, 1].max() <= 69
    # On a linear ramp, linear interpolation is exact: one step per patch, the same
    # along Y and X, between 1/1.5 and 1.5 pixels.
    step_y = np.diff(x[:, 0], axis=1)
    step_x = np.diff(x[:, 1], axis=2)
    steps = step_y[:, 0, 0]
    np.testing.assert_allclose(step_y, steps[:, None, None] * np.ones_like(step_y), atol=1e-4)
    np.testing.assert_allclose(step_x, steps[:, None, None] * np.ones_like(step_x), atol=1e-4)
    assert steps.min() >= 1 / 1.5 - 1e-4 and steps.max() <= 1.5 + 1e-4
    assert steps.max() - steps.min() > 0.2  # the zoom does vary


def test_zoomed_label_targets_are_nearest_ids_at_the_input_positions() -> None:
    shape = (50, 60)
    sampler = PatchSampler([coordinate_image(shape)], [coordinate_ids(shape)], (16, 16), 16,
                           scale_jitter=0.4, nearest_targets=True, seed=2)
    x, y = sampler.sample()
    x, y = x.numpy(), y.numpy()[:, 0]
    assert np.all(y == np.round(y))  # ids, not blends of ids
    ty, tx = y // 1000, y % 1000
    assert np.abs(ty - x[:, 0]).max() <= 0.5 + 1e-4
    assert np.abs(tx - x[:, 1]).max() <= 0.5 + 1e-4


def test_zoom_in_3d() -> None:
    image = coordinate_image((12, 30, 30))
    sampler = PatchSampler([image], [image[:1].copy()], (8, 16, 16), 4, scale_jitter=0.3,
                           seed=0)
    x, y = sampler.sample()
    assert x.shape == (4, 3, 8, 16, 16) and y.shape == (4, 1, 8, 16, 16)
    np.testing.assert_allclose(y.numpy()[:, 0], x.numpy()[:, 0], atol=1e-4)


def test_zoom_refuses_aligned_corners() -> None:
    with pytest.raises(ValueError, match="scale_jitter"):
        PatchSampler([coordinate_image((20, 20))], None, (8, 8), 2, scale_jitter=0.2, align=2)
