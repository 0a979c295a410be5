"""Localization tables: CSV round trips (native, ThunderSTORM), rendering, drift correction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from microsight.data.smlm import SimulationConfig, simulate
from microsight.data.smlm_render import (
    correct_drift,
    estimate_drift,
    render_gaussian,
    render_histogram,
)
from microsight.errors import MicrosightError
from microsight.io.localizations import (
    frame_groups,
    make_table,
    read_localizations,
    write_localizations,
)


def _table() -> np.ndarray:
    rng = np.random.default_rng(0)
    return make_table(frame=np.array([0, 0, 3, 5]), x=rng.uniform(0, 3000, 4),
                      y=rng.uniform(0, 3000, 4), z=np.array([0.0, 10.5, -20.25, 0.0]),
                      photons=np.array([1000.0, 2000.0, 1500.0, 900.0]),
                      background=20.0, sigma_x=np.array([5.0, 6.0, 7.0, 8.0]))


@pytest.mark.parametrize("fmt", ["native", "thunderstorm"])
def test_csv_round_trip(tmp_path: Path, fmt: str) -> None:
    table = _table()
    path = write_localizations(tmp_path / "t.csv", table, format=fmt)
    back = read_localizations(path)
    assert np.array_equal(back["frame"], table["frame"])
    for field in ("x", "y", "z", "photons", "background", "sigma_x"):
        assert np.allclose(back[field], table[field], atol=1e-3), field


def test_thunderstorm_header_and_one_based_frames(tmp_path: Path) -> None:
    path = write_localizations(tmp_path / "ts.csv", _table(), format="thunderstorm")
    lines = path.read_text().splitlines()
    assert lines[0].startswith('"id","frame","x [nm]","y [nm]","z [nm]","intensity [photon]"')
    assert lines[1].split(",")[1] == "1"  # frame 0 in memory is frame 1 in ThunderSTORM
    # A ThunderSTORM file with extra columns (as the simulator of ThunderSTORM writes it).
    other = tmp_path / "other.csv"
    other.write_text('"id","frame","x [nm]","y [nm]","sigma [nm]","intensity [photon]",'
                     '"offset [photon]","bkgstd [photon]"\n1,1,67.8,2484.1,111.2,2458.4,50,4.4\n'
                     '2,3,28.9,3531.1,107.3,2253.5,50,4.4\n')
    t = read_localizations(other)
    assert list(t["frame"]) == [0, 2]
    assert t["photons"][0] == pytest.approx(2458.4)
    assert t["background"][1] == pytest.approx(50)


def test_bad_tables(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(MicrosightError, match="columns x and y"):
        read_localizations(bad)
    bad.write_text("frame,x,y\n0,1,oops\n")
    with pytest.raises(MicrosightError, match="number"):
        read_localizations(bad)


def test_frame_groups() -> None:
    groups = frame_groups(_table(), 6)
    assert [len(g) for g in groups] == [2, 0, 0, 1, 0, 1]


def test_rendering_counts_and_blur() -> None:
    table = make_table(x=np.array([15.0, 15.0, 95.0]), y=np.array([5.0, 5.0, 45.0]),
                       photons=np.array([1.0, 2.0, 3.0]))
    hist = render_histogram(table, (100.0, 100.0), 10.0)
    assert hist.shape == (10, 10)
    assert hist[0, 1] == 2 and hist[4, 9] == 1 and hist.sum() == 3
    assert render_histogram(table, (100.0, 100.0), 10.0, weights="photons")[0, 1] == 3
    inner = table.copy()
    inner["x"] += 50
    inner["y"] += 50
    smooth = render_gaussian(inner, (200.0, 200.0), 10.0, sigma=20.0)
    assert smooth.sum() == pytest.approx(3, rel=0.05)
    assert smooth.max() < 2


def test_drift_correction_recovers_linear_drift() -> None:
    cfg = SimulationConfig(frames=300, shape=[32, 32], density=1.5, structure="filaments",
                           bleach=0.1, seed=5)
    truth = simulate(cfg).truth
    drift = np.stack([np.linspace(0, 60, 300), np.linspace(0, -40, 300)], 1)
    moved = truth.copy()
    moved["x"] += drift[moved["frame"], 0]
    moved["y"] += drift[moved["frame"], 1]
    est = estimate_drift(moved, (3200.0, 3200.0), blocks=6)
    # Drift is relative to the first block's centre (frame ~25).
    rel = drift - drift[25]
    frames = np.arange(60, 240)
    assert np.abs(est[frames] - rel[frames]).max() < 12
    fixed = correct_drift(moved, est)
    spread_before = np.std(moved["x"] - truth["x"])
    assert np.std(fixed["x"] - truth["x"]) < 0.5 * spread_before
