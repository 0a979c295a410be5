"""Each agent's decisions on constructed cases."""

import numpy as np
import pytest

pytest.importorskip("useq", reason="acquisition plans need useq-schema "
                                   '(pip install "microsight[acquire]")')

from microsight.acquire.agents import (
    AdaptiveDose,
    EventDriven,
    FixedDose,
    FixedRate,
    tile_regions,
)
from microsight.acquire.microscope import DirectRunner, SimulatedMicroscope
from microsight.acquire.session import Session
from microsight.acquire.specimen import Specimen


class Scene(Specimen):
    """A 32 x 32 field, bright (density 1) during ``bright`` minutes, dim (0.2) otherwise."""

    def __init__(self, bright=(1e9, 1e9), n_fields=1):
        super().__init__(n_fields, bleach_dose=1e9, toxicity_budget=1e9)
        self.shape = (32, 32)
        self.bright = bright

    def density(self, index, time):
        on = self.bright[0] <= time < self.bright[1]
        return np.full(self.shape, 1.0 if on else 0.2, np.float32)


class FakeRestorer:
    """Returns the input, an uncertainty map with one uncertain 16 x 16 tile, and an
    out-of-distribution flag; records the images it was given."""

    def __init__(self, uncertain_tile=None, ood=False):
        self.uncertain_tile, self.ood, self.seen = uncertain_tile, ood, []

    def __call__(self, image):
        self.seen.append(image)
        spread = np.zeros(image.shape, np.float32)
        if self.uncertain_tile is not None and len(self.seen) == 1:
            r, c = self.uncertain_tile
            spread[r * 16:(r + 1) * 16, c * 16:(c + 1) * 16] = 1.0
        return image, spread, self.ood


def _run(agent, specimen=None):
    scope = SimulatedMicroscope(specimen or Scene(), seed=0)
    session = Session(scope, DirectRunner(scope))
    session.run(agent)
    return session


def _adaptive(restorer):
    return AdaptiveDose(restorer, 0.5, low=0.1, high=1.0, tile=16, n_times=1, n_fields=1,
                        interval=10.0)


def test_adaptive_dose_trusts_a_certain_image():
    session = _run(_adaptive(FakeRestorer()))
    assert len(session.frames) == 1 and session.frames[0].power == 0.1
    assert session.results[0].decision == "trusted at 0.1"


def test_adaptive_dose_reimages_only_the_uncertain_tile_and_pools_photons():
    restorer = FakeRestorer(uncertain_tile=(1, 0))
    session = _run(_adaptive(restorer))
    first, again = session.frames
    assert again.power == 1.0 and again.roi == (16, 0, 16, 16)
    assert session.results[0].dose == pytest.approx(0.1 + 0.25)
    assert session.results[0].details["reimaged"] == 0.25
    # The second restoration saw the pooled frames: the dose-weighted mean.
    pooled = restorer.seen[1]
    expected = (first.estimate[16:, :16] * 0.1 + again.estimate[16:, :16]) / 1.1
    np.testing.assert_allclose(pooled[16:, :16], expected, rtol=1e-5)
    np.testing.assert_array_equal(pooled[:16], first.estimate[:16])


def test_adaptive_dose_reimages_everything_out_of_distribution():
    session = _run(_adaptive(FakeRestorer(ood=True)))
    assert [f.roi for f in session.frames[1:]] == [(0, 0, 16, 32), (16, 0, 16, 32)]
    assert "out of distribution" in session.results[0].decision


def test_fixed_dose_images_every_field_once_per_time_point():
    session = _run(FixedDose("fixed-low", 0.1, FakeRestorer(), n_times=3, n_fields=2,
                             interval=5.0), Scene(n_fields=2))
    assert [(f.field, f.minutes) for f in session.frames] == [
        (0, 0.0), (1, 0.0), (0, 5.0), (1, 5.0), (0, 10.0), (1, 10.0)]
    assert session.total_dose == pytest.approx(0.6)


def test_tile_regions_merge_horizontal_runs():
    mask = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], bool)
    assert tile_regions(mask, 8) == [(0, 0, 8, 16), (8, 8, 8, 16), (16, 0, 8, 8),
                                     (16, 16, 8, 8)]


def test_event_driven_switches_to_fast_during_the_event_and_back():
    agent = EventDriven(lambda estimate: float(estimate.mean()), 0.6, slow=20.0, fast=2.0,
                        power=0.5, duration=200.0, n_fields=1, hold=2)
    session = _run(agent, Scene(bright=(50.0, 70.0)))
    times = [f.minutes for f in session.frames]
    # Slow until the first bright frame (60), fast while bright, two quiet fast frames,
    # then slow again.
    assert times[:4] == [0.0, 20.0, 40.0, 60.0]
    assert times[4:10] == [62.0, 64.0, 66.0, 68.0, 70.0, 72.0]
    assert times[10] == 92.0 and np.all(np.diff(times[10:]) == 20.0)
    assert [f.why for f in session.frames[3:5]] == ["watching", "event in progress"]


def test_fixed_rates_interleave_fields():
    session = _run(FixedRate("fixed-slow", 30.0, power=0.2, duration=60.0, n_fields=2),
                   Scene(n_fields=2))
    assert [(f.minutes, f.field) for f in session.frames] == [
        (0.0, 0), (0.0, 1), (30.0, 0), (30.0, 1), (60.0, 0), (60.0, 1)]
