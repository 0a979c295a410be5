"""Unit tests for microsight.metrics.calibration."""

from __future__ import annotations

import numpy as np
import pytest

from microsight.errors import MicrosightError
from microsight.metrics.calibration import classification_calibration, regression_calibration


@pytest.mark.parametrize("distribution", ["laplace", "gaussian"])
def test_perfectly_calibrated_regression_has_ece_near_zero(distribution):
    rng = np.random.default_rng(0)
    scale = rng.uniform(0.1, 2.0, 100_000)
    draw = rng.laplace if distribution == "laplace" else rng.normal
    error = draw(0.0, scale)
    cal = regression_calibration(scale, error, distribution=distribution)
    assert cal.relative_ece < 0.03
    assert cal.ece < 0.03 * np.mean(scale)
    np.testing.assert_allclose(cal.observed, cal.predicted, rtol=0.06)
    for level, share in cal.coverage.items():
        assert share == pytest.approx(level, abs=0.01)
    assert cal.counts.sum() == scale.size


def test_overconfident_regression_is_detected():
    rng = np.random.default_rng(1)
    true_scale = rng.uniform(0.1, 2.0, 50_000)
    error = rng.laplace(0.0, true_scale)
    cal = regression_calibration(true_scale / 2, error)  # claims half the true spread
    assert cal.relative_ece == pytest.approx(1.0, abs=0.1)
    assert np.all(cal.observed > cal.predicted)
    assert cal.coverage[0.9] < 0.75
    summary = cal.summary()
    assert summary["relative ece"] == cal.relative_ece
    assert "coverage of 90% interval" in summary


def test_perfectly_calibrated_classifier_has_ece_near_zero():
    rng = np.random.default_rng(2)
    n = 50_000
    confidence = rng.uniform(0.5, 1.0, n)
    correct = rng.random(n) < confidence
    labels = rng.integers(0, 2, n)
    predicted = np.where(correct, labels, 1 - labels)
    p = np.where(predicted == 1, confidence, 1 - confidence)
    cal = classification_calibration(p, labels)
    assert cal.ece < 0.01
    np.testing.assert_allclose(cal.observed, cal.predicted, atol=0.03)


def test_overconfident_classifier():
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    probs = np.full((10, 3), 0.005)
    probs[np.arange(10), 0] = 0.99  # always class 0 with 99% confidence, right 4/10
    cal = classification_calibration(probs, labels)
    assert cal.ece == pytest.approx(0.99 - 0.4)
    assert cal.counts.tolist() == [10]


def test_calibration_input_errors():
    with pytest.raises(MicrosightError, match="differ in size"):
        regression_calibration(np.ones(3), np.ones(4))
    with pytest.raises(MicrosightError, match="positive"):
        regression_calibration(np.zeros(3), np.ones(3))
    with pytest.raises(MicrosightError, match="distribution"):
        regression_calibration(np.ones(3), np.ones(3), distribution="cauchy")
    with pytest.raises(MicrosightError, match="class indices"):
        classification_calibration(np.full((2, 2), 0.5), np.array([0, 2]))
    with pytest.raises(MicrosightError, match="within"):
        classification_calibration(np.array([[1.5, -0.5]]), np.array([0]))
