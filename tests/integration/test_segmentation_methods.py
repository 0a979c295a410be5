"""Tiny end-to-end runs of the segmentation methods: train a few steps, predict, evaluate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from microsight import api
from microsight.engine.bundle import load_model
from microsight.errors import MicrosightError
from microsight.io.labels import read_labels
from microsight.io.shapes import read_geojson, read_table


def nuclei(shape: tuple[int, int], seed: int, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Bright noisy disks (some touching) and their instance labels."""
    from skimage.draw import disk

    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint16)
    for i in range(n):
        centre = rng.uniform(6, np.array(shape) - 6)
        rr, cc = disk(tuple(centre), rng.uniform(3, 6), shape=shape)
        labels[rr, cc] = i + 1
    img = (labels > 0) * 150.0 + rng.normal(20, 10, shape)
    return img.astype(np.float32), labels


def write_set(root: Path, n: int = 3, shape: tuple[int, int] = (48, 48)) -> tuple[Path, Path]:
    images, labels = root / "images", root / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    for i in range(n):
        img, lab = nuclei(shape, i)
        tifffile.imwrite(images / f"n{i}.tif", img)
        tifffile.imwrite(labels / f"n{i}.tif", lab)
    return images, labels


def tiny(method: str, **extra) -> dict:
    return {"name": f"tiny-{method}",
            "method": {"method": method, "depth": 1, "base_channels": 4, **extra},
            "data": {"patch_size": [16, 16], "batch_size": 4},
            "training": {"epochs": 1, "steps_per_epoch": 2, "val_tile": 32}}


@pytest.fixture(scope="module")
def seg_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_set(tmp_path_factory.mktemp("seg"))


@pytest.mark.parametrize("method", ["starconvex", "distmap", "unet-seg"])
def test_train_predict_evaluate(method: str, seg_data, tmp_path: Path) -> None:
    images, labels = seg_data
    extra = {"n_rays": 8} if method == "starconvex" else {}
    model = api.train(method, images, labels, out=tmp_path / "m", config=tiny(method, **extra),
                      progress=False)
    assert model.module.out_channels == {"starconvex": 9, "distmap": 2, "unet-seg": 3}[method]
    if method == "unet-seg":
        weights = model.config.method.class_weights
        assert len(weights) == 3 and weights[2] > weights[0]
    else:  # thresholds chosen on the validation labels, kept in the bundle
        tuned = model.qc["postprocessing"]
        assert tuned["score"] >= tuned["score_before"] and tuned["n_objects"] > 0
        stored = load_model(tmp_path / "m").config.method
        assert {k: getattr(stored, k) for k in tuned["params"]} == tuned["params"]
    out = api.predict(tmp_path / "m", images / "n0.tif", out=tmp_path / "pred.tif")
    pred = read_labels(out)
    assert pred.shape == (48, 48)
    prob = tifffile.imread(tmp_path / "pred_prob.tif")
    assert prob.shape[-2:] == (48, 48) and np.isfinite(prob).all()
    suffix = "_classes.csv" if method == "unet-seg" else "_objects.csv"
    table = read_table(tmp_path / f"pred{suffix}")
    assert "label" in table and "area" in table
    if method == "starconvex" and len(table["label"]):
        assert set(read_geojson(tmp_path / "pred_polygons.geojson")) == set(table["label"])
    ev = api.evaluate(model, images, labels, report=tmp_path / "r.html")
    sources = {r["source"] for r in ev.summary}
    assert "network" in sources and any("Otsu" in s for s in sources)
    for row in ev.summary:
        assert 0 <= row["ap@0.5"] <= 1 and 0 <= row["pooled ap@0.5"] <= 1
    assert "Average precision" in (tmp_path / "r.html").read_text()


