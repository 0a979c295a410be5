"""Bundles written before the method contract (commit cf7f17a) still load and predict the same.

``tests/data/bundles_cf7f17a`` holds tiny CARE, distmap and localize bundles and
the predictions that code made; they were trained on the synthetic data of
``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from microsight import api

OLD = Path(__file__).parent.parent / "data" / "bundles_cf7f17a"


@pytest.mark.parametrize("method", ["care", "distmap"])
def test_old_bundle_predicts_as_before(method: str) -> None:
    model = api.load_model(OLD / method)
    image = tifffile.imread(OLD / f"{method}_input.tif")
    expected = np.load(OLD / f"{method}_pred.npy")
    np.testing.assert_allclose(api.predict(model, image, check=False), expected, rtol=1e-5,
                               atol=1e-5)


def test_old_smlm_bundle_loads_with_its_fields() -> None:
    model = api.load_model(OLD / "localize")
    assert model.config.method.depth == 1 and model.config.method.base_channels == 4
    assert model.config.method.simulation.density == 3.0
