"""Unit tests for microsight.qc.report."""

from __future__ import annotations

import re

import numpy as np
import pytest
from matplotlib.figure import Figure

from microsight.errors import MicrosightError
from microsight.qc import Report, format_value

HISTORY = [
    {"epoch": 0, "train_loss": 1.0, "val_loss": 0.9, "val_psnr": 20.0},
    {"epoch": 1, "train_loss": 0.5, "val_loss": 0.4, "val_psnr": 24.0},
    {"epoch": 2, "train_loss": 0.3, "val_loss": 0.6, "val_psnr": 23.0},
]


def _full_report() -> Report:
    rng = np.random.default_rng(0)
    report = Report("QC <test>", subtitle="run & co")
    report.add_text("Summary", "First paragraph.\n\nSecond <b>not bold</b>.")
    report.add_table(
        "Metrics",
        [{"image": "a.tif", "psnr": float("inf"), "ssim": 0.123456789}, {"image": "b", "x": None}],
        note="range matched",
    )
    report.add_key_values("Settings", {"epochs": 3, "lr": 1e-4, "device": None})
    report.add_code("Config", "method: care\nepochs: 3\n")
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    report.add_figure("Custom figure", fig, caption="a line")
    stack = rng.random((5, 40, 30))
    report.add_image_panels(
        "Panels",
        {"input": stack, "prediction": stack[2], "target": stack[2], "|error|": stack[2] * 0},
        shared_range=["prediction", "target"],
        cmaps={"|error|": "magma"},
    )
    report.add_history("Training", HISTORY)
    return report


def test_full_report_written_atomically(tmp_path):
    report = _full_report()
    out = report.write(tmp_path / "sub" / "report.html")
    assert out == tmp_path / "sub" / "report.html"
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temp file left
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    for heading in ["Summary", "Metrics", "Settings", "Config", "Custom figure", "Panels"]:
        assert f">{heading}</h2>" in text
        assert f">{heading}</a>" in text  # table of contents
    assert text.count('<img src="data:image/png;base64,') == 3
    assert not re.search(r"""(src|href)=["']?https?:""", text)
    assert "<script" not in text
    assert "QC &lt;test&gt;" in text and "run &amp; co" in text
    assert "Second &lt;b&gt;not bold&lt;/b&gt;." in text
    assert "∞" in text and "—" in text and "0.1235" in text
    assert "UTC" in text and "microsight" in text
    # Overwriting an existing report also leaves no temp file behind.
    report.write(out)
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]


def test_format_value():
    assert format_value(float("inf")) == "∞"
    assert format_value(-np.inf) == "-∞"
    assert format_value(None) == "—"
    assert format_value(np.float32(3.14159265)) == "3.142"
    assert format_value(123456.0) == "1.235e+05"
    assert format_value(np.int64(7)) == "7"
    assert format_value(True) == "yes" and format_value(np.bool_(False)) == "no"
    assert format_value(float("nan")) == "—"
    # No Python notation reaches the page.
    assert format_value(["YX"]) == "YX" and format_value(["48x48", "32x32"]) == "48x48, 32x32"
    assert format_value([]) == "none" and format_value({}) == "none"
    assert format_value({"X": 0.1, "best_epoch": 3}) == "X: 0.1; best epoch: 3"
    assert format_value(list(range(20))) == "0, 1, 2, 3, 4, 5, 6, 7, ... (20 values)"
    assert format_value([{"item": "a"}, {"item": "b"}]).startswith("2 records")


def test_table_columns_union_in_first_seen_order():
    report = Report("t")
    report.add_table("T", [{"b": 1, "a": 2}, {"c": 3, "a": 4}])
    text = report.to_html()
    assert re.search(r"<th>b</th><th>a</th><th>c</th>", text)
    # An empty cell is explained under the table.
    assert "—: no value for this row" in text


def test_image_panels_large_image_png_stays_small():
    rng = np.random.default_rng(1)
    big = rng.random((1500, 1200)).astype(np.float32)  # pure noise compresses worst
    report = Report("t")
    report.add_image_panels("P", {"a": big, "b": big, "c": big, "d": big})
    b64 = re.search(r"base64,([A-Za-z0-9+/=]+)", report.to_html()).group(1)
    assert len(b64) * 3 / 4 < 320_000


def test_image_panels_bad_input():
    report = Report("t")
    with pytest.raises(MicrosightError, match="unknown panel"):
        report.add_image_panels("P", {"a": np.zeros((4, 4))}, shared_range=["b"])
    with pytest.raises(MicrosightError, match="2D image or 3D stack"):
        report.add_image_panels("P", {"a": np.zeros((2, 3, 4, 5))})


@pytest.mark.parametrize(
    "history",
    [
        HISTORY,
        [{"epoch": i, "train_loss": 1.0 / (i + 1)} for i in range(4)],  # no val columns
        [{"train_loss": -1.0}, {"train_loss": 0.5, "val_loss": None}],  # no epoch, non-positive
        [],
    ],
)
def test_history_variants(history):
    report = Report("t")
    report.add_history("Training", history)
    text = report.to_html()
    assert ">Training</h2>" in text
    if history:
        assert '<img src="data:image/png;base64,' in text
    else:
        assert "No training history" in text


def test_history_keys():
    report = Report("t")
    report.add_history("H", HISTORY, keys=["val_psnr"])
    assert "base64," in report.to_html()
    with pytest.raises(MicrosightError, match="nope"):
        report.add_history("H", HISTORY, keys=["nope"])
