"""``microsight export --format torchscript|onnx``: the exported network agrees with microsight's.

The check inside the export compares on its own test tile; these tests compare
again on other inputs (another tile size and batch) with the file as a user
would load it: ``torch.jit.load`` and onnxruntime.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from microsight import api
from microsight.cli import main
from microsight.engine.export import export_problem, read_metadata, run_onnx
from microsight.errors import MicrosightError
from tests.conftest import blobs, noisy


@pytest.fixture(scope="module")
def care_3d(tmp_path_factory):
    """A tiny 3D CARE model trained for a few steps on two small stacks."""
    root = tmp_path_factory.mktemp("care3d")
    low, high = root / "low", root / "high"
    low.mkdir()
    high.mkdir()
    for i in range(2):
        clean = blobs((8, 24, 24), i)
        tifffile.imwrite(high / f"s{i}.tif", clean, metadata={"axes": "ZYX"})
        tifffile.imwrite(low / f"s{i}.tif", noisy(clean, 5 + i), metadata={"axes": "ZYX"})
    config = {"name": "tiny3d", "method": {"method": "care", "ndim": 3, "depth": 1,
                                           "base_channels": 4},
              "data": {"patch_size": [8, 16, 16], "batch_size": 2},
              "training": {"epochs": 1, "steps_per_epoch": 2, "val_tile": 16}}
    return api.train("care", low, high, out=root / "model", config=config, progress=False)


def _inputs(model, seed: int) -> torch.Tensor:
    """A batch of two tiles of another size than the export's own test tile."""
    ndim = model.module.network_ndim
    side = 48 if ndim == 2 else 16
    return torch.from_numpy(np.random.default_rng(seed).normal(
        0, 1, (2, model.module.in_channels, *[side] * ndim)).astype(np.float32))


def _relative(reference: np.ndarray, output: np.ndarray) -> float:
    return float(np.abs(reference - output).max() / np.ptp(reference))


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("dims", ["2d", "3d"])
def test_exported_network_matches(dims, fmt, tiny_model, care_3d, tmp_path):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    model = tiny_model[0] if dims == "2d" else care_3d
    path = tmp_path / ("net.pt" if fmt == "torchscript" else "net.onnx")
    assert api.export(model, path, format=fmt) == path
    meta = read_metadata(path)
    check = meta["check"]
    assert check["relative_diff"] <= 1e-4 and check["output_range"] > 0
    assert meta["axes"] == ("BCYX" if dims == "2d" else "BCZYX")
    assert meta["normalization"] == model.normalization and meta["method"] == "care"
    x = _inputs(model, 1)
    reference = model.module.predict_batch(x).numpy()
    if fmt == "torchscript":
        with torch.no_grad():
            output = torch.jit.load(str(path))(x).numpy()
    else:
        output = run_onnx(path.read_bytes(), x.numpy())
    assert _relative(reference, output) <= 1e-4
    print(f"{dims} {fmt}: own check {check['max_abs_diff']:.3g} "
          f"(relative {check['relative_diff']:.3g}); other input relative "
          f"{_relative(reference, output):.3g}")


def test_cli_export_torchscript_and_refusals(tiny_model, tmp_path, capsys):
    model = tiny_model[0]
    out = tmp_path / "care.pt"
    assert main(["export", str(model.path), str(out), "--format", "torchscript"]) == 0
    text = capsys.readouterr().out
    assert "wrote" in text and "max abs difference" in text
    assert main(["export", str(model.path), str(tmp_path / "x"), "--format", "keras"]) == 2
    assert "unknown export format" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert export_problem("classify") is not None and export_problem("starconvex") is None


def test_segmentation_maps_export(tmp_path):
    from tests.integration.test_segmentation_methods import tiny, write_set

    images, labels = write_set(tmp_path / "data")
    model = api.train("starconvex", images, labels, out=tmp_path / "m",
                      config=tiny("starconvex", n_rays=8), progress=False)
    path = api.export(model, tmp_path / "star.pt", format="torchscript")
    meta = read_metadata(path)
    assert "polygon" in meta["output"] and meta["check"]["relative_diff"] <= 1e-4
    x = _inputs(model, 2)
    with torch.no_grad():
        out = torch.jit.load(str(path))(x).numpy()
    assert out.shape[1] == 9 and 0 <= out[:, 0].min() and out[:, 0].max() <= 1


def test_localize_export_names_its_channels(tmp_path):
    from tests.integration.test_smlm_methods import _config

    model = api.train("localize", None, out=tmp_path / "loc", progress=False,
                      config=_config("localize"))
    meta = read_metadata(api.export(model, tmp_path / "loc.pt", format="torchscript"))
    assert meta["output_channel_names"] == ["probability", "dx", "dy", "photons",
                                            "background"]
    assert meta["input_channel_names"] == ["frame_before_1", "frame", "frame_after_1"]
    assert any("3x3 local maximum" in step for step in meta["processing"])


def test_a_failed_check_writes_nothing(tiny_model, tmp_path, monkeypatch):
    import microsight.engine.export as export

    monkeypatch.setattr(export, "_reference", lambda model, x: np.zeros((1, 1, 64, 64)) + (
        np.arange(64) / 64.0))
    with pytest.raises(MicrosightError, match="nothing was written"):
        api.export(tiny_model[0], tmp_path / "bad.pt", format="torchscript")
    assert not list(tmp_path.iterdir())


def test_missing_extras_are_one_clear_line(tiny_model, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(MicrosightError, match=r'pip install "microsight\[export\]"'):
        api.export(tiny_model[0], tmp_path / "m.onnx", format="onnx")
    monkeypatch.setitem(sys.modules, "bioimageio.core", None)
    with pytest.raises(MicrosightError, match=r'pip install "microsight\[bioimageio\]"'):
        api.export(tiny_model[0], tmp_path / "m.zip", format="bioimageio")
    assert not list(tmp_path.iterdir())
