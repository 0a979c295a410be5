"""CARE's probabilistic mode: a Laplace scale per pixel, written next to the prediction."""

from __future__ import annotations

import numpy as np
import pytest

from microsight import predict, train
from microsight.cli import main
from microsight.errors import MicrosightError
from microsight.io import read_image
from tests.conftest import TINY_CONFIG


def test_probabilistic_care_returns_uncertainty(tmp_path, pair_dirs):
    low, high = pair_dirs
    cfg = {**TINY_CONFIG, "method": {**TINY_CONFIG["method"], "probabilistic": True}}
    model = train("care", low, high, out=tmp_path / "m", config=cfg, progress=False)
    image = read_image(low / "im0.tif").numpy()
    mean, scale = predict(model, image, uncertainty=True)
    assert mean.shape == scale.shape == image.shape
    assert (scale > 0).all() and np.isfinite(scale).all()
    np.testing.assert_allclose(mean, predict(model, image), atol=1e-5)

    out, unc = tmp_path / "mean.tif", tmp_path / "scale.ome.zarr"
    assert main(["predict", str(tmp_path / "m"), str(low / "im0.tif"), "--out", str(out),
                 "--uncertainty", str(unc), "--tile", "32", "--overlap", "8",
                 "--no-progress"]) == 0
    np.testing.assert_allclose(read_image(unc).numpy(), scale, rtol=1e-3, atol=1e-3)


def test_uncertainty_needs_a_probabilistic_model(tiny_model):
    model, low, _ = tiny_model
    with pytest.raises(MicrosightError, match="probabilistic: true"):
        predict(model, low / "im0.tif", uncertainty=True)


def test_ensemble_of_probabilistic_models_reports_its_calibration(tmp_path, pair_dirs):
    low, high = pair_dirs
    cfg = {**TINY_CONFIG, "method": {**TINY_CONFIG["method"], "probabilistic": True}}
    models = [str(train("care", low, high, out=tmp_path / f"m{i}",
                        config={**cfg, "training": {**cfg["training"], "seed": i}},
                        progress=False).path) for i in range(2)]
    report = tmp_path / "r.html"
    assert main(["evaluate", *models, "--input", str(low), "--target", str(high),
                 "--report", str(report)]) == 0
    assert "Uncertainty calibration" in report.read_text()
