"""sr and care-iso end to end on tiny data: train, predict (scaled outputs), evaluate."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import yaml

from microsight import api
from microsight.cli import main
from microsight.errors import MicrosightError
from microsight.io import read_image, write_image
from tests.conftest import blobs

TRAINING = {"epochs": 1, "steps_per_epoch": 3, "val_tile": 32}


def _sr_config(**method) -> dict:
    return {"name": "tiny-sr",
            "method": {"method": "sr", "depth": 1, "base_channels": 4, "channels": 8,
                       "n_groups": 1, "n_blocks": 1, "reduction": 4, **method},
            "data": {"patch_size": [16, 16], "batch_size": 4}, "training": TRAINING}


@pytest.fixture(scope="module")
def sr_data(tmp_path_factory):
    """hr/ (48x48) and lr/ (24x24 block averages) with two images paired by name."""
    root = tmp_path_factory.mktemp("sr")
    hr, lr = root / "hr", root / "lr"
    hr.mkdir()
    lr.mkdir()
    for i in range(2):
        clean = blobs((48, 48), 20 + i)
        tifffile.imwrite(hr / f"im{i}.tif", clean)
        tifffile.imwrite(lr / f"im{i}.tif", clean.reshape(24, 2, 24, 2).mean(axis=(1, 3)))
    return root, lr, hr


@pytest.fixture(scope="module")
def sr_model(sr_data):
    """Trained on high-resolution images only (generate_pairs), through the CLI."""
    root, _, hr = sr_data
    cfg = root / "sr.yaml"
    cfg.write_text(yaml.safe_dump(_sr_config(generate_pairs=True, blur_sigma=0.5)))
    out = root / "model"
    assert main(["train", "sr", "--input", str(hr), "--out", str(out), "--config", str(cfg),
                 "--no-progress"]) == 0
    return out


def test_sr_generate_pairs_then_predict(sr_model, sr_data):
    root, lr, _ = sr_data
    assert api.info(sr_model)["data"]["factor"] == 2
    write_image(root / "small.tif", read_image(lr / "im0.tif").numpy(), "YX",
                {"Y": 0.2, "X": 0.2})
    out = root / "up.tif"
    assert main(["predict", str(sr_model), str(root / "small.tif"), "--out", str(out),
                 "--no-progress"]) == 0
    result = read_image(out)
    assert result.shape == (48, 48) and np.isfinite(result.numpy()).all()
    assert result.pixel_sizes == pytest.approx({"Y": 0.1, "X": 0.1})
    tiled = api.predict(sr_model, read_image(lr / "im0.tif").numpy(), tile=16, overlap=4)
    assert tiled.shape == (48, 48)


def test_sr_explicit_pairs_rcan(sr_data, tmp_path):
    _, lr, hr = sr_data
    model = api.train("sr", lr, hr, out=tmp_path / "rcan", config=_sr_config(network="rcan"),
                      progress=False)
    assert model.module.output_scale == 2
    stack = np.stack([read_image(lr / "im1.tif").numpy()] * 2)
    assert api.predict(model, stack, axes="TYX").shape == (2, 48, 48)
    with pytest.raises(MicrosightError, match="target must be"):
        api.train("sr", hr, hr, out=tmp_path / "bad", config=_sr_config(), progress=False)
    with pytest.raises(MicrosightError, match="--target"):
        api.train("sr", lr, out=tmp_path / "bad", config=_sr_config(), progress=False)


def test_sr_evaluate_api(sr_model, sr_data, tmp_path):
    _, lr, hr = sr_data
    result = api.evaluate(sr_model, lr, hr, report=tmp_path / "report.html")
    assert {r["source"] for r in result.summary} == {
        "network", "nearest upsampling (x2)", "bicubic upsampling (x2)"}
    html = result.report_path.read_text()
    assert "bicubic upsampling (x2)" in html and "data:image/png;base64," in html


def test_care_iso_train_and_predict(tmp_path):
    z = np.linspace(-1, 1, 16)[:, None, None]
    iso = blobs((16, 16, 16), 5) + 60 * np.exp(-z**2 / 0.1)
    stack = iso[1::4]  # every 4th plane: Z step 4x the XY pixel
    write_image(tmp_path / "stack.ome.tif", stack.astype(np.float32), "ZYX",
                {"Z": 1.0, "Y": 0.25, "X": 0.25})
    config = {"name": "tiny-iso", "method": {"method": "care-iso", "depth": 1,
                                             "base_channels": 4},
              "data": {"patch_size": [16, 16], "batch_size": 4}, "training": TRAINING}
    model = api.train("care-iso", tmp_path / "stack.ome.tif", out=tmp_path / "iso",
                      config=config, progress=False)
    assert model.config.method.anisotropy == pytest.approx(4.0)
    assert model.config.data.rotations is False
    out = tmp_path / "iso.ome.tif"
    assert main(["predict", str(tmp_path / "iso"), str(tmp_path / "stack.ome.tif"), "--out",
                 str(out), "--no-progress"]) == 0
    result = read_image(out)
    assert result.axes == "ZYX" and result.shape == (16, 16, 16)
    assert result.pixel_sizes == pytest.approx({"Z": 0.25, "Y": 0.25, "X": 0.25})
    assert np.isfinite(result.numpy()).all()
    with pytest.raises(MicrosightError, match="no --target"):
        api.train("care-iso", tmp_path / "stack.ome.tif", tmp_path / "stack.ome.tif",
                  out=tmp_path / "bad", config=config, progress=False)
    # Evaluation: the anisotropic stack against the isotropic volume it was cut from.
    (tmp_path / "in").mkdir()
    (tmp_path / "gt").mkdir()
    write_image(tmp_path / "in" / "s.tif", stack.astype(np.float32), "ZYX")
    write_image(tmp_path / "gt" / "s.tif", iso.astype(np.float32), "ZYX")
    result = api.evaluate(tmp_path / "iso", tmp_path / "in", tmp_path / "gt",
                          report=tmp_path / "iso.html")
    sources = {r["source"] for r in result.rows}
    assert sources == {"network", "nearest plane along Z", "linear interpolation along Z"}
    assert all(np.isfinite(r["psnr"]) for r in result.rows)
    assert "linear interpolation along Z" in (tmp_path / "iso.html").read_text()
    write_image(tmp_path / "gt" / "s.tif", iso[:8].astype(np.float32), "ZYX")
    with pytest.raises(MicrosightError, match="needs"):
        api.evaluate(tmp_path / "iso", tmp_path / "in", tmp_path / "gt")
