"""Test-time augmentation and ensembles as per-pixel uncertainty (no training)."""

from __future__ import annotations

import pytest
import torch

from microsight.api import build_config
from microsight.config import get_method
from microsight.engine.bundle import Model
from microsight.engine.uncertainty import DihedralTTA, Ensemble, combine, uncertainty_path
from microsight.errors import MicrosightError
from tests.conftest import TINY_CONFIG

NORM = {"mode": "dataset", "p_low": 1, "p_high": 99.8,
        "input": {"low": [0.0], "high": [1.0]}, "target": {"low": [0.0], "high": [1.0]}}


def _model(residual: bool, seed: int = 0, norm: dict = NORM) -> Model:
    torch.manual_seed(seed)
    cfg = build_config("care", {**TINY_CONFIG, "method": {**TINY_CONFIG["method"],
                                                          "residual": residual}})
    module = get_method("care").module_class(cfg, 1, 1).eval()
    return Model(cfg, module, norm, {})


def _spread(wrapper, x: torch.Tensor) -> torch.Tensor:
    wrapper.predict_uncertainty = True
    out = wrapper.predict_batch(x)
    assert out.shape == (x.shape[0], 2, *x.shape[2:])
    return out[:, 1]


def test_tta_of_an_equivariant_model_has_no_spread():
    # A fresh residual CARE U-Net is the identity (zero head): equivariant to flips/rotations.
    x = torch.rand(2, 1, 16, 24)
    tta = DihedralTTA(_model(residual=True).module)
    assert float(_spread(tta, x).abs().max()) < 1e-6
    tta.predict_uncertainty = False
    torch.testing.assert_close(tta.predict_batch(x), x)


def test_tta_of_a_random_model_has_spread():
    x = torch.rand(2, 1, 16, 16)
    spread = _spread(DihedralTTA(_model(residual=False).module), x)
    assert float(spread.mean()) > 1e-4 and bool((spread >= 0).all())


def test_ensemble_of_identical_models_has_no_spread_and_maps_scales():
    x = torch.rand(1, 1, 16, 16)
    a = _model(residual=False)
    assert float(_spread(Ensemble([a, a]), x).abs().max()) == 0.0
    different = _model(residual=False, seed=1)
    assert float(_spread(Ensemble([a, different]), x).mean()) > 0
    # Same weights but another normalization: the member sees the same raw input and its
    # output is mapped back to the first model's scale, so predictions agree.
    norm2 = {**NORM, "input": {"low": [0.0], "high": [2.0]},
             "target": {"low": [0.0], "high": [2.0]}}
    twin = Model(a.config, a.module, norm2, {})
    torch.testing.assert_close(Ensemble([a, twin]).views(x)[1],
                               a.module.predict_batch(x / 2) * 2)


def test_combine_checks_modes():
    a = _model(residual=True)
    assert combine([a], None) is a
    assert isinstance(combine([a], "tta").module, DihedralTTA)
    with pytest.raises(MicrosightError, match="at least two"):
        combine([a], "ensemble")
    with pytest.raises(MicrosightError, match="ensemble"):
        combine([a, a], "tta")
    with pytest.raises(MicrosightError, match="one of"):
        combine([a], "bogus")


@pytest.mark.parametrize(("out", "expected"), [
    ("r.tif", "r.uncertainty.tif"), ("a/r.ome.zarr", "a/r.uncertainty.ome.zarr"),
    ("r.ome.tif", "r.uncertainty.ome.tif")])
def test_uncertainty_path(out, expected):
    assert str(uncertainty_path(out)) == expected
