"""Out-of-distribution checks and uncertainty modes through train, bundle, API and CLI."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import tifffile

from microsight import load_model, predict
from microsight.api import OutOfDistributionWarning, export
from microsight.cli import main
from microsight.engine.ood import score_image
from microsight.io import read_image
from tests.conftest import blobs, noisy


def _shifted_images(folder):
    """An image on another intensity scale and one of synthetic shapes."""
    bright = folder / "bright.tif"
    tifffile.imwrite(bright, 20 * noisy(blobs((48, 48), 40), 41))
    shapes = folder / "shapes.tif"
    squares = np.kron(np.random.default_rng(3).integers(0, 2, (6, 6)), np.ones((8, 8)))
    tifffile.imwrite(shapes, (squares * 200).astype(np.float32))
    return bright, shapes


def test_descriptor_is_written_and_survives_folder_and_zip(tiny_model, tmp_path):
    model, _, _ = tiny_model
    assert (model.path / "ood.json").is_file()
    assert model.ood["features"]["dim"] > 0
    zipped = export(model.path, tmp_path / "m.zip")
    for loaded in (load_model(model.path), load_model(zipped)):
        assert loaded.ood == model.ood
    new = tmp_path / "new.tif"
    tifffile.imwrite(new, noisy(blobs((48, 48), 30), 31))
    inside = score_image(load_model(zipped), read_image(new))
    outside = [score_image(model, read_image(p)) for p in _shifted_images(tmp_path)]
    assert inside["available"] and not inside["out_of_distribution"]
    assert all(r["out_of_distribution"] for r in outside)
    assert inside["score"] < min(r["score"] for r in outside)


def test_warning_in_cli_and_sidecar(tiny_model, tmp_path, capsys):
    model, low, _ = tiny_model
    bright, _ = _shifted_images(tmp_path)
    out = tmp_path / "out.tif"
    assert main(["predict", str(model.path), str(bright), "--out", str(out),
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err.count("microsight: warning:") == 1 and "bright.tif" in err
    record = json.loads((tmp_path / "out.tif.qc.json").read_text())
    assert record["out_of_distribution"]["out_of_distribution"] is True
    assert record["out_of_distribution"]["score"] > 1

    ok = tmp_path / "ok.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDistributionWarning)
        predict(model, low / "im0.tif", out=ok)
    assert json.loads((tmp_path / "ok.tif.qc.json").read_text())[
        "out_of_distribution"]["out_of_distribution"] is False
    with pytest.warns(OutOfDistributionWarning, match="unlike the model's training data"):
        predict(model, bright)


def test_bundle_without_descriptor_still_predicts(tiny_model, tmp_path):
    model, low, _ = tiny_model
    old = tmp_path / "old"
    shutil.copytree(model.path, old, ignore=shutil.ignore_patterns("checkpoints"))
    (old / "ood.json").unlink()
    loaded = load_model(old)
    assert loaded.ood is None
    out = tmp_path / "r.tif"
    assert predict(loaded, low / "im0.tif", out=out) == out
    record = json.loads((tmp_path / "r.tif.qc.json").read_text())
    assert record["out_of_distribution"]["available"] is False
    np.testing.assert_allclose(read_image(out).numpy(), predict(model, low / "im0.tif"),
                               atol=1e-5)


def test_cli_ensemble_and_tta_write_maps_next_to_output(tiny_model, tmp_path):
    model, low, _ = tiny_model
    out = tmp_path / "ens.tif"
    assert main(["predict", str(model.path), str(model.path), str(low / "im0.tif"),
                 "--out", str(out), "--uncertainty", "ensemble", "--no-progress"]) == 0
    np.testing.assert_allclose(read_image(out).numpy(), predict(model, low / "im0.tif"),
                               atol=1e-5)
    assert float(np.abs(read_image(tmp_path / "ens.uncertainty.tif").numpy()).max()) == 0
    record = json.loads((tmp_path / "ens.tif.qc.json").read_text())
    assert record["uncertainty"]["mode"] == "ensemble" and len(record["models"]) == 2

    mean, spread = predict(model, low / "im0.tif", uncertainty="tta", tile=32, overlap=8)
    assert spread.shape == mean.shape and (spread >= 0).all()
    assert main(["predict", str(model.path), str(low / "im0.tif"), "--out",
                 str(tmp_path / "t.tif"), "--uncertainty", "tta", "--tile", "32",
                 "--overlap", "8", "--no-progress"]) == 0
    np.testing.assert_allclose(read_image(tmp_path / "t.uncertainty.tif").numpy(), spread,
                               atol=1e-5)


def test_other_channel_count_is_left_to_prediction(tiny_model):
    model, _, _ = tiny_model
    from microsight.io import Image

    rgb = Image(np.zeros((3, 48, 48), np.float32), "CYX", {})
    report = score_image(model, rgb)
    assert report["available"] is False and "3 channel" in report["note"]


def test_evaluate_scores_an_ensemble(tiny_model, capsys):
    from microsight import evaluate

    model, low, high = tiny_model
    single = evaluate(model, low, high).summary
    # An ensemble of a model with itself predicts exactly what the model predicts.
    pair = evaluate([model, model.path], low, high).summary
    assert [r["source"] for r in pair] == [r["source"] for r in single]
    for a, b in zip(single, pair, strict=True):
        for key, value in a.items():
            if isinstance(value, float):
                assert b[key] == pytest.approx(value, rel=1e-4, abs=1e-6)
    assert main(["evaluate", str(model.path), str(model.path), "--input", str(low),
                 "--target", str(high)]) == 0
    assert "test metrics" in capsys.readouterr().out.lower()
