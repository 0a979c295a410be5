"""Every bad input gets one clear error line, a non-zero exit code and no partial output."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import yaml

from microsight.cli import main
from tests.conftest import TINY_CONFIG


def _train(tmp_path, low, high, out="model"):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(TINY_CONFIG))
    return main(["train", "care", "-i", str(low), "-t", str(high), "-o", str(tmp_path / out),
                 "--config", str(cfg), "--no-progress"])


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("microsight: error:"), err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def _pairs(tmp_path, low_img, high_img, name="a.tif"):
    low, high = tmp_path / "low", tmp_path / "high"
    low.mkdir(exist_ok=True)
    high.mkdir(exist_ok=True)
    tifffile.imwrite(low / name, low_img)
    tifffile.imwrite(high / name, high_img)
    return low, high


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "low").mkdir()
    (tmp_path / "high").mkdir()
    assert _train(tmp_path, tmp_path / "low", tmp_path / "high") == 2
    _one_error_line(capsys)
    assert not (tmp_path / "model").exists()


def test_missing_input(tmp_path, capsys):
    assert _train(tmp_path, tmp_path / "nope", tmp_path / "nope2") == 2
    assert "nope" in _one_error_line(capsys)


def test_mismatched_shapes(tmp_path, capsys):
    low, high = _pairs(tmp_path, np.zeros((48, 48), np.float32), np.zeros((40, 40), np.float32))
    assert _train(tmp_path, low, high) == 2
    assert "must match" in _one_error_line(capsys)
    assert not (tmp_path / "model").exists()


def test_image_smaller_than_patch(tmp_path, capsys):
    low, high = _pairs(tmp_path, np.ones((12, 12), np.float32), np.ones((12, 12), np.float32))
    assert _train(tmp_path, low, high) == 2
    assert "patch" in _one_error_line(capsys)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_training_data(tmp_path, capsys, bad):
    img = np.random.default_rng(0).random((48, 48)).astype(np.float32)
    broken = img.copy()
    broken[3, 4] = bad
    low, high = _pairs(tmp_path, broken, img)
    assert _train(tmp_path, low, high) == 2
    assert "NaN" in _one_error_line(capsys)


def test_missing_partner(tmp_path, capsys):
    img = np.zeros((48, 48), np.float32)
    low, high = _pairs(tmp_path, img, img, "a.tif")
    tifffile.imwrite(low / "b.tif", img)
    assert _train(tmp_path, low, high) == 2
    assert "b.tif" in _one_error_line(capsys)


def test_unreadable_file_for_prediction(tmp_path, tiny_model, capsys):
    model = tiny_model[0]
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"this is not a tiff")
    out = tmp_path / "out.tif"
    assert main(["predict", str(model.path), str(bad), "--out", str(out), "--no-progress"]) == 2
    assert "broken.tif" in _one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.tif"]


def test_wrong_axes_for_2d_model(tmp_path, tiny_model, capsys):
    model = tiny_model[0]
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.zeros((3, 32, 32), np.float32), metadata={"axes": "ZYX"},
                     photometric="minisblack")
    out = tmp_path / "out.tif"
    assert main(["predict", str(model.path), str(stack), "--out", str(out),
                 "--no-progress"]) == 2
    assert "--axes" in _one_error_line(capsys)
    assert not out.exists()
    # The user says what the planes are, and it works.
    assert main(["predict", str(model.path), str(stack), "--out", str(out), "--axes", "TYX",
                 "--no-progress"]) == 0
    assert out.exists()


def test_nan_during_prediction_leaves_no_file(tmp_path, tiny_model, capsys):
    model = tiny_model[0]
    img = np.zeros((64, 64), np.float32)
    img[60, 60] = np.nan
    src = tmp_path / "nan.tif"
    tifffile.imwrite(src, img)
    out = tmp_path / "out.ome.zarr"
    assert main(["predict", str(model.path), str(src), "--out", str(out), "--tile", "32",
                 "--no-progress"]) == 2
    assert "NaN" in _one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.tif"]


def test_not_a_model(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["info", str(tmp_path / "empty")]) == 2
    assert "not a complete microsight model" in _one_error_line(capsys)


def test_existing_model_is_not_overwritten(tmp_path, pair_dirs, capsys):
    low, high = pair_dirs
    assert _train(tmp_path, low, high) == 0
    capsys.readouterr()
    assert _train(tmp_path, low, high) == 2
    assert "--resume" in _one_error_line(capsys)


def test_usage_error_exit_code(capsys):
    assert main(["train"]) != 0


def test_wrong_channel_count_for_prediction(tmp_path, tiny_model, capsys):
    model = tiny_model[0]
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((32, 32, 3), np.uint8), photometric="rgb")
    out = tmp_path / "out.tif"
    assert main(["predict", str(model.path), str(rgb), "--out", str(out), "--no-progress"]) == 2
    err = _one_error_line(capsys)
    assert "3 channel(s)" in err and "trained on 1" in err and "grey" in err
    assert not out.exists()


def test_zoom_is_refused_for_a_denoiser(tmp_path, pair_dirs, capsys):
    # Interpolating a noisy patch changes its noise: CARE cannot learn from zoomed pairs.
    low, high = pair_dirs
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**TINY_CONFIG,
                                   "data": {**TINY_CONFIG["data"], "scale_jitter": 0.3}}))
    assert main(["train", "care", "-i", str(low), "-t", str(high), "-o", str(tmp_path / "m"),
                 "--config", str(cfg), "--no-progress"]) == 2
    assert "scale_jitter" in _one_error_line(capsys)
    assert not (tmp_path / "m").exists()
