"""Plain-text summaries: they fit the terminal, cut nothing off, show no raw None."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from microsight.qc.epochs import shown_epoch
from microsight.qc.text import direction_note, format_number, key_columns, metric_table

SUMMARY = [
    {"source": "network", "images": 3, "ap@0.5": 0.8123456, "ap@0.75": 0.5, "ap@0.9": None,
     "f1@0.5": float("nan"), "pq@0.5": 0.4, "ap@0.5 95% CI": "0.7 - 0.9"},
    {"source": "Otsu + distance watershed (sigma 1, seeds >= 4 px apart)", "images": 3,
     "ap@0.5": 0.61, "ap@0.75": 0.3, "ap@0.9": 0.01, "f1@0.5": 0.7, "pq@0.5": 0.2},
]
METRICS = ("ap@0.5", "ap@0.75", "ap@0.9", "f1@0.5", "pq@0.5")


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_metric_table_fits_and_keeps_every_source(width: int) -> None:
    lines = metric_table(SUMMARY, METRICS, width)
    assert all(len(line) <= width for line in lines), lines
    text = "\n".join(lines)
    assert "…" not in text and "None" not in text and "nan" not in text
    # The long baseline name wraps within its column, every word kept.
    for word in SUMMARY[1]["source"].split():
        assert word in text
    header = lines[0].split()
    assert header[:2] == ["source", "ap@0.5"]  # the verdict's metric always shows
    assert len(header) - 1 <= 4


def test_missing_values_read_n_a() -> None:
    assert format_number(None) == format_number(float("nan")) == "n/a"
    assert format_number(0.8123456) == "0.8123" and format_number(3) == "3"
    row = metric_table(SUMMARY, METRICS, 80)[2]
    assert row.startswith("network") and "n/a" in row


def test_narrow_terminal_drops_trailing_metrics_first() -> None:
    assert key_columns(SUMMARY, METRICS, 40)[0] == "ap@0.5"
    assert len(key_columns(SUMMARY, METRICS, 40)) < len(key_columns(SUMMARY, METRICS, 120))


def test_direction_note() -> None:
    assert direction_note(["psnr", "ssim", "nrmse"]) == "higher is better, except nrmse"
    assert direction_note(["rmse_lateral"]) == "lower is better"


def test_epochs_are_shown_from_one() -> None:
    assert shown_epoch(0) == 1 and shown_epoch(7.0) == 8 and shown_epoch(None) is None


def test_live_bar_counts_epochs_from_one() -> None:
    from microsight.engine.callbacks import EpochBar

    bar = EpochBar()
    bar._trainer = SimpleNamespace(max_epochs=3)
    assert bar._get_train_description(0).strip() == "epoch 1/3"
    assert bar._get_train_description(2).strip() == "epoch 3/3"
