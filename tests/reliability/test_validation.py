"""Validation the user steers: --val-input/--val-target, --group-pattern, clear mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import yaml

from tests.conftest import TINY_CONFIG, blobs, noisy, write_pairs
from tests.reliability.conftest import run_cli

QUICK = {**TINY_CONFIG, "training": {**TINY_CONFIG["training"], "epochs": 1,
                                     "steps_per_epoch": 2}}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(tmp: Path, method: str = "care") -> Path:
    path = tmp / f"{method}.yaml"
    path.write_text(yaml.safe_dump({**QUICK, "method": {**QUICK["method"], "method": method}}))
    return path


def _val_pairs(root: Path, n: int = 2, channels: int = 1) -> tuple[Path, Path]:
    """vlow/ and vhigh/: other fields of view (other seeds) named v0.tif, v1.tif..."""
    low, high = root / "vlow", root / "vhigh"
    low.mkdir()
    high.mkdir()
    for i in range(n):
        clean = blobs((48, 48), 100 + i)
        image = noisy(clean, 200 + i)
        if channels > 1:
            image = np.stack([image] * channels)
        tifffile.imwrite(low / f"v{i}.tif", image, metadata={"axes": "CYX" if channels > 1
                                                             else "YX"})
        tifffile.imwrite(high / f"v{i}.tif", clean)
    return low, high


def test_val_input_trains_on_all_and_validates_on_the_given_files(tmp_path, capsys):
    low, high = write_pairs(tmp_path)
    vlow, vhigh = _val_pairs(tmp_path)
    out = tmp_path / "m"
    code, err, _ = run_cli(capsys, ["train", "care", "-i", low, "-t", high, "-o", out,
                                    "--config", _config(tmp_path), "--val-input", vlow,
                                    "--val-target", vhigh, "--no-progress"])
    assert code == 0, err
    data = json.loads((out / "qc.json").read_text())["data"]
    assert data["split_rule"] == "given"
    assert data["items"] == 3  # every training pair trains
    assert data["val_names"] == ["v0.tif", "v1.tif"]
    assert data["validation"]["input"] == str(vlow) and data["validation"]["items"] == 2
    saved = yaml.safe_load((out / "config.yaml").read_text())["data"]
    assert saved["val_input"] == str(vlow) and saved["val_target"] == str(vhigh)
    assert "v0.tif, v1.tif" in (out / "README.md").read_text()
    assert "val_loss" in (out / "history.csv").read_text()


def test_n2v_takes_val_input_alone(tmp_path, capsys):
    low, _ = write_pairs(tmp_path)
    vlow, vhigh = _val_pairs(tmp_path, n=1)
    base = ["train", "n2v", "-i", low, "-o", tmp_path / "m", "--config",
            _config(tmp_path, "n2v"), "--val-input", vlow, "--no-progress"]
    code, err, _ = run_cli(capsys, [*base, "--val-target", vhigh])
    assert code == 2 and len(err) == 1 and "takes no --val-target" in err[0], err
    code, err, _ = run_cli(capsys, base)
    assert code == 0, err
    data = json.loads((tmp_path / "m" / "qc.json").read_text())["data"]
    assert data["split_rule"] == "given" and data["val_names"] == ["v0.tif"]


def test_one_field_of_view_warns_with_the_fix(tmp_path, capsys):
    low, high = tmp_path / "low", tmp_path / "high"
    low.mkdir()
    high.mkdir()
    clean = blobs((64, 64), 0)
    for i in range(3):  # three noisy frames of one field of view, one clean target
        tifffile.imwrite(low / f"fov_{i:02d}.tif", noisy(clean, i))
        tifffile.imwrite(high / f"fov_{i:02d}.tif", clean)
    code, err, _ = run_cli(capsys, ["train", "care", "-i", low, "-t", high, "-o",
                                    tmp_path / "m", "--config", _config(tmp_path),
                                    "--no-progress"])
    assert code == 0, err
    (line,) = [e for e in err if "one group" in e]
    assert "--val-input/--val-target" in line and "--group-pattern" in line
    qc = json.loads((tmp_path / "m" / "qc.json").read_text())
    assert qc["data"]["split_rule"] == "rows"
    assert any("one group" in c for c in qc["data_checks"])


@pytest.mark.parametrize(("extra", "message"), [
    (["--val-input", "{tmp}/nowhere"], "--val-input {tmp}/nowhere: no such file or folder"),
    (["--val-input", "{vlow}"], "validates on pairs like it trains: give --val-target"),
    (["--val-target", "{vhigh}"], "--val-target needs --val-input"),
    (["--val-input", "{low}", "--val-target", "{high}"], "is the same as --input"),
    (["--val-input", "{c2}", "--val-target", "{vhigh}"],
     "--val-input images have 2 channel(s) but the training inputs have 1"),
    (["--group-pattern", "fov("], "not a valid regular expression"),
    (["--group-pattern", "fov"], "does not match the file name im0.tif"),
])
def test_bad_validation_options_fail_in_one_line(tmp_path, capsys, extra, message):
    low, high = write_pairs(tmp_path)
    vlow, vhigh = _val_pairs(tmp_path)
    c2 = tmp_path / "c2"
    c2.mkdir()
    for p in vlow.iterdir():
        image = tifffile.imread(p)
        tifffile.imwrite(c2 / p.name, np.stack([image, image]), metadata={"axes": "CYX"})
    names = {"tmp": tmp_path, "vlow": vlow, "vhigh": vhigh, "low": low, "high": high, "c2": c2}
    extra = [e.format(**names) for e in extra]
    code, err, _ = run_cli(capsys, ["train", "care", "-i", low, "-t", high, "-o",
                                    tmp_path / "m", "--config", _config(tmp_path),
                                    "--no-progress", *extra])
    assert code == 2, err
    assert len(err) == 1 and message.format(**names) in err[0], err
    assert not (tmp_path / "m" / "weights.safetensors").exists()


def test_method_with_its_own_validation_refuses_val_input(tmp_path):
    from microsight import train
    from microsight.errors import MicrosightError
    from tests.unit.test_method_contract import _tiny

    config, _ = _tiny("deepstorm")  # simulated movies: their validation frames are made too
    low, _ = write_pairs(tmp_path)
    with pytest.raises(MicrosightError, match="deepstorm makes its own validation data"):
        train("deepstorm", "simulate", out=tmp_path / "m", config=config, val_input=low,
              progress=False)
    assert not (tmp_path / "m" / "weights.safetensors").exists()
