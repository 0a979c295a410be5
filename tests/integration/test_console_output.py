"""What the console shows a person: it fits 80 columns, counts epochs from 1, shows progress.

The evaluation summary is checked for every registered method (tiny data of
the method contract test); all but one restoration, one segmentation and one
SMLM method are marked slow.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from microsight import api
from microsight.cli import main
from tests.unit.test_method_contract import METHODS, _tiny

FAST = {"care", "distmap", "localize"}
WIDTH = 80


def _fits(text: str, width: int = WIDTH) -> None:
    for line in text.splitlines():
        assert len(line) <= width, f"{len(line)} > {width} columns: {line!r}"
        assert "…" not in line, line
        assert "None" not in line, line


def _relative(path: Path | None, root: Path) -> str | None:
    return None if path is None else str(path.relative_to(root))


@pytest.mark.parametrize("method", [
    pytest.param(m, marks=() if m in FAST else pytest.mark.slow) for m in METHODS])
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
