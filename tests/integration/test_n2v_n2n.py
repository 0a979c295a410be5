"""Noise2Void and Noise2Noise end to end on tiny data, through the command line."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import tifffile
import torch
import yaml

from microsight import evaluate
from microsight.cli import main
from microsight.io import read_image
from tests.conftest import blobs, noisy

TINY = {
    "data": {"patch_size": [16, 16], "batch_size": 4},
    "training": {"epochs": 2, "steps_per_epoch": 3, "val_tile": 32},
}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny networks: intra-op threads only add overhead (a lot on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(tmp_path, method: dict, **data) -> str:
    cfg = {"name": f"tiny-{method['method']}",
           "method": {"depth": 1, "base_channels": 4, **method},
           "data": {**TINY["data"], **data}, "training": TINY["training"]}
    path = tmp_path / f"{method['method']}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture
def noisy_dirs(tmp_path):
    """noisy_a/, noisy_b/ (two independent noisy frames per field) and clean/, 48x48."""
    dirs = {name: tmp_path / name for name in ("noisy_a", "noisy_b", "clean")}
    for d in dirs.values():
        d.mkdir()
    for i in range(3):
        clean = blobs((48, 48), i)
        tifffile.imwrite(dirs["clean"] / f"im{i}.tif", clean)
        tifffile.imwrite(dirs["noisy_a"] / f"im{i}.tif", noisy(clean, 10 + i))
        tifffile.imwrite(dirs["noisy_b"] / f"im{i}.tif", noisy(clean, 20 + i))
    return dirs


def _history(model) -> list[dict]:
    with open(model / "history.csv") as f:
        return list(csv.DictReader(f))


def _check_trained(model, method: str, epochs: int = 2) -> None:
    info = json.loads((model / "model.json").read_text())
    assert info["method"] == method
    rows = _history(model)
    assert len(rows) == epochs
    for row in rows:
        assert math.isfinite(float(row["val_loss"]))
        # A PSNR against noisy data (n2v) would mislead: only the loss is kept then.
        assert (row["val_psnr"] == "") == (method == "n2v")
        assert float(row["train_loss"]) > 0


def _predict_and_evaluate(tmp_path, model, image, inputs, clean, *, report: bool = False
                          ) -> np.ndarray:
    """Predict one image with the CLI; score the model against clean targets."""
    out = tmp_path / f"{model.name}-restored.tif"
    assert main(["predict", str(model), str(image), "--out", str(out), "--no-progress"]) == 0
    restored = read_image(out)
    source = read_image(image)
    assert restored.shape == source.shape and restored.axes == source.axes
    result = restored.numpy()
    assert np.isfinite(result).all()
    if report:  # the CLI, with its HTML report (a few seconds of matplotlib)
        path = tmp_path / f"{model.name}-report.html"
        assert main(["evaluate", str(model), "--input", str(inputs), "--target", str(clean),
                     "--report", str(path)]) == 0
        html = path.read_text()
        for section in ("Test metrics", "network", "gaussian", "Training history"):
            assert section in html
    else:  # the same function behind the CLI, whose numbers are easier to check
        result_table = evaluate(model, inputs, clean)
        for source in ("network", "input (no restoration)"):
            for metric in ("psnr", "ssim", "nrmse"):
                assert math.isfinite(result_table.mean(source, metric))
    return result


def test_methods_are_registered(capsys):
    assert main(["methods"]) == 0
    listed = capsys.readouterr().out
    assert "n2v" in listed and "n2n" in listed and "noisy" in listed
    assert main(["config", "n2v"]) == 0
    method = yaml.safe_load(capsys.readouterr().out)["method"]
    assert method["method"] == "n2v" and method["manipulator"] == "uniform"


def test_n2v_trains_from_noisy_images_alone(tmp_path, noisy_dirs):
    model = tmp_path / "n2v"
    cfg = _config(tmp_path, {"method": "n2v", "masked_fraction": 0.02})
    assert main(["train", "n2v", "--input", str(noisy_dirs["noisy_a"]), "--out", str(model),
                 "--config", cfg, "--no-progress"]) == 0
    _check_trained(model, "n2v")
    qc = json.loads((model / "qc.json").read_text())
    assert "target" not in qc["data"]
    norm = json.loads((model / "normalization.json").read_text())
    assert norm["input"] == norm["target"]  # the input's percentiles for both
    image = noisy_dirs["noisy_a"] / "im0.tif"
    restored = _predict_and_evaluate(tmp_path, model, image, noisy_dirs["noisy_a"],
                                     noisy_dirs["clean"], report=True)
    assert not np.allclose(restored, tifffile.imread(image))  # no identity shortcut


def test_n2v2_with_struct_mask(tmp_path, noisy_dirs):
    model = tmp_path / "n2v2"
    cfg = _config(tmp_path, {"method": "n2v", "variant": "n2v2", "struct_mask": "horizontal",
                             "masked_fraction": 0.02})
    assert main(["train", "n2v", "-i", str(noisy_dirs["noisy_a"]), "-o", str(model),
                 "--config", cfg, "--no-progress"]) == 0
    _check_trained(model, "n2v")
    saved = yaml.safe_load((model / "config.yaml").read_text())["method"]
    assert (saved["variant"], saved["manipulator"], saved["struct_mask"]) == (
        "n2v2", "median", "horizontal")
    _predict_and_evaluate(tmp_path, model, noisy_dirs["noisy_a"] / "im1.tif",
                          noisy_dirs["noisy_a"], noisy_dirs["clean"])


def test_n2v_3d_stack(tmp_path):
    noisy_dir, clean_dir = tmp_path / "noisy3d", tmp_path / "clean3d"
    noisy_dir.mkdir()
    clean_dir.mkdir()
    for i in range(2):
        clean = blobs((8, 24, 24), i)
        tifffile.imwrite(clean_dir / f"s{i}.tif", clean, metadata={"axes": "ZYX"})
        tifffile.imwrite(noisy_dir / f"s{i}.tif", noisy(clean, 5 + i), metadata={"axes": "ZYX"})
    model = tmp_path / "n2v3d"
    cfg = _config(tmp_path, {"method": "n2v", "ndim": 3, "masked_fraction": 0.02},
                  patch_size=[8, 16, 16], batch_size=2)
    assert main(["train", "n2v", "-i", str(noisy_dir), "-o", str(model), "--config", cfg,
                 "--no-progress"]) == 0
    _check_trained(model, "n2v")
    assert json.loads((model / "model.json").read_text())["ndim"] == 3
    restored = _predict_and_evaluate(tmp_path, model, noisy_dir / "s0.tif", noisy_dir,
                                     clean_dir)
    assert restored.shape == (8, 24, 24)


def test_n2n_trains_on_pairs_of_noisy_frames(tmp_path, noisy_dirs):
    model = tmp_path / "n2n"
    cfg = _config(tmp_path, {"method": "n2n"})
    assert main(["train", "n2n", "-i", str(noisy_dirs["noisy_a"]), "-t",
                 str(noisy_dirs["noisy_b"]), "-o", str(model), "--config", cfg,
                 "--no-progress"]) == 0
    _check_trained(model, "n2n")
    _predict_and_evaluate(tmp_path, model, noisy_dirs["noisy_a"] / "im2.tif",
                          noisy_dirs["noisy_a"], noisy_dirs["clean"])


def test_wrong_number_of_folders_is_one_clear_error(tmp_path, noisy_dirs, capsys):
    a, b = str(noisy_dirs["noisy_a"]), str(noisy_dirs["noisy_b"])
    n2v = _config(tmp_path, {"method": "n2v"})
    assert main(["train", "n2v", "-i", a, "-t", b, "-o", str(tmp_path / "x"), "--config", n2v,
                 "--no-progress"]) == 2
    assert "drop --target" in capsys.readouterr().err
    n2n = _config(tmp_path, {"method": "n2n"})
    assert main(["train", "n2n", "-i", a, "-o", str(tmp_path / "y"), "--config", n2n,
                 "--no-progress"]) == 2
    assert "n2n needs --target" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
