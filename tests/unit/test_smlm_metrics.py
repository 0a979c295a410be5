"""SMLM metrics on constructed cases; classical fitter and Cramer-Rao bound."""

from __future__ import annotations

import numpy as np
import pytest

from microsight.data.smlm import CameraConfig, SimulationConfig, render_psfs
from microsight.data.smlm_fit import crlb, find_spots, fit_spots, localize_classical
from microsight.io.localizations import make_table
from microsight.metrics.smlm import (
    efficiency,
    localization_scores,
    match_localizations,
    nmse,
    reconstruction_scores,
)


def _truth() -> np.ndarray:
    return make_table(frame=np.array([0, 0, 1, 2]), x=np.array([100.0, 900.0, 500.0, 300.0]),
                      y=np.array([100.0, 900.0, 500.0, 300.0]))


def test_perfect_and_shifted_localizations() -> None:
    truth = _truth()
    s = localization_scores(truth, truth)
    assert s["jaccard"] == 1 and s["rmse_lateral"] == 0 and s["efficiency_lateral"] == 100
    shifted = truth.copy()
    shifted["x"] += 6.0
    shifted["y"] += 8.0
    s = localization_scores(shifted, truth)
    assert s["rmse_lateral"] == pytest.approx(10.0)
    assert s["efficiency_lateral"] == pytest.approx(90.0)


def test_false_positives_negatives_and_frames() -> None:
    truth = _truth()
    pred = make_table(frame=np.array([0, 0, 2, 1]), x=np.array([110.0, 2000.0, 300.0, 300.0]),
                      y=np.array([100.0, 2000.0, 300.0, 300.0]))
    # Matches: frame 0 (100,100) and frame 2 (300,300); (300,300) in frame 1 is not the
    # truth of frame 1, (2000,2000) is too far.
    s = localization_scores(pred, truth, tolerance=250)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 2, 2)
    assert s["jaccard"] == pytest.approx(2 / 6)
    assert s["recall"] == pytest.approx(0.5) and s["precision"] == pytest.approx(0.5)
    assert s["rmse_lateral"] == pytest.approx(np.sqrt(50.0))
    assert localization_scores(pred, truth, tolerance=5)["tp"] == 1


def test_axial_tolerance_and_rmse() -> None:
    truth = _truth()
    pred = truth.copy()
    pred["z"] = np.array([30.0, -30.0, 400.0, 0.0])
    pi, _ = match_localizations(pred, truth, 250, axial_tolerance=300)
    assert len(pi) == 3  # the emitter 400 nm off in z does not match
    s = localization_scores(pred, truth, 250, axial_tolerance=300)
    assert s["rmse_axial"] == pytest.approx(np.sqrt((900 + 900 + 0) / 3))
    assert s["efficiency_axial"] == pytest.approx(
        100 - np.hypot(100 - 60, 0.5 * s["rmse_axial"]))


def test_efficiency_formula() -> None:
    assert efficiency(1.0, 0.0) == 100
    assert efficiency(0.8, 15.0) == pytest.approx(100 - np.hypot(20, 15))
    assert efficiency(0.8, 15.0, alpha=0.5) == pytest.approx(100 - np.hypot(20, 7.5))


def test_nmse_and_frc() -> None:
    rng = np.random.default_rng(0)
    truth = np.zeros((64, 64))
    truth[rng.integers(0, 64, 40), rng.integers(0, 64, 40)] = 1
    from scipy import ndimage

    truth = ndimage.gaussian_filter(truth, 1.5)
    assert nmse(3.0 * truth, truth) == pytest.approx(0, abs=1e-12)  # gain is free
    noisy = truth + rng.normal(0, truth.std(), truth.shape)
    assert 0.3 < nmse(noisy, truth) < 0.7
    good = reconstruction_scores(truth + 0.1 * noisy, truth, pixel_size=10.0)
    bad = reconstruction_scores(rng.normal(0, 1, truth.shape), truth, pixel_size=10.0)
    assert good["frc_resolution"] < bad["frc_resolution"]


