"""classify end to end on tiny data: CLI train / predict / evaluate, objects of a label image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import yaml

from microsight.cli import main

TINY = {
    "name": "tiny-classify",
    "method": {"method": "classify", "widths": [4, 8], "tta": True},
    "data": {"patch_size": [16, 16], "batch_size": 8, "val_fraction": 0.3},
    "training": {"epochs": 2, "steps_per_epoch": 3},
}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: one thread avoids oversubscribing a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def cell(kind: str, rng: np.random.Generator, size: int = 20) -> np.ndarray:
    """Two-channel crop (CYX): a square 'round' cell or a horizontal 'bar'."""
    im = rng.normal(0, 0.2, (2, size, size)).astype(np.float32)
    if kind == "round":
        im[0, 6:14, 6:14] += 2
    else:
        im[0, 9:11, 2:18] += 2
    im[1] = im[0] * 0.5
    return im


def write_class_folder(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for kind, n in counts.items():
        (root / kind).mkdir(parents=True)
        for i in range(n):
            tifffile.imwrite(root / kind / f"{kind}{i}.tif", cell(kind, rng),
                             metadata={"axes": "CYX"})
    return root


def test_classify_cli_end_to_end(tmp_path):
    data = write_class_folder(tmp_path / "cells", {"round": 12, "bar": 4})  # imbalanced
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    model = tmp_path / "model"
    assert main(["train", "classify", "--input", str(data), "--out", str(model), "--config",
                 str(cfg), "--no-progress"]) == 0
    norm = json.loads((model / "normalization.json").read_text())
    assert norm["classes"] == ["bar", "round"] and norm["crop_size"] == 16
    assert json.loads((model / "model.json").read_text())["out_channels"] == 2
    qc = json.loads((model / "qc.json").read_text())
    assert qc["data"]["classes"] == {"bar": 4, "round": 12} and qc["data"]["val"] >= 2
    history = (model / "history.csv").read_text().splitlines()
    # The balanced accuracy is shown during training, no PSNR (meaningless here).
    header = history[0].split(",")
    assert len(history) == 3 and "val_balanced_accuracy" in header
    assert all(row.split(",")[header.index("val_psnr")] == "" for row in history[1:])

    out = tmp_path / "pred.json"
    assert main(["predict", str(model), str(data / "bar" / "bar0.tif"), "--out", str(out),
                 "--no-progress"]) == 0
    (result,) = json.loads(out.read_text())
    assert result["class"] in ("bar", "round")
    assert sum(result["probabilities"].values()) == pytest.approx(1, abs=1e-5)

    report = tmp_path / "report.html"
    assert main(["evaluate", str(model), "--input", str(data), "--target", str(data),
                 "--report", str(report)]) == 0
    html = report.read_text()
    for section in ("Confusion matrix", "Per-class metrics", "balanced_accuracy",
                    "Training history"):
        assert section in html


def test_classify_objects_and_api(tmp_path):
    from microsight import evaluate, predict, train
    from microsight.methods.classify import classify_folder, classify_objects

    data = write_class_folder(tmp_path / "cells", {"round": 6, "bar": 6}, seed=3)
    cfg = {**TINY, "method": {**TINY["method"], "balance": "loss", "tta": False}}
    model = train("classify", data, out=tmp_path / "m", config=cfg, progress=False)

    rng = np.random.default_rng(5)
    image = rng.normal(0, 0.2, (2, 40, 50)).astype(np.float32)
    image[:, 0:8, 0:8] += cell("round", rng)[:, 6:14, 6:14]  # touches the border
    labels = np.zeros((40, 50), np.int32)
    labels[0:8, 0:8] = 3
    labels[25:29, 30:46] = 7
    objects = classify_objects(model, image, labels, axes="CYX")
    assert [o["label"] for o in objects] == [3, 7]
    assert objects[0]["centroid_y"] == pytest.approx(3.5)
    assert all(o["class"] in ("bar", "round") for o in objects)

    listed = classify_folder(model, data)
    assert len(listed) == 12 and {"sample", "class", "probability"} <= set(listed[0])
    single = predict(model, image[:, :16, :16], axes="CYX")
    assert set(single["probabilities"]) == {"bar", "round"}
    ev = evaluate(model, data, None)
    assert 0 <= ev.mean("network", "balanced_accuracy") <= 1
    assert ev.confusion.sum() == 12


def test_classify_rejects_bad_input(tmp_path):
    from microsight import train
    from microsight.errors import MicrosightError

    data = write_class_folder(tmp_path / "one", {"round": 4})
    with pytest.raises(MicrosightError, match="at least 2 class"):
        train("classify", data, out=tmp_path / "m", config=TINY, progress=False)
    with pytest.raises(MicrosightError, match="drop --target"):
        train("classify", data, data, out=tmp_path / "m2", config=TINY, progress=False)


def test_embed_train_cluster_report(tmp_path):
    from microsight import evaluate, predict, train
    from microsight.methods.embed import cluster, embed_objects, project_2d

    data = write_class_folder(tmp_path / "cells", {"round": 8, "bar": 8}, seed=4)
    cfg = {**TINY, "method": {"method": "embed", "widths": [4, 8], "projection_dim": 8},
           "data": {**TINY["data"], "val_fraction": 0.25}}
    model = train("embed", data, out=tmp_path / "m", config=cfg, progress=False)
    assert model.history[-1]["val_loss"] is not None and model.history[-1]["val_psnr"] is None
    report = tmp_path / "embed.html"
    ev = evaluate(model, data, None, report=report)
    assert [r["source"] for r in ev.summary] == ["network", "hand-crafted features"]
    assert 0 <= ev.mean("network", "knn_accuracy") <= 1
    assert "2D map (pca)" in report.read_text()
    vec = predict(model, np.zeros((2, 16, 16), np.float32), axes="CYX")
    assert vec.shape == (8,)
    objs = embed_objects(model, np.ones((2, 30, 30), np.float32),
                         np.pad(np.ones((4, 4), int), ((0, 26), (0, 26))))
    assert len(objs) == 1 and len(objs[0]["embedding"]) == 8
    emb = np.random.default_rng(0).normal(size=(20, 5))
    assert project_2d(emb, "tsne").shape == (20, 2)
    assert set(cluster(emb, 3)) == {0, 1, 2}


def test_embed_accepts_a_flat_folder(tmp_path):
    from microsight import train

    flat = tmp_path / "flat"
    flat.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        tifffile.imwrite(flat / f"c{i}.tif", cell("round" if i % 2 else "bar", rng),
                         metadata={"axes": "CYX"})
    cfg = {**TINY, "method": {"method": "embed", "widths": [4], "projection_dim": 4},
           "training": {"epochs": 1, "steps_per_epoch": 2}}
    model = train("embed", flat, out=tmp_path / "m", config=cfg, progress=False)
    assert model.normalization["classes"] == ["unlabelled"]
