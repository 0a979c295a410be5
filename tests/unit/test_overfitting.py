"""Unit tests for microsight.qc.overfitting (history verdict, validation noise)."""

from __future__ import annotations

import numpy as np
import pytest

from microsight.qc import Report
from microsight.qc.overfitting import (
    add_training_sections,
    overfitting_verdict,
    validation_noise,
)


def history(train, val):
    # Stored like history.csv: epochs from 0 (shown from 1).
    return [
        {"epoch": i, "train_loss": t, "val_loss": v, "val_psnr": -10 * np.log10(v)}
        for i, (t, v) in enumerate(zip(train, val, strict=True))
    ]


def test_overfitting_detected_with_onset():
    epochs = np.arange(1, 21)
    train = 1.0 / epochs  # keeps falling
    val = 0.5 + 0.002 * (epochs - 8) ** 2  # minimum at epoch 8, then rises
    v = overfitting_verdict(history(train, val))
    assert v.status == "over-fitting"
    assert v.best_epoch == 7  # stored from 0: the 8th epoch
    # The rise passes 5% of the minimum (0.025) once (e - 8)^2 > 12.5: epoch 12.
    assert v.onset_epoch == 11
    assert "(epoch 8) from epoch 12 on" in v.message and v.level == "warn"
    assert "epoch 7" not in v.message


def test_epochs_in_words_count_from_one():
    epochs = np.arange(1, 9)
    v = overfitting_verdict(history(1.0 / epochs, 1.0 / epochs))
    assert v.status == "still improving"
    assert "(epoch 8 of 8)" in v.message


def test_noisy_plateau_is_not_overfitting():
    rng = np.random.default_rng(0)
    epochs = np.arange(1, 31)
    train = 1.0 / epochs
    val = 0.3 + 0.5 * np.exp(-epochs / 3) + 0.003 * rng.standard_normal(30)
    v = overfitting_verdict(history(train, val))
    assert v.status in ("converged", "still improving")
    assert v.onset_epoch is None


def test_still_improving_and_unstable_and_short():
    epochs = np.arange(1, 11)
    falling = 1.0 / epochs
    assert overfitting_verdict(history(falling, falling)).status == "still improving"
    rising = 0.2 + 0.05 * np.maximum(epochs - 3, 0)
    flat_train = np.full(10, 0.5)
    v = overfitting_verdict(history(flat_train, rising))
    assert v.status == "unstable" and v.level == "bad"
    assert overfitting_verdict(history([1.0, 0.5], [1.0, 0.9])).status == "too short"
    assert overfitting_verdict([{"epoch": 1, "train_loss": 1.0}]).status == "no validation"


def test_validation_noise_interval_and_warnings():
    rng = np.random.default_rng(1)
    mse = rng.uniform(0.001, 0.003, 200)
    out = validation_noise(mse)
    assert out["tiles"] == 200
    assert out["val_psnr"] == pytest.approx(-10 * np.log10(mse.mean()))
    lo, hi = out["val_psnr_ci95"]
    assert lo < out["val_psnr"] < hi and hi - lo < 0.5
    assert out["psnr_standard_error"] > 0
    assert out["warning"] is None
    few = validation_noise(mse[:4])
    assert "only 4 tile" in few["warning"]
    wild = validation_noise(np.concatenate([np.full(10, 1e-4), np.full(10, 1e-1)]))
    assert "uncertain" in wild["warning"]


def test_training_sections_in_report():
    epochs = np.arange(1, 21)
    hist = history(1.0 / epochs, 0.5 + 0.002 * (epochs - 8) ** 2)
    rep = Report("training")
    qc = {
        "validation": validation_noise(np.full(4, 0.01)),
        "best_epoch": 8,
        "data_checks": ["Validation inputs repeat training inputs."],
    }
    add_training_sections(rep, hist, qc)
    assert rep.headings == [
        "Training history",
        "Over-fitting check",
        "Validation estimate",
        "Data checks",
        "Training",
    ]
    page = rep.to_html()
    assert "over-fitting" in page and 'class="verdict warn"' in page


def test_pdf_export_keeps_the_sections(tmp_path):
    from microsight.qc.pdf import html_blocks

    rep = Report("training", subtitle="method care")
    epochs = np.arange(1, 8)
    add_training_sections(rep, history(1.0 / epochs, 1.0 / epochs), {"best_epoch": 7})
    rep.add_table("Metrics", [{"source": "network", "psnr": 30.0}])
    rep.add_code("Configuration", "name: tiny\nmethod:\n  depth: 1")
    path = rep.write(tmp_path / "report.pdf")  # the suffix picks the PDF export
    data = path.read_bytes()
    assert data.startswith(b"%PDF") and b"/Title (training)" in data
    kinds = [[b.kind for b in html_blocks(s.body)] for s in rep._sections]
    assert kinds[0] == ["image", "text"]  # history figure and its caption
    assert ["table"] in kinds and ["pre"] in kinds
