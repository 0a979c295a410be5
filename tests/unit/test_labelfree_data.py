"""Label-free data handling: z-stacks as channels, multi-channel pairs, normalization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from microsight.api import build_config
from microsight.data.normalization import Normalizer
from microsight.errors import MicrosightError
from microsight.io import Image
from microsight.methods.labelfree.baseline import apply_linear, fit_linear
from microsight.methods.labelfree.config import LabelfreeConfig
from microsight.methods.labelfree.data import as_channels, load_pairs, target_names
from microsight.methods.labelfree.module import LabelfreeModule


def write(path: Path, data: np.ndarray, axes: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, data.astype(np.float32), metadata={"axes": axes})
    return path


def test_z_planes_become_channels():
    im = Image(np.zeros((5, 8, 9)), "ZYX", {"Z": 2.0, "Y": 0.5})
    out = as_channels(im, True)
    assert out.axes == "CYX" and out.pixel_sizes == {"Y": 0.5}
    assert as_channels(im, False).axes == "ZYX"
    with pytest.raises(MicrosightError, match="both C and Z"):
        as_channels(Image(np.zeros((2, 5, 8, 9)), "CZYX"), True)


def test_load_pairs_multichannel_inputs_and_single_target(tmp_path):
    rng = np.random.default_rng(0)
    stack = rng.uniform(0, 1, (4, 20, 24))
    write(tmp_path / "in" / "a.tif", stack, "ZYX")
    write(tmp_path / "out" / "a.tif", stack[0] * 10, "YX")
    m = LabelfreeConfig(z_as_channels=True)
    xs, ys, summary = load_pairs(m, tmp_path / "in", tmp_path / "out", ndim=2)
    assert xs[0].shape == (4, 20, 24) and ys[0].shape == (1, 20, 24)
    assert np.allclose(xs[0][2], stack[2])
    assert summary["item_names"] == ["a.tif"] and summary["axes"] == ["CYX"]
    # The input axes are never applied to the targets.
    xs, ys, _ = load_pairs(LabelfreeConfig(), tmp_path / "in" / "a.tif",
                           tmp_path / "out" / "a.tif", ndim=2, axes="CYX")
    assert xs[0].shape == (4, 20, 24) and ys[0].shape == (1, 20, 24)


def test_load_pairs_errors(tmp_path):
    write(tmp_path / "in" / "a.tif", np.zeros((3, 20, 24)), "ZYX")
    write(tmp_path / "out" / "b.tif", np.zeros((20, 24)), "YX")
    write(tmp_path / "in" / "c.tif", np.zeros((3, 20, 24)), "ZYX")
    write(tmp_path / "out" / "c.tif", np.zeros((20, 24)), "YX")
    m = LabelfreeConfig(z_as_channels=True)
    with pytest.raises(MicrosightError, match="same file name"):
        load_pairs(m, tmp_path / "in", tmp_path / "out", ndim=2)
    write(tmp_path / "small.tif", np.zeros((20, 20)), "YX")
    with pytest.raises(MicrosightError, match="differ in size"):
        load_pairs(m, tmp_path / "in" / "c.tif", tmp_path / "small.tif", ndim=2)
    with pytest.raises(MicrosightError, match="model is 2D"):
        load_pairs(LabelfreeConfig(), tmp_path / "in" / "c.tif", tmp_path / "small.tif",
                   ndim=2)


def test_per_target_normalization_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    phase = rng.normal(100, 10, (3, 64, 40))
    # Two targets on very different scales: each gets its own percentiles.
    fluo = np.stack([rng.uniform(0, 50, (64, 40)), rng.uniform(1000, 9000, (64, 40))])
    write(tmp_path / "x.tif", phase, "ZYX")
    write(tmp_path / "y.tif", fluo, "CYX")
    cfg = build_config("labelfree", {
        "method": {"method": "labelfree", "depth": 1, "base_channels": 4,
                   "z_as_channels": True, "registration_check": False},
        "data": {"patch_size": [16, 16]}})
    data, norm = LabelfreeModule.prepare_training(cfg, tmp_path / "x.tif", tmp_path / "y.tif")
    assert (data.in_channels, data.out_channels) == (3, 2)
    y_norm = Normalizer.from_dict(norm["target"])
    assert len(y_norm.low) == 2 and y_norm.high[1] > 100 * y_norm.high[0]
    for c in range(2):
        assert np.percentile(data.train_targets[0][c], 50) == pytest.approx(0.5, abs=0.1)
    train_rows = data.train_targets[0].shape[1]
    back = y_norm.invert(data.train_targets[0])
    assert np.allclose(back, fluo[:, :train_rows], rtol=1e-5, atol=1e-3)
    assert "linear_baseline" in data.summary


def test_linear_baseline_recovers_a_linear_relation():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 48, 48)).astype(np.float32)
    y = (2 * x[:1] - x[1:] + 0.5).astype(np.float32)
    params = fit_linear([x], [y])
    pred = apply_linear(params, x)
    assert np.allclose(pred, y, atol=0.05)


def test_config_checks():
    with pytest.raises(MicrosightError, match="refine_from"):
        build_config("labelfree", {"method": {"method": "labelfree", "gan": True}})
    with pytest.raises(MicrosightError, match="z_as_channels"):
        build_config("labelfree", {"method": {"method": "labelfree", "ndim": 3,
                                              "z_as_channels": True},
                                   "data": {"patch_size": [8, 16, 16]}})
    assert target_names(LabelfreeConfig(), 2) == ["target0", "target1"]
    with pytest.raises(MicrosightError, match="one name per channel"):
        target_names(LabelfreeConfig(target_names=["a"]), 2)