def test_baseline_finds_separate_nuclei(seg_data) -> None:
    """The classical baseline alone segments well-separated bright disks."""
    from microsight.data.baselines import classical_instances
    from microsight.metrics.segmentation import matching

    img, lab = nuclei((64, 64), 5, n=3)
    pred = classical_instances(img[None], min_distance=4)
    assert matching(lab, pred, 0.5)[0.5]["f1"] > 0.6


def test_labels_need_targets(seg_data, tmp_path: Path) -> None:
    from microsight.errors import MicrosightError

    images, _ = seg_data
    with pytest.raises(MicrosightError, match="--target"):
        api.train("starconvex", images, None, out=tmp_path / "m", config=tiny("starconvex"))


@pytest.mark.slow
def test_distmap_3d(tmp_path: Path) -> None:
    """3D volumes: train a few steps, predict labels of the same shape."""
    from skimage.draw import ellipsoid

    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        lab = np.zeros((16, 32, 32), np.uint16)
        for k in range(3):
            blob = ellipsoid(3, 5, 5)
            z, y, x = rng.integers(0, [16 - 7, 32 - 11, 32 - 11])
            lab[z:z + blob.shape[0], y:y + blob.shape[1], x:x + blob.shape[2]][blob] = k + 1
        img = (lab > 0) * 100.0 + rng.normal(10, 5, lab.shape)
        tifffile.imwrite(images / f"v{i}.tif", img.astype(np.float32))
        tifffile.imwrite(labels / f"v{i}.tif", lab)
    config = {"method": {"method": "distmap", "ndim": 3, "depth": 1, "base_channels": 4},
              "data": {"patch_size": [8, 16, 16], "batch_size": 2, "val_fraction": 0.5},
              "training": {"epochs": 1, "steps_per_epoch": 2, "val_tile": 16}}
    model = api.train("distmap", images, labels, out=tmp_path / "m", config=config,
                      axes="ZYX", progress=False)
    pred = api.predict(model, images / "v0.tif", axes="ZYX")
    assert pred.shape == (16, 32, 32) and pred.dtype == np.int32


