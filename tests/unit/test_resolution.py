"""Unit tests for microsight.metrics.resolution (FRC and decorrelation analysis)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microsight.errors import MicrosightError
from microsight.metrics.resolution import (
    decorrelation_curve,
    decorrelation_resolution,
    frc_curve,
    frc_resolution,
    half_bit_threshold,
)


def band_limited(n: int, cutoff: float, seed: int) -> np.ndarray:
    """White noise low-passed by an ideal disk of ``cutoff`` cycles/pixel, unit variance."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.fft2(rng.standard_normal((n, n)))
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.fftfreq(n)[None, :]
    img = np.real(np.fft.ifft2(spectrum * (np.hypot(fy, fx) < cutoff)))
    return img / img.std()


def test_frc_of_image_with_itself_is_one():
    img = band_limited(64, 0.2, 0) + np.random.default_rng(1).standard_normal((64, 64))
    freq, corr = frc_curve(img, img)
    assert freq[0] == pytest.approx(1 / 64)
    assert freq[-1] == pytest.approx(0.5)
    np.testing.assert_allclose(corr, 1.0, atol=1e-9)
    # Agreement up to Nyquist: the sampling limit, two pixels.
    assert frc_resolution(img, img) == pytest.approx(2.0)
    assert frc_resolution(img, img, threshold="half-bit", pixel_size=0.1) == pytest.approx(0.2)


def test_frc_of_independent_noise_sits_at_the_noise_floor():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, 128, 128))
    freq, corr = frc_curve(a, b)
    # Pure chance correlation: ring k holds about 2*pi*k pixels, half of them
    # independent (Hermitian symmetry), so the spread is about 1/sqrt(pi*k).
    z = corr * np.sqrt(np.pi * freq * 128)
    assert 0.5 < np.sqrt(np.mean(z**2)) < 1.5
    # No shared signal at any frequency: the curve crosses at the first rings.
    assert frc_resolution(a, b) > 128 / 8
    assert frc_resolution(a, b, threshold="half-bit") > 128 / 8


@pytest.mark.parametrize("cutoff", [0.1, 0.25])
def test_frc_finds_the_band_limit_of_a_shared_signal(cutoff):
    signal = band_limited(256, cutoff, 3)
    rng = np.random.default_rng(4)
    a = signal + 0.5 * rng.standard_normal(signal.shape)
    b = signal + 0.5 * rng.standard_normal(signal.shape)
    for threshold in (1 / 7, "half-bit"):
        res = frc_resolution(a, b, threshold=threshold, pixel_size=0.065)
        # The edge taper spreads the band edge over a few rings.
        assert res == pytest.approx(0.065 / cutoff, rel=0.2)


def test_half_bit_threshold_decreases_with_ring_size():
    t = half_bit_threshold([8, 100, 10_000, 1e8])
    assert np.all(np.diff(t) < 0)
    assert t[-1] == pytest.approx(0.2071 / 1.2071, abs=1e-3)


def test_frc_3d_shells():
    rng = np.random.default_rng(5)
    vol = rng.standard_normal((16, 32, 32))
    _, corr = frc_curve(vol, vol)
    np.testing.assert_allclose(corr, 1.0, atol=1e-9)


@pytest.mark.parametrize("cutoff", [0.1, 0.2, 0.35])
def test_decorrelation_recovers_band_limit_within_ten_percent(cutoff):
    rng = np.random.default_rng(6)
    img = band_limited(256, cutoff, 7) + 0.2 * rng.standard_normal((256, 256))
    res = decorrelation_resolution(img, pixel_size=0.1)
    assert res == pytest.approx(0.1 / cutoff, rel=0.10)


def test_decorrelation_of_pure_noise_or_constant_has_no_resolution():
    rng = np.random.default_rng(8)
    assert math.isnan(decorrelation_resolution(rng.standard_normal((128, 128))))
    assert math.isnan(decorrelation_resolution(np.ones((64, 64))))


def test_decorrelation_curve_peaks_at_the_band_limit():
    rng = np.random.default_rng(9)
    img = band_limited(128, 0.2, 10) + 0.2 * rng.standard_normal((128, 128))
    freq, d = decorrelation_curve(img)
    assert freq[-1] == pytest.approx(0.5)
    assert freq[int(np.argmax(d))] == pytest.approx(0.2, abs=0.025)


def test_resolution_input_errors():
    a = np.zeros((32, 32))
    with pytest.raises(MicrosightError, match="equal shape"):
        frc_curve(a, np.zeros((32, 16)))
    with pytest.raises(MicrosightError, match="half-bit"):
        frc_resolution(a, a, threshold="full-bit")
    with pytest.raises(MicrosightError, match=r"\(0, 1\)"):
        frc_resolution(a, a, threshold=1.5)
    with pytest.raises(MicrosightError, match="pixel_size"):
        decorrelation_resolution(a, pixel_size=0.0)
    with pytest.raises(MicrosightError, match="2D or 3D"):
        decorrelation_resolution(np.zeros(64))
    with pytest.raises(MicrosightError, match="NaN"):
        frc_curve(np.full((32, 32), np.nan), a)