def test_crlb_matches_theory_without_background() -> None:
    # No background, large window: var = (sigma^2 + 1/12) / N (Mortensen et al. 2010).
    b = crlb(1000, 1e-6, 1.3, window=21)
    assert b["x"] == pytest.approx(np.sqrt((1.3 ** 2 + 1 / 12) / 1000), rel=0.05)
    assert crlb(1000, 20, 1.3, excess=2)["x"] == pytest.approx(
        np.sqrt(2) * crlb(1000, 20, 1.3)["x"], rel=1e-6)


def test_classical_fit_reaches_the_crlb() -> None:
    rng = np.random.default_rng(1)
    n = 300
    cfg = SimulationConfig(shape=[16, 16], camera=CameraConfig(model="ideal", qe=1.0))
    truth = make_table(frame=np.arange(n), x=rng.uniform(700, 900, n), y=rng.uniform(700, 900, n),
                       photons=2000.0)
    movie = rng.poisson(render_psfs(truth, cfg, n) + 20).astype(np.float32)
    spots = find_spots(movie, 1.1)
    assert len(spots) == n
    fit = fit_spots(movie, spots, 1.1)
    err = fit["x"] * 100 - truth["x"][spots[:, 0]]
    bound = crlb(2000, 20, 1.1)["x"] * 100
    assert np.sqrt(np.mean(err ** 2)) == pytest.approx(bound, rel=0.15)
    assert np.median(fit["photons"]) == pytest.approx(2000, rel=0.05)
    table = localize_classical(movie, sigma=1.1, pixel_size=100.0)
    assert localization_scores(table, truth, 100)["jaccard"] > 0.95


