"""Point detection end to end on tiny data: label or CSV targets, CSV out, report."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from microsight import evaluate, predict, train
from microsight.cli import main
from microsight.data.points import POINT_DTYPE
from microsight.errors import MicrosightError

TINY = {
    "name": "tiny-detect",
    "method": {"method": "detect", "depth": 1, "base_channels": 4},
    "data": {"patch_size": [16, 16], "batch_size": 4},
    "training": {"epochs": 2, "steps_per_epoch": 3, "val_tile": 32},
}


def spots(root: Path, n: int = 3, classes: int = 1) -> tuple[Path, Path, Path]:
    """images/ (48x48 spots), labels/ (discs) and points/ (CSV y,x,class) under ``root``."""
    dirs = [root / d for d in ("images", "labels", "points")]
    for d in dirs:
        d.mkdir()
    yy, xx = np.mgrid[:48, :48]
    for i in range(n):
        rng = np.random.default_rng(i)
        img = rng.normal(10, 2, (48, 48)).astype(np.float32)
        labels = np.zeros((48, 48), np.uint16)
        rows = []
        for k in range(5):
            cy, cx = rng.uniform(6, 42, 2)
            c = int(rng.integers(classes))
            d2 = (yy - cy) ** 2 + (xx - cx) ** 2
            img += (100 + 60 * c) * np.exp(-d2 / (2 * 2.5**2))
            labels[d2 <= 9] = k + 1
            rows.append((cy, cx, c))
        tifffile.imwrite(dirs[0] / f"im{i}.tif", img)
        tifffile.imwrite(dirs[1] / f"im{i}.tif", labels)
        with open(dirs[2] / f"im{i}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["y", "x", "class"])
            w.writerows(rows)
    return tuple(dirs)


@pytest.fixture(scope="module")
def detect_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("detect")
    images, labels, points = spots(root)
    model = train("detect", images, labels, out=root / "model", config=TINY, progress=False)
    return model, images, labels, points, root


def test_label_targets_predict_and_evaluate(detect_model):
    model, images, _, points, root = detect_model
    norm = model.normalization
    assert norm["target"] == {"low": [0.0], "high": [1.0]} and norm["mode"] == "dataset"
    assert model.qc["data"]["points"] == 15
    table = predict(model, images / "im0.tif")
    assert table.dtype == POINT_DTYPE
    out = predict(model, images / "im0.tif", out=root / "pts.csv")
    header = out.read_text().splitlines()[0]
    assert header == "y,x,class,score"
    assert len(out.read_text().splitlines()) == len(table) + 1
    with pytest.raises(MicrosightError, match=r"\.csv"):
        predict(model, images / "im0.tif", out=root / "pts.tif")
    result = evaluate(model, images, points, report=root / "report.html")
    sources = [r["source"] for r in result.summary]
    assert sources[0] == "network" and any("LoG" in s for s in sources)
    assert 0 <= result.mean("network", "f1") <= 1
    assert "pooled f1" in result.summary[0]
    html = (root / "report.html").read_text()
    assert "Test metrics" in html and "data:image/png;base64," in html


def test_multiclass_csv_targets_and_cli(tmp_path):
    images, _, points = spots(tmp_path, n=2, classes=2)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    model = tmp_path / "model"
    assert main(["train", "detect", "-i", str(images), "-t", str(points), "-o", str(model),
                 "--config", str(cfg), "--no-progress"]) == 0
    assert '"out_channels": 2' in (model / "model.json").read_text()
    out = tmp_path / "found.csv"
    assert main(["predict", str(model), str(images / "im1.tif"), "--out", str(out),
                 "--no-progress"]) == 0
    assert out.read_text().startswith("y,x,class,score")
    assert main(["evaluate", str(model), "-i", str(images), "-t", str(points)]) == 0


def test_missing_target_is_a_clear_error(tmp_path):
    images, _, points = spots(tmp_path, n=2)
    (points / "im1.csv").unlink()
    with pytest.raises(MicrosightError, match=r"im1\.tif has no target"):
        train("detect", images, points, out=tmp_path / "m", config=TINY, progress=False)
    with pytest.raises(MicrosightError, match="--target"):
        train("detect", images, None, out=tmp_path / "m", config=TINY, progress=False)
