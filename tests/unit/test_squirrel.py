"""Unit tests for microsight.metrics.squirrel (resolution-scaled error, RSP)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from microsight.errors import MicrosightError
from microsight.metrics.squirrel import resolution_scaled_error


@pytest.fixture
def reference() -> np.ndarray:
    rng = np.random.default_rng(0)
    spots = np.zeros((64, 64))
    spots[tuple(rng.integers(4, 60, size=(2, 30)))] = 100.0
    return ndimage.gaussian_filter(spots, 1.5) + 5.0


def test_identical_images_have_rsp_one_and_zero_error(reference):
    res = resolution_scaled_error(reference, reference)
    assert res.rsp == pytest.approx(1.0)
    assert res.rse == pytest.approx(0.0, abs=1e-9)
    assert res.sigma == pytest.approx(0.0, abs=0.05)
    assert res.gain == pytest.approx(1.0)
    assert res.error_map.shape == reference.shape


def test_gain_and_offset_are_absorbed(reference):
    res = resolution_scaled_error(reference, 3.0 * reference - 7.0)
    assert res.rsp == pytest.approx(1.0)
    assert res.rse == pytest.approx(0.0, abs=1e-6)
    assert res.gain == pytest.approx(1 / 3)


def test_rsp_falls_monotonically_with_noise(reference):
    noise = np.random.default_rng(1).standard_normal(reference.shape)
    rsp = [
        resolution_scaled_error(reference, reference + s * noise).rsp
        for s in (0.0, 1.0, 3.0, 10.0, 30.0)
    ]
    assert rsp[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(rsp, rsp[1:], strict=False))


def test_rsp_falls_monotonically_with_blur_and_sharper_image_is_blurred_to_match(reference):
    rsp = [
        resolution_scaled_error(reference, ndimage.gaussian_filter(reference, s)).rsp
        for s in (0.5, 1.0, 2.0, 4.0)
    ]
    assert all(a > b for a, b in zip(rsp, rsp[1:], strict=False))
    # A sharper image (the structure before the reference's blur) is matched by
    # the blur that makes up the difference: sqrt(2^2 - 1.5^2) ~ 1.3 pixels.
    rng = np.random.default_rng(0)
    spots = np.zeros((64, 64))
    spots[tuple(rng.integers(4, 60, size=(2, 30)))] = 100.0
    blurred_ref = ndimage.gaussian_filter(spots, 2.0)
    res = resolution_scaled_error(blurred_ref, ndimage.gaussian_filter(spots, 1.5))
    assert res.sigma == pytest.approx(np.sqrt(2.0**2 - 1.5**2), abs=0.15)
    assert res.rsp > 0.999


def test_super_resolved_image_is_binned_to_the_reference_grid(reference):
    fine = np.kron(reference, np.ones((2, 2)))
    res = resolution_scaled_error(reference, fine, sigma=0.0)
    assert res.error_map.shape == reference.shape
    assert res.rsp == pytest.approx(1.0)


def test_error_map_points_at_an_artifact(reference):
    image = reference.copy()
    image[10:14, 40:44] += 80.0  # invented structure
    res = resolution_scaled_error(reference, image)
    inside = res.error_map[10:14, 40:44].mean()
    assert inside > 5 * np.median(res.error_map)


def test_squirrel_input_errors(reference):
    with pytest.raises(MicrosightError, match="integer"):
        resolution_scaled_error(reference, reference[:40])
    with pytest.raises(MicrosightError, match="sigma"):
        resolution_scaled_error(reference, reference, sigma=-1.0)
    with pytest.raises(MicrosightError, match="NaN"):
        resolution_scaled_error(reference, np.full_like(reference, np.nan))
