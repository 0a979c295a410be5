"""The command line end to end on tiny data: train, predict, evaluate, info, export."""

from __future__ import annotations

import json

import numpy as np
import tifffile
import yaml

from microsight.cli import main
from microsight.io import read_image, write_image
from tests.conftest import TINY_CONFIG


def test_methods_lists_care(capsys):
    assert main(["methods"]) == 0
    assert "care" in capsys.readouterr().out


def test_config_prints_yaml(capsys):
    assert main(["config", "care"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["method"]["method"] == "care"


def test_train_predict_evaluate_info_export(tmp_path, pair_dirs, capsys):
    low, high = pair_dirs
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(TINY_CONFIG))
    model = tmp_path / "model"
    assert main(["train", "care", "--input", str(low), "--target", str(high), "--out",
                 str(model), "--config", str(cfg), "--epochs", "2", "--no-progress"]) == 0
    for name in ("model.json", "config.yaml", "weights.safetensors", "normalization.json",
                 "history.csv", "qc.json", "README.md"):
        assert (model / name).is_file(), name
    assert len((model / "history.csv").read_text().strip().splitlines()) == 3

    out = tmp_path / "restored.tif"
    assert main(["predict", str(model), str(low / "im0.tif"), "--out", str(out),
                 "--no-progress"]) == 0
    restored = read_image(out)
    assert restored.shape == (48, 48) and restored.axes == "YX"
    assert np.isfinite(restored.numpy()).all()

    report = tmp_path / "report.html"
    assert main(["evaluate", str(model), "--input", str(low), "--target", str(high),
                 "--report", str(report)]) == 0
    html = report.read_text()
    for section in ("Test metrics", "gaussian", "Training history", "Configuration"):
        assert section in html
    assert "data:image/png;base64," in html

    capsys.readouterr()
    assert main(["info", str(model), "--json"]) == 0
    details = json.loads(capsys.readouterr().out)
    assert details["model"]["method"] == "care"
    assert details["data"]["axes"] == ["YX"]
    assert len(details["history"]) == 2

    zipped = tmp_path / "model.zip"
    assert main(["export", str(model), str(zipped)]) == 0
    out2 = tmp_path / "restored2.tif"
    assert main(["predict", str(zipped), str(low / "im0.tif"), "--out", str(out2),
                 "--no-progress"]) == 0
    np.testing.assert_array_equal(read_image(out2).numpy(), restored.numpy())


def test_steps_limit_training(tmp_path, pair_dirs):
    low, high = pair_dirs
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(TINY_CONFIG))
    model = tmp_path / "m"
    assert main(["train", "care", "-i", str(low), "-t", str(high), "-o", str(model),
                 "--config", str(cfg), "--steps", "4", "--no-progress"]) == 0
    rows = (model / "history.csv").read_text().strip().splitlines()[1:]
    assert int(float(rows[-1].split(",")[1])) == 4


def test_predict_ome_zarr_in_and_out(tmp_path, tiny_model):
    model, low, _ = tiny_model
    image = tifffile.imread(low / "im1.tif")
    src = write_image(tmp_path / "in.ome.zarr", image, "YX", {"Y": 0.2, "X": 0.2})
    dst = tmp_path / "out.ome.zarr"
    assert main(["predict", str(model.path), str(src), "--out", str(dst), "--tile", "32",
                 "--overlap", "8", "--no-progress"]) == 0
    result = read_image(dst)
    assert not isinstance(result.data, np.ndarray)  # lazy
    assert result.shape == image.shape
    assert result.pixel_sizes == {"Y": 0.2, "X": 0.2}


def test_time_series_is_predicted_frame_by_frame(tmp_path, tiny_model):
    from microsight import predict

    model, low, _ = tiny_model
    frame = tifffile.imread(low / "im0.tif")
    movie = np.stack([frame, frame[::-1]])
    result = predict(model, movie, axes="TYX")
    assert result.shape == movie.shape
    np.testing.assert_allclose(result[0], predict(model, frame), atol=1e-5)


def test_train_without_config_file(tmp_path, pair_dirs):
    low, high = pair_dirs
    model = tmp_path / "m"
    assert main(["train", "care", "-i", str(low), "-t", str(high), "-o", str(model),
                 "--steps", "2", "--patch-size", "16", "--batch-size", "2", "--no-progress"]) == 0
    assert (model / "weights.safetensors").is_file()


def test_partial_last_epoch_has_no_stale_validation(tmp_path, pair_dirs):
    from microsight import train
    from tests.conftest import TINY_CONFIG

    low, high = pair_dirs
    cfg = {**TINY_CONFIG, "training": {**TINY_CONFIG["training"], "steps_per_epoch": 5}}
    model = train("care", low, high, out=tmp_path / "m", config=cfg, steps=7, progress=False)
    steps = [row["step"] for row in model.history]
    assert steps[-1] == 7
    validated = [row["val_loss"] is not None for row in model.history]
    # Every full epoch is validated; a cut-short last epoch reports no validation.
    assert validated[0]
    if steps[-1] - steps[-2] < steps[0]:
        assert not validated[-1]


def test_listing_and_configs_do_not_start_torch():
    """--help, methods and config answer without importing torch or Lightning."""
    import subprocess
    import sys

    code = ("import sys\nfrom microsight.cli import main\n"
            "for args in (['--help'], ['methods'], ['config', 'care'], "
            "['config', 'distmap', '--schema']):\n"
            "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
            "heavy = [m for m in ('torch', 'lightning') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert "HEAVY []" in done.stdout, done.stdout[-500:] + done.stderr[-2000:]
