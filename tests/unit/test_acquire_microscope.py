"""The simulated microscope: camera noise, photobleaching, phototoxicity, mitosis."""

import numpy as np
import pytest

from microsight.acquire.agents import mitosis_score
from microsight.acquire.microscope import SimulatedMicroscope, dose_of
from microsight.acquire.specimen import CellCycleSpecimen, Specimen
from microsight.data.smlm import CameraConfig


class Flat(Specimen):
    """A uniform field of fluorophore density ``level``."""

    def __init__(self, level=0.5, size=64, bleach_dose=1e9):
        super().__init__(1, bleach_dose=bleach_dose, toxicity_budget=1e9)
        self.shape = (size, size)
        self.level = level

    def density(self, index, time):
        return np.full(self.shape, self.level, np.float32)


@pytest.mark.parametrize("power", [0.05, 0.5])
def test_scmos_noise_mean_and_variance_at_known_dose(power):
    camera = CameraConfig(model="scmos", read_noise=1.5, gain_sd=0.0, offset_sd=0.0)
    scope = SimulatedMicroscope(Flat(0.5, size=128), camera=camera, photons=400.0,
                                background=0.0, seed=1)
    scope.power = power
    dose = scope.dose_map()
    photons = np.stack([camera.to_photons(scope.snap()) for _ in range(20)])
    expected = 0.5 * 400.0 * dose_of(power, scope.exposure_ms)
    # Poisson-Gaussian: photon shot noise (over QE) plus each pixel's read variance.
    variance = expected / camera.qe + scope.maps.variance.mean() / camera.qe ** 2
    assert photons.mean() == pytest.approx(expected, rel=0.02)
    assert photons.var(axis=0).mean() == pytest.approx(variance, rel=0.06)
    # The density estimate is unbiased whatever the dose.
    estimate = scope.estimate(scope.snap(), dose)
    assert estimate.mean() == pytest.approx(0.5, rel=0.03)


def test_bleaching_follows_the_dose_law():
    specimen = Flat(1.0, bleach_dose=5.0)
    scope = SimulatedMicroscope(specimen, camera=CameraConfig(model="ideal"), photons=1000.0,
                                background=0.0, seed=0)
    means = []
    for t in range(8):
        scope.time = float(t)
        means.append(scope.estimate(scope.snap(), scope.dose_map()).mean())
    doses = np.arange(8) * 1.0  # one unit of dose per frame, before each frame
    np.testing.assert_allclose(means, np.exp(-doses / 5.0), rtol=0.02)
    assert specimen.bleached_fraction(0).mean() == pytest.approx(np.exp(-8 / 5.0))


def test_bleaching_stays_in_the_illuminated_region():
    specimen = Flat(1.0, bleach_dose=2.0)
    scope = SimulatedMicroscope(specimen, photons=100.0, seed=0)
    scope.roi = (0, 0, 16, 64)
    scope.snap()
    left = specimen.bleached_fraction(0)
    assert left[:16].mean() == pytest.approx(np.exp(-0.5)) and left[16:].min() == 1.0


def _light(specimen, field, until, dose, step=10.0):
    for t in np.arange(0.0, until, step):
        specimen.expose(field, float(t), np.full(specimen.shape, dose))


def test_phototoxicity_stops_division_past_the_budget():
    kwargs = {"size": 96, "cells": 4, "seed": 3, "cycle": (100.0, 150.0), "mitosis": 20.0}
    gentle = CellCycleSpecimen(1, toxicity_budget=50.0, **kwargs)
    harsh = CellCycleSpecimen(1, toxicity_budget=50.0, **kwargs)
    _light(gentle, 0, 300.0, 0.1)   # 3 units in 300 minutes: under the budget
    _light(harsh, 0, 300.0, 2.0)    # past the budget after 250 minutes
    divided = gentle.mitoses(0, 300.0)
    blocked = harsh.mitoses(0, 300.0)
    assert len(divided) > len(blocked) > 0
    # Every mitosis of the harsh field began before its dose passed the budget.
    assert all(harsh.light[0].dose_before(m.start) <= 50.0 for m in blocked)
    late = [m for m in divided if m.start > 260.0]
    assert late and not [m for m in blocked if m.start > 260.0]


def test_mitosis_is_visible_and_daughters_appear():
    specimen = CellCycleSpecimen(1, size=96, cells=3, seed=5, cycle=(200.0, 300.0))
    event = specimen.mitoses(0, 400.0)[0]
    stages = event.stage_times()
    before = specimen.density(0, event.start - 5)
    plate = specimen.density(0, sum(stages["metaphase"]) / 2)
    assert plate.max() > 2 * np.median(before[before > 0.2])
    assert mitosis_score(plate) > mitosis_score(before) + 0.5
    n_before = len(specimen.cells_at(0, event.start - 1)[0])
    assert len(specimen.cells_at(0, event.end + 1)[0]) == n_before + 1
