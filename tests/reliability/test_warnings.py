"""Results that would be meaningless say so; successful runs stay clean and safe."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from tests.conftest import TINY_CONFIG, blobs
from tests.reliability.conftest import fingerprint, run_cli

QUICK = {**TINY_CONFIG, "training": {**TINY_CONFIG["training"], "epochs": 1,
                                     "steps_per_epoch": 1}}


def _train(tmp: Path, low: Path, high: Path, *extra) -> list:
    cfg = tmp / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(QUICK))
    return ["train", "care", "-i", low, "-t", high, "-o", tmp / "m", "--config", cfg,
            "--no-progress", *extra]


def _clean(lines: list[str]) -> None:
    assert all(line.startswith("microsight: warning:") for line in lines), lines


def test_target_equal_to_input_warns(tiny_model, tmp_path, capsys):
    _, low, _ = tiny_model
    before = fingerprint(low)
    code, err, _ = run_cli(capsys, _train(tmp_path, low, low))
    assert code == 0, err
    _clean(err)
    assert any("same as --input" in line for line in err), err
    assert fingerprint(low) == before


def test_all_zero_target_and_different_names_warn(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    tifffile.imwrite(tmp_path / "x" / "a.tif", blobs((48, 48), 0))
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((48, 48), np.float32))
    code, err, _ = run_cli(capsys, _train(tmp_path, tmp_path / "x" / "a.tif",
                                          tmp_path / "b.tif"))
    assert code == 0, err
    _clean(err)
    assert any("all zero" in line for line in err), err
    assert any("different names" in line for line in err), err


def test_steps_inside_the_first_epoch(tiny_model, tmp_path, capsys):
    _, low, high = tiny_model
    code, err, out = run_cli(capsys, _train(tmp_path, low, high, "--epochs", "1", "--steps",
                                            "2"))
    assert code == 0, err
    assert "model written" in out
    # Two steps of training cannot beat a Gaussian blur of the noisy inputs: say so.
    _clean(err)
    assert any("classical baseline 'gaussian" in line for line in err), err


def test_overwrite_replaces_a_previous_output(tiny_model, tmp_path, capsys):
    model, low, _ = tiny_model
    args = ["predict", model.path, low / "im0.tif", "--out", tmp_path / "p.ome.zarr",
            "--no-progress"]
    assert run_cli(capsys, args)[0] == 0
    first = fingerprint(tmp_path / "p.ome.zarr")
    code, err, _ = run_cli(capsys, args)
    assert code == 2 and "--overwrite" in err[0]
    assert fingerprint(tmp_path / "p.ome.zarr") == first
    assert run_cli(capsys, [*args, "--overwrite"])[0] == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bundle_files_follow_the_umask(tiny_model):
    umask = os.umask(0)
    os.umask(umask)
    folder = tiny_model[0].path
    for name in ("model.json", "config.yaml", "weights.safetensors", "qc.json",
                 "history.csv", "normalization.json"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o666 & ~umask, name


def test_internal_error_is_one_line_with_a_saved_traceback(tiny_model, capsys, monkeypatch):
    import microsight.api as api

    def broken(model):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(api, "info", broken)
    code, err, _ = run_cli(capsys, ["info", tiny_model[0].path])
    assert code == 1 and len(err) == 1, err
    assert "RuntimeError: something inside broke" in err[0]
    saved = Path(err[0].split("full traceback in ")[1].split(";")[0])
    assert "Traceback" in saved.read_text()
    saved.unlink()
    with pytest.raises(RuntimeError):
        run_cli(capsys, ["info", tiny_model[0].path, "--debug"])


def test_incomplete_bundle_warns_on_predict(tiny_model, tmp_path, capsys):
    model, low, _ = tiny_model
    copy = tmp_path / "m"
    shutil.copytree(model.path, copy)
    qc = json.loads((copy / "qc.json").read_text())
    (copy / "qc.json").write_text(json.dumps({**qc, "complete": False}))
    code, err, _ = run_cli(capsys, ["predict", copy, low / "im0.tif", "--out",
                                    tmp_path / "p.tif", "--no-progress"])
    assert code == 0
    assert any("unfinished" in line for line in err), err


def test_segmentation_targets_must_be_label_images(tmp_path):
    from microsight.engine.checks import require_label_images as _require_label_images
    from microsight.errors import MicrosightError

    tifffile.imwrite(tmp_path / "labels.tif", np.arange(64, dtype=np.uint16).reshape(8, 8))
    _require_label_images(tmp_path / "labels.tif", None)
    tifffile.imwrite(tmp_path / "float_labels.tif", np.ones((8, 8), np.float32))
    _require_label_images(tmp_path / "float_labels.tif", None)
    tifffile.imwrite(tmp_path / "intensity.tif", blobs((8, 8), 0) + 0.5)
    with pytest.raises(MicrosightError, match=r"intensity\.tif is not a label image"):
        _require_label_images(tmp_path / "intensity.tif", None)