@pytest.mark.slow
def test_command_line_unet_seg(seg_data, tmp_path: Path) -> None:
    """`microsight train unet-seg`, `predict` (labels + probabilities) and `evaluate`."""
    import yaml

    from microsight.cli import main

    images, labels = seg_data
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(tiny("unet-seg")))
    model = tmp_path / "model"
    assert main(["train", "unet-seg", "--input", str(images), "--target", str(labels),
                 "--out", str(model), "--config", str(cfg), "--no-progress"]) == 0
    out = tmp_path / "classes.png"
    assert main(["predict", str(model), str(images / "n1.tif"), "--out", str(out),
                 "--no-progress"]) == 0
    classes = read_labels(out)
    assert classes.shape == (48, 48) and classes.max() <= 2
    assert tifffile.imread(tmp_path / "classes_prob.tif").shape == (3, 48, 48)
    assert main(["evaluate", str(model), "--input", str(images), "--target", str(labels),
                 "--report", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").is_file()


@pytest.fixture(scope="module")
def distmap_model(seg_data, tmp_path_factory: pytest.TempPathFactory) -> Path:
    images, labels = seg_data
    out = tmp_path_factory.mktemp("distmap") / "m"
    api.train("distmap", images, labels, out=out, config=tiny("distmap"), progress=False)
    return out


def test_ensemble_of_a_model_with_itself_is_the_model(distmap_model, seg_data) -> None:
    images, labels = seg_data
    one = api.predict(distmap_model, images / "n0.tif")
    two = api.predict([distmap_model, distmap_model], images / "n0.tif")
    np.testing.assert_array_equal(one, two)
    rows = [api.evaluate(m, images, labels).summary
            for m in (distmap_model, [distmap_model, distmap_model])]
    assert rows[0] == rows[1]


def test_fine_tuning_a_segmentation_model(distmap_model, seg_data, tmp_path: Path) -> None:
    # The network has more output channels (foreground, distance) than the label
    # targets (one): fine-tuning compares networks, not data channels.
    images, labels = seg_data
    cfg = tiny("distmap")
    cfg["training"].update(learning_rate=1e-9, lr_schedule="constant")
    tuned = api.train("distmap", images, labels, out=tmp_path / "m", config=cfg,
                      init_from=distmap_model, progress=False)
    source = load_model(distmap_model).module.state_dict()
    for k, v in tuned.module.state_dict().items():
        np.testing.assert_allclose(v.numpy(), source[k].numpy(), atol=1e-6, err_msg=k)


def test_training_on_zoomed_patches(seg_data, tmp_path: Path) -> None:
    # Star distances are derived from the zoomed label patches, so they follow the zoom.
    images, labels = seg_data
    cfg = tiny("starconvex", n_rays=8)
    cfg["data"]["scale_jitter"] = 0.3
    model = api.train("starconvex", images, labels, out=tmp_path / "m", config=cfg,
                      progress=False)
    assert model.config.data.scale_jitter == 0.3
    assert np.isfinite(model.history[-1]["train_loss"])


def test_tta_maps_turn_with_the_image(distmap_model, seg_data, tmp_path: Path) -> None:
    """Maps averaged over the 8 flips/rotations are exactly equivariant."""
    from microsight.cli import main

    images, _ = seg_data
    img = tifffile.imread(images / "n0.tif")
    tifffile.imwrite(tmp_path / "rot.tif", np.rot90(img).copy())
    assert main(["predict", str(distmap_model), str(images / "n0.tif"), "--out",
                 str(tmp_path / "a.tif"), "--tta", "--no-progress"]) == 0
    api.predict(distmap_model, tmp_path / "rot.tif", out=tmp_path / "b.tif", tta=True)
    a, b = (tifffile.imread(tmp_path / f"{k}_prob.tif") for k in "ab")
    np.testing.assert_allclose(np.rot90(a, axes=(-2, -1)), b, atol=1e-5)
    plain = tifffile.imread(api.predict(distmap_model, images / "n0.tif",
                                        out=tmp_path / "c.tif").with_name("c_prob.tif"))
    assert not np.allclose(plain, a)


def test_tta_is_refused_for_direction_maps(seg_data, tmp_path: Path) -> None:
    from microsight.errors import MicrosightError

    images, labels = seg_data
    model = api.train("starconvex", images, labels, out=tmp_path / "m",
                      config=tiny("starconvex", n_rays=8), progress=False)
    with pytest.raises(MicrosightError, match="directions"):
        api.predict(model, images / "n0.tif", tta=True)


def test_tune_rewrites_the_bundle_thresholds(distmap_model, seg_data, tmp_path: Path) -> None:
    """`microsight tune` scores the current thresholds, keeps the best, saves them."""
    import shutil

    from microsight.cli import main

    images, labels = seg_data
    bundle = shutil.copytree(distmap_model, tmp_path / "m")
    result = api.tune(bundle, images, labels, progress=False)
    assert result["score"] >= result["score_before"] and result["n_objects"] > 0
    stored = load_model(bundle)
    assert {k: getattr(stored.config.method, k) for k in result["params"]} == result["params"]
    assert stored.qc["postprocessing"] == result
    assert main(["tune", str(bundle), "--input", str(images), "--target", str(labels)]) == 0


def test_tune_refuses_zips_and_methods_without_thresholds(seg_data, tmp_path: Path) -> None:
    images, labels = seg_data
    model = api.train("unet-seg", images, labels, out=tmp_path / "u",
                      config=tiny("unet-seg"), progress=False)
    with pytest.raises(MicrosightError, match="nothing to tune"):
        api.tune(tmp_path / "u", images, labels, progress=False)
    api.export(tmp_path / "u", tmp_path / "u.zip")
    with pytest.raises(MicrosightError, match="not a model folder"):
        api.tune(tmp_path / "u.zip", images, labels, progress=False)
    assert model.qc.get("postprocessing") is None