def test_refinement_polishes_isolated_detections_only() -> None:
    from microsight.api import build_config
    from microsight.methods.localize.refine import isolated, refine

    assert isolated(np.array([0, 0, 1]), np.array([5.0, 8.0, 5.0]),
                    np.array([5.0, 5.0, 5.0]), 4.0).tolist() == [False, False, True]
    rng = np.random.default_rng(2)
    n = 200
    m = build_config("localize", {"method": {"method": "localize", "simulation": {
        "shape": [16, 16], "camera": {"model": "ideal", "qe": 1.0}}}}).method
    px, sigma = m.simulation.pixel_size, m.sigma_px
    truth = make_table(frame=np.arange(n), x=rng.uniform(7, 9, n) * px,
                       y=rng.uniform(7, 9, n) * px, photons=2000.0)
    cfg = m.simulation.model_copy(update={"psf": "integrated"})
    movie = rng.poisson(render_psfs(truth, cfg, n) + 20).astype(np.float32)
    f = np.arange(n)
    i, j = (truth["y"] // px).astype(int), (truth["x"] // px).astype(int)
    # A coarse first estimate (30 nm off), as an under-trained network might give.
    cols = {"x": truth["x"] + 30.0, "y": truth["y"] - 30.0, "photons": np.full(n, 1500.0),
            "background": np.full(n, 10.0), "sigma_x": np.full(n, 50.0),
            "sigma_y": np.full(n, 50.0), "sigma_photons": np.full(n, 100.0)}
    cols = refine(cols, f, i, j, movie, m)
    rmse = np.sqrt(np.mean((cols["x"] - truth["x"]) ** 2))
    bound = crlb(2000, 20, sigma)["x"] * px
    assert rmse == pytest.approx(bound, rel=0.2)
    assert np.median(cols["sigma_x"]) == pytest.approx(bound, rel=0.2)
    # Three detections near each other keep the network's estimates.
    crowded = {k: v[:3].copy() for k, v in cols.items()}
    crowded["x"][:] = [500.0, 600.0, 700.0]
    crowded = refine(crowded, np.zeros(3, int), np.array([5, 5, 5]), np.array([5, 6, 7]),
                     movie[:1], m)
    assert crowded["x"].tolist() == [500.0, 600.0, 700.0]


def _pair_movie(n: int, separation: float, seed: int):
    """``n`` frames, each with two emitters ``separation`` pixels apart along x."""
    from microsight.api import build_config

    rng = np.random.default_rng(seed)
    m = build_config("localize", {"method": {"method": "localize", "simulation": {
        "shape": [20, 20], "camera": {"model": "ideal", "qe": 1.0}}}}).method
    px = m.simulation.pixel_size
    x1 = rng.uniform(8, 9, n) * px
    y = rng.uniform(9, 10, n) * px
    x = np.stack([x1, x1 + separation * px], 1).ravel()
    truth = make_table(frame=np.repeat(np.arange(n), 2), x=x, y=np.repeat(y, 2),
                       photons=2000.0)
    cfg = m.simulation.model_copy(update={"psf": "integrated"})
    movie = rng.poisson(render_psfs(truth, cfg, n) + 20).astype(np.float32)
    return m, truth, movie


def _cols(x: np.ndarray, y: np.ndarray, frame: np.ndarray | None = None) -> dict:
    n = len(x)
    return {"frame": np.zeros(n, int) if frame is None else frame,
            "x": x.astype(float), "y": y.astype(float),
            "photons": np.full(n, 1500.0), "background": np.full(n, 10.0),
            "sigma_x": np.full(n, 50.0), "sigma_y": np.full(n, 50.0),
            "sigma_photons": np.full(n, 100.0), "score": np.full(n, 0.9)}


def test_close_pairs_are_fitted_jointly() -> None:
    from microsight.methods.localize.refine import refine

    n = 60
    m, truth, movie = _pair_movie(n, 2.5, seed=3)
    px = m.simulation.pixel_size
    tx, ty = truth["x"].reshape(n, 2), truth["y"].reshape(n, 2)
    # The network's estimates pulled 40 nm towards each other (the bias of crowded fits).
    cols = _cols((tx + [40.0, -40.0]).ravel(), ty.ravel())
    f = np.repeat(np.arange(n), 2)
    out = refine(cols, f, (cols["y"] // px).astype(int), (cols["x"] // px).astype(int),
                 movie, m)
    assert len(out["x"]) == 2 * n
    err = out["x"].reshape(n, 2) - tx
    assert abs(err.mean()) < 10 and np.sqrt(np.mean(err ** 2)) < 25


def test_unresolved_pairs_are_split_and_single_emitters_are_not() -> None:
    from microsight.methods.localize.refine import refine

    n = 60
    m, truth, movie = _pair_movie(n, 2.2, seed=4)
    px = m.simulation.pixel_size
    tx, ty = truth["x"].reshape(n, 2), truth["y"].reshape(n, 2)
    # One detection per pair, at its midpoint.
    mid_x, mid_y = tx.mean(1), ty.mean(1)
    cols = _cols(mid_x, mid_y, np.arange(n))
    out = refine(cols, np.arange(n), (mid_y // px).astype(int), (mid_x // px).astype(int),
                 movie, m)
    assert len(out["x"]) >= 1.8 * n
    # Nearly every true emitter has a localization within 50 nm in its frame.
    found = [np.min(np.hypot(out["x"][out["frame"] == k] - tx[k, e],
                             out["y"][out["frame"] == k] - ty[k, e]))
             for k in range(n) for e in range(2)]
    assert np.mean(np.array(found) < 50) > 0.9
    # Single emitters: no false splits.
    single = truth[0::2]
    single["frame"] = np.arange(n)
    cfg = m.simulation.model_copy(update={"psf": "integrated"})
    rng = np.random.default_rng(5)
    movie1 = rng.poisson(render_psfs(single, cfg, n) + 20).astype(np.float32)
    cols1 = _cols(single["x"], single["y"])
    out1 = refine(cols1, np.arange(n), (single["y"] // px).astype(int),
                  (single["x"] // px).astype(int), movie1, m)
    assert len(out1["x"]) <= n + 1


def test_duplicate_detections_are_dropped() -> None:
    from microsight.methods.localize.refine import duplicates

    cols = _cols(np.array([500.0, 520.0, 900.0]), np.array([500.0, 500.0, 500.0]))
    cols["score"] = np.array([0.7, 0.9, 0.8])
    assert duplicates(cols, np.zeros(3, int), 100.0).tolist() == [True, False, False]
    assert not duplicates(cols, np.array([0, 1, 0]), 100.0).any()

    from microsight.methods.localize.refine import refine

    m, truth, movie = _pair_movie(1, 6.0, seed=6)
    x, y = truth["x"][:1] + [0.0, 20.0], truth["y"][:1] + [0.0, 0.0]
    out = refine(_cols(x, y), np.zeros(2, int), (y // 100).astype(int),
                 (x // 100).astype(int), movie, m)
    assert len(out["x"]) == 1 and abs(out["x"][0] - truth["x"][0]) < 40
