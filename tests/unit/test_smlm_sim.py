"""SMLM simulator: photons, PSF widths, density and camera noise match their parameters."""

from __future__ import annotations

import numpy as np
import pytest

from microsight.data.smlm import (
    CameraConfig,
    SimulationConfig,
    apply_camera,
    astigmatic_sigmas,
    camera_maps,
    render_psfs,
    simulate,
)
from microsight.io.localizations import make_table

IDEAL = CameraConfig(model="ideal", qe=1.0)


def _centred_emitter(cfg: SimulationConfig, z: float = 0.0, photons: float = 1000.0):
    centre = cfg.shape[0] * cfg.pixel_size / 2
    return make_table(frame=np.array([0]), x=centre + 37.0, y=centre - 21.0, z=z,
                      photons=photons)


@pytest.mark.parametrize("psf", ["gaussian", "integrated"])
def test_psf_width_and_photons(psf: str) -> None:
    cfg = SimulationConfig(shape=[32, 32], psf=psf, sigma=150.0, pixel_size=100.0,
                           camera=IDEAL)
    img = render_psfs(_centred_emitter(cfg), cfg, 1)[0]
    assert img.sum() == pytest.approx(1000.0, rel=0.01)
    _, xx = np.mgrid[0:32, 0:32] + 0.5
    mx = (img * xx).sum() / img.sum()
    var_x = (img * (xx - mx) ** 2).sum() / img.sum()
    # Integrating over a pixel adds its 1/12 px^2 variance; sampling does not.
    expected = 1.5 ** 2 + (1 / 12 if psf == "integrated" else 0)
    assert var_x == pytest.approx(expected, rel=0.03)
    assert mx * 100 == pytest.approx(1637.0, abs=1.0)


def test_astigmatic_widths_follow_z() -> None:
    cfg = SimulationConfig(shape=[32, 32], psf="astigmatic", sigma=120.0, camera=IDEAL,
                           astig_focus=300.0, astig_depth=400.0)
    sx, sy = astigmatic_sigmas(np.array([300.0, -300.0, 0.0]), 120.0, 300.0, 400.0)
    assert sx[0] == pytest.approx(120.0) and sy[1] == pytest.approx(120.0)
    assert sx[2] == pytest.approx(sy[2])
    img = render_psfs(_centred_emitter(cfg, z=300.0), cfg, 1)[0]
    # In focus along x at z = +focus: the spot is narrower in x than in y.
    assert (img.sum(0) > 0.05 * img.sum(0).max()).sum() < (
        img.sum(1) > 0.05 * img.sum(1).max()).sum()


def test_density_and_photon_distribution() -> None:
    cfg = SimulationConfig(frames=60, shape=[32, 32], density=3.0, photons=1500,
                           photons_cv=0.3, on_frames=1.0, seed=3)
    sim = simulate(cfg)
    per_frame = np.bincount(sim.truth["frame"], minlength=cfg.frames)
    assert per_frame.mean() == pytest.approx(cfg.density * cfg.area_um2, rel=0.1)
    assert sim.movie.shape == (60, 32, 32)
    # Photons of whole frames follow the gamma brightness: mean = photons, CV as asked.
    full = sim.truth["photons"]
    assert full.max() < 6 * cfg.photons
    assert np.mean(full) < cfg.photons  # partial first/last frames pull the mean down


def test_brightness_statistics_without_partial_frames() -> None:
    cfg = SimulationConfig(frames=40, shape=[32, 32], density=2.0, photons=1000,
                           photons_cv=0.25, on_frames=50.0, bleach=0.0, seed=1)
    truth = simulate(cfg).truth
    # An emitter's photons per full frame are its brightness: the largest value per site.
    _, site = np.unique(truth["x"], return_inverse=True)
    bright = np.zeros(site.max() + 1)
    np.maximum.at(bright, site, truth["photons"])
    assert np.mean(bright) == pytest.approx(1000, rel=0.1)
    assert np.std(bright) / np.mean(bright) == pytest.approx(0.25, abs=0.06)


def test_structures_and_table_sites() -> None:
    for structure in ("random", "filaments", "clusters"):
        cfg = SimulationConfig(frames=5, shape=[16, 16], structure=structure, seed=2)
        truth = simulate(cfg).truth
        assert len(truth) > 0
        assert truth["x"].min() >= 0 and truth["x"].max() < 1600
    sites = make_table(x=np.array([400.0, 1200.0]), y=np.array([800.0, 800.0]))
    cfg = SimulationConfig(frames=10, shape=[16, 16], structure="table", density=2.0)
    truth = simulate(cfg, table=sites).truth
    assert set(np.round(truth["x"]).astype(int)) <= {400, 1200}


def test_emccd_excess_noise_and_gain() -> None:
    cam = CameraConfig(model="emccd", qe=0.8, em_gain=50, e_per_adu=10, baseline=100,
                       read_noise=0.0)
    adu = apply_camera(np.full((200, 32, 32), 20.0), cam, np.random.default_rng(0))
    signal = adu - cam.baseline
    assert signal.mean() == pytest.approx(20 * cam.adu_per_photon(), rel=0.02)
    # Excess factor 2: variance = 2 * gain(ADU per electron) * mean.
    assert signal.var() / signal.mean() == pytest.approx(2 * 50 / 10, rel=0.05)
    assert cam.to_photons(adu).mean() == pytest.approx(20, rel=0.02)


def test_scmos_offset_map() -> None:
    cam = CameraConfig(model="scmos", qe=1.0, e_per_adu=1.0, baseline=100, read_noise=1.5,
                       offset_sd=3.0, gain_sd=0.0)
    maps = camera_maps(cam, (16, 16), seed=4)
    dark = apply_camera(np.zeros((400, 16, 16)), cam, np.random.default_rng(1), maps)
    # Rounding to whole ADU adds at most half an ADU of bias per pixel.
    assert np.abs(dark.mean(0) - maps.offset).max() < 0.7
    assert dark.std(0).mean() == pytest.approx(np.sqrt(maps.variance).mean(), rel=0.15)


def test_method_configs_round_trip(tmp_path) -> None:
    from microsight.api import build_config
    from microsight.config import config_to_yaml, load_config

    for method in ("localize", "deepstorm"):
        cfg = build_config(method, {"method": {"method": method,
                                               "simulation": {"camera": {"model": "scmos"}}}})
        path = tmp_path / f"{method}.yaml"
        path.write_text(config_to_yaml(cfg))
        assert load_config(path) == cfg
        assert cfg.method.simulation.camera.conversion == 0.5
