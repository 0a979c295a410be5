"""The one report: training QC in every bundle, trust sections in the evaluation report."""

from __future__ import annotations

import json
import shutil

import pytest
import tifffile

from microsight import evaluate, train
from microsight.engine.training import DataSplitWarning
from tests.conftest import TINY_CONFIG, write_pairs


@pytest.fixture(scope="module")
def probabilistic_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust")
    low, high = write_pairs(root)
    cfg = {**TINY_CONFIG, "method": {**TINY_CONFIG["method"], "probabilistic": True}}
    model = train("care", low, high, out=root / "model", config=cfg, progress=False)
    return model, root, low, high


def test_bundle_has_training_report_and_qc(probabilistic_model):
    _, root, _, _ = probabilistic_model
    qc = json.loads((root / "model" / "qc.json").read_text())
    assert qc["overfitting"]["status"] == "too short"  # two epochs only
    assert qc["overfitting"]["best_epoch"] == qc["best_epoch"]
    val = qc["validation"]
    # Three 48x48 images, one held out, scored in 32-pixel tiles: four tiles.
    assert val["tiles"] == 4
    assert val["val_psnr"] == pytest.approx(qc["best_val_psnr"], abs=0.05)
    assert "only 4 tile" in val["warning"]
    assert qc["data_checks"] == []  # nine patches' worth of validation pixels, no leak
    assert qc["overlap"]["inputs"]["exact_duplicates"] == 0
    page = (root / "model" / "report.html").read_text()
    for heading in ("Training history", "Over-fitting check", "Validation estimate",
                    "Data checks", "Configuration"):
        assert f">{heading}</a>" in page


def test_evaluation_report_has_trust_sections(probabilistic_model, tmp_path):
    model, _, low, high = probabilistic_model
    result = evaluate(model, low, high, report=tmp_path / "eval.html")
    network = result.summary[0]
    assert network["source"] == "network"
    assert 0 < network["rsp"] <= 1 and network["rse"] > 0
    assert network["rsp 95% CI"] is not None  # bootstrap over the three images
    page = result.report_path.read_text()
    for heading in ("Test metrics (mean over images)", "Example: im0.tif", "Per-image metrics",
                    "Resolution (decorrelation analysis)", "Uncertainty calibration",
                    "Calibration summary", "Over-fitting check", "Configuration"):
        assert f">{heading}</a>" in page


@pytest.mark.slow
def test_evaluation_report_as_pdf(probabilistic_model, tmp_path):
    model, _, low, high = probabilistic_model
    pdf = evaluate(model, low, high, report=tmp_path / "eval.pdf").report_path
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 10_000


def test_duplicated_validation_image_warns(tmp_path):
    low, high = write_pairs(tmp_path, n=2)
    # The same field of view twice: inputs re-saved with another gain and offset.
    tifffile.imwrite(low / "im1.tif", 0.5 * tifffile.imread(low / "im0.tif") + 3.0)
    shutil.copy(high / "im0.tif", high / "im1.tif")
    cfg = {**TINY_CONFIG, "training": {**TINY_CONFIG["training"], "epochs": 1}}
    # The automatic split sees the shared target and keeps both images on one side.
    with pytest.warns(DataSplitWarning, match="form one group"):
        train("care", low, high, out=tmp_path / "grouped", config=cfg, progress=False)
    qc = json.loads((tmp_path / "grouped" / "qc.json").read_text())
    assert qc["data"]["split_rule"] == "rows"
    assert qc["overlap"]["targets"]["exact_duplicates"] == 0
    # Validation data given apart that repeat the training data are named, with the fix.
    (tmp_path / "vlow").mkdir()
    (tmp_path / "vhigh").mkdir()
    shutil.move(low / "im1.tif", tmp_path / "vlow" / "im1.tif")
    shutil.move(high / "im1.tif", tmp_path / "vhigh" / "im1.tif")
    with pytest.warns(DataSplitWarning, match="repeat training targets.*--val-input"):
        train("care", low, high, out=tmp_path / "m", config=cfg, progress=False,
              val_input=tmp_path / "vlow", val_target=tmp_path / "vhigh")
    qc = json.loads((tmp_path / "m" / "qc.json").read_text())
    assert qc["overlap"]["targets"]["exact_duplicates"] == 1
    assert qc["overlap"]["inputs"]["near_duplicates"] == 1
