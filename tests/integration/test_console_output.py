"""What the console shows a person: it fits 80 columns, counts epochs from 1, shows progress.

The evaluation summary is checked for every registered method (tiny data of
the method contract test): all 14 train and evaluate in about 40 s on a
2-core CPU, so all stay in the default run.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from microsight import api
from microsight.cli import main
from tests.unit.test_method_contract import METHODS, _tiny

WIDTH = 80


def _fits(text: str, width: int = WIDTH) -> None:
    for line in text.splitlines():
        assert len(line) <= width, f"{len(line)} > {width} columns: {line!r}"
        assert "…" not in line, line
        assert "None" not in line, line


def _relative(path: Path | None, root: Path) -> str | None:
    return None if path is None else str(path.relative_to(root))


@pytest.mark.parametrize("method", METHODS)
def test_evaluate_summary_fits_80_columns(method: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture) -> None:
    config, make = _tiny(method)
    (tmp_path / "data").mkdir()
    train_in, train_target, test_in, test_target, _, axes = make(tmp_path / "data")
    api.train(method, train_in, train_target, out=tmp_path / "model", config=config,
              progress=False)
    # Paths as a person types them: relative, short.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    target = test_target if test_target is not None else test_in
    args = ["evaluate", "model", "-i", _relative(test_in, tmp_path), "-t",
            _relative(target, tmp_path), "--table", "metrics.csv"]
    capsys.readouterr()
    assert main([*args, *(["--axes", axes] if axes else [])]) == 0
    out = capsys.readouterr().out
    _fits(out)
    assert "verdict:" in out and "metrics.csv" in out and "metrics.json" in out
    # The table shows the verdict's metric (first declared) for the network.
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("source"))
    assert api.get_method(method).metrics[0] in header.split()
    assert any(line.startswith("network") for line in lines)
    # The full table holds every column, the JSON the rows per image and the verdict.
    with open(tmp_path / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["source"].startswith("network") and len(rows[0]) >= len(header.split())
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["rows"] and record["verdict"]["kind"] in out


def test_evaluate_without_table_says_how_to_get_it(tiny_model, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    model, low, high = tiny_model
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    capsys.readouterr()
    assert main(["evaluate", str(model.path), "-i", str(low), "-t", str(high)]) == 0
    out = capsys.readouterr().out
    _fits(out)
    assert "--table FILE.csv" in out
    # With a report the tables go beside it.
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(model.path), "-i", str(low), "-t", str(high),
                 "--report", "r.html"]) == 0
    out = capsys.readouterr().out
    _fits(out)
    assert (tmp_path / "r.metrics.csv").is_file() and (tmp_path / "r.metrics.json").is_file()
    assert "r.metrics.csv" in out and "r.html" in out


def _write_config(path: Path, config: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(config))
    return path


def test_training_counts_epochs_from_one_and_reports_inside_epochs(
        tmp_path: Path, pair_dirs, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    from microsight.engine import callbacks
    from tests.conftest import TINY_CONFIG

    low, high = pair_dirs
    # Outside a terminal (as here) a plain line comes every STEP_LINE_SECONDS inside
    # an epoch; 0 s makes one per step.
    monkeypatch.setattr(callbacks, "STEP_LINE_SECONDS", 0.0)
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    config = {**TINY_CONFIG, "training": {**TINY_CONFIG["training"], "epochs": 3,
                                          "steps_per_epoch": 3,
                                          "early_stopping_patience": None}}
    cfg = _write_config(tmp_path / "c.yaml", config)
    capsys.readouterr()
    assert main(["train", "care", "-i", str(low), "-t", str(high), "-o",
                 str(tmp_path / "m"), "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    epoch_lines = [line for line in lines if line.strip().startswith("epoch")
                   and "train_loss" in line and "patches/s" in line]
    assert [line.split(":")[0].strip() for line in epoch_lines] == [
        "epoch 1/3 done", "epoch 2/3 done", "epoch 3/3 done"]
    # Restoration shows its validation PSNR beside the loss.
    assert all("val_loss" in line and "val_psnr" in line for line in epoch_lines)
    inside = [line for line in lines if ", step 1/3" in line or ", step 2/3" in line]
    assert len(inside) == 6 and all("train_loss" in line for line in inside)
    assert inside[0].strip().startswith("epoch 1/3")
    assert not any("epoch 0" in line or "epoch 4" in line for line in lines)
    final = lines[-1]
    best = int(final.split("best epoch ")[1].split(" ")[0])
    assert 1 <= best <= 3 and " of 3," in final
    # The over-fitting sentence counts the same way.
    qc = json.loads((tmp_path / "m" / "qc.json").read_text())
    message = qc["overfitting"]["message"]
    assert qc["best_epoch"] == best - 1  # stored from 0, as Lightning counts
    assert f"epoch {best}" in message or "epoch" not in message
    assert "of 2)" not in message and "epoch 0" not in message
    # The model card and info count from 1 as well; info fits the terminal.
    assert f"best epoch: {best}" in (tmp_path / "m" / "README.md").read_text()
    assert main(["info", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    _fits(out)
    assert f"best epoch {best} of 3" in out
    history = out[out.index("training history:"):].splitlines()
    assert history[1].split()[:3] == ["epoch", "train_loss", "val_loss"]
    assert [line.split()[0] for line in history[2:5]] == ["1", "2", "3"]


def test_segmentation_training_shows_no_psnr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture) -> None:
    from tests.integration.test_segmentation_methods import tiny, write_set

    images, labels = write_set(tmp_path)
    cfg = _write_config(tmp_path / "c.yaml", tiny("distmap"))
    capsys.readouterr()
    assert main(["train", "distmap", "-i", str(images), "-t", str(labels), "-o",
                 str(tmp_path / "m"), "--config", str(cfg), "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and "val_loss" in out and "psnr" not in out.lower()
    history = (tmp_path / "m" / "history.csv").read_text().splitlines()
    psnr = history[0].split(",").index("val_psnr")
    assert history[1].split(",")[psnr] == ""


def test_predict_lists_every_file_it_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture) -> None:
    from tests.integration.test_segmentation_methods import tiny, write_set

    images, labels = write_set(tmp_path)
    api.train("distmap", images, labels, out=tmp_path / "m", config=tiny("distmap"),
              progress=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old_prob.tif").write_text("not from this run")
    capsys.readouterr()
    assert main(["predict", "m", str(images / "n0.tif"), "-o", "out/labels.tif"]) == 0
    out = capsys.readouterr().out
    _fits(out)
    lines = out.splitlines()
    start = lines.index("wrote in out:")
    listed = {line.split()[0]: line for line in lines[start + 1:] if line.startswith("  ")
              and not line.startswith("    ")}
    assert set(listed) == {p.name for p in (tmp_path / "out").iterdir()} - {"old_prob.tif"}
    with open(tmp_path / "out" / "labels_objects.csv") as fh:
        n = sum(1 for _ in csv.DictReader(fh))
    assert f"label image ({n} object" in listed["labels.tif"]
    assert "probability map" in listed["labels_prob.tif"]
    assert "table of objects" in listed["labels_objects.csv"]
    assert "training data" in listed["labels.tif.qc.json"]
    # The API announces the same files to a GUI.
    events = []
    api.predict(tmp_path / "m", images / "n1.tif", out=tmp_path / "out" / "b.tif",
                callback=events.append)
    written = [e.metrics["path"] for e in events if e.kind == "written"]
    assert Path(written[0]).name == "b.tif" and len(written) == 4
