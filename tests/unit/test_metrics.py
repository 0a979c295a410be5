"""Unit tests for microsight.metrics.restoration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microsight.errors import MicrosightError
from microsight.metrics import (
    affine_match,
    nrmse,
    percentile_normalize,
    psnr,
    restoration_metrics,
    ssim,
)


@pytest.fixture
def image() -> np.ndarray:
    # Smooth structure plus texture, so SSIM and PSNR have something to measure.
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32]
    return (np.sin(xx / 4.0) * np.cos(yy / 5.0) + 0.1 * rng.standard_normal((32, 32))).astype(
        np.float32
    )


def test_psnr_hand_computed():
    target = np.array([[0.0, 1.0], [2.0, 4.0]])
    prediction = target + np.array([[1.0, -1.0], [0.0, 0.0]])
    # mse = (1 + 1) / 4 = 0.5, data_range = 4 -> 10 * log10(16 / 0.5)
    expected = 10 * math.log10(32.0)
    assert psnr(prediction, target) == pytest.approx(expected)
    assert psnr(prediction, target, data_range=2.0) == pytest.approx(10 * math.log10(8.0))


def test_identical_images(image):
    assert psnr(image, image) == math.inf
    assert ssim(image, image) == pytest.approx(1.0)
    assert nrmse(image, image) == 0.0


def test_nrmse_normalised_by_target_range():
    target = np.array([0.0, 10.0, 5.0, 5.0])
    prediction = target + np.array([2.0, 0.0, 0.0, 0.0])
    assert nrmse(prediction, target) == pytest.approx(1.0 / 10.0)


def test_ssim_3d_thin_stack():
    rng = np.random.default_rng(1)
    stack = rng.random((5, 16, 16))
    assert ssim(stack, stack) == pytest.approx(1.0)
    assert ssim(stack + 0.2 * rng.random(stack.shape), stack) < 1.0
    with pytest.raises(MicrosightError, match="at least 3"):
        ssim(stack[:2], stack[:2])


def test_affine_match_recovers_alpha_beta(image):
    matched = affine_match(image, 2.0 * image.astype(np.float64) + 3.0)
    np.testing.assert_allclose(matched, 2.0 * image + 3.0, rtol=1e-5, atol=1e-5)
    assert matched.dtype == np.float32
    # A constant prediction can only match the target's mean.
    np.testing.assert_allclose(affine_match(np.ones(4), [1.0, 2.0, 3.0, 4.0]), 2.5)


def test_percentile_normalize():
    x = np.arange(1001, dtype=np.float64)
    out = percentile_normalize(x, p_low=0, p_high=100)
    assert out.dtype == np.float32
    assert out.min() == pytest.approx(0.0) and out.max() == pytest.approx(1.0)
    assert np.all(percentile_normalize(np.full(5, 7.0)) == 0)
    with pytest.raises(MicrosightError):
        percentile_normalize(x, p_low=50, p_high=10)


def test_restoration_metrics_invariant_to_affine_prediction(image):
    rng = np.random.default_rng(2)
    prediction = image + 0.2 * rng.standard_normal(image.shape)
    base = restoration_metrics(prediction, image)
    assert set(base) == {"psnr", "ssim", "nrmse"}
    for a, b in [(3.0, -7.0), (0.01, 100.0)]:
        changed = restoration_metrics(a * prediction + b, image)
        for key in base:
            assert changed[key] == pytest.approx(base[key], rel=1e-4)
    # Without range matching an offset is penalised.
    raw = restoration_metrics(prediction + 5.0, image, range_match=False)
    assert raw["psnr"] < base["psnr"]


def test_noisier_prediction_scores_lower(image):
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(image.shape)
    for range_match in (True, False):
        low = restoration_metrics(image + 0.05 * noise, image, range_match=range_match)
        high = restoration_metrics(image + 0.5 * noise, image, range_match=range_match)
        assert high["psnr"] < low["psnr"]
        assert high["ssim"] < low["ssim"]
        assert high["nrmse"] > low["nrmse"]


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(MicrosightError, match=r"\(4, 5\).*\(4, 6\)"):
        psnr(np.zeros((4, 5)), np.zeros((4, 6)))
    with pytest.raises(MicrosightError):
        restoration_metrics(np.zeros((8, 8)), np.zeros((8, 9)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_rejected(bad):
    a = np.ones((8, 8))
    b = a.copy()
    b[2, 3] = bad
    for func in (psnr, ssim, nrmse, affine_match, restoration_metrics):
        with pytest.raises(MicrosightError, match="NaN or Inf"):
            func(b, a)
        with pytest.raises(MicrosightError, match="NaN or Inf"):
            func(a, b)


def test_constant_target_needs_data_range():
    with pytest.raises(MicrosightError, match="data_range"):
        psnr(np.ones((8, 8)), np.zeros((8, 8)))
    assert psnr(np.ones((8, 8)), np.zeros((8, 8)), data_range=1.0) == pytest.approx(0.0)
