"""Blinking persistence: blinking movies persist across frames, shuffled ones do not."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

from microsight.data.smlm import SimulationConfig, simulate
from microsight.data.smlm_blinking import frame_persistence
from microsight.io.localizations import write_localizations
from microsight.methods.localize.config import LocalizeConfig

SIM = {"frames": 60, "shape": [32, 32], "density": 2.0}


def _movies(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A blinking movie, the same frames in shuffled order, and its truth."""
    sim = simulate(SimulationConfig(**SIM, seed=seed))
    order = np.random.default_rng(seed).permutation(len(sim.movie))
    return sim.movie, sim.movie[order], sim.truth


def test_blinking_persists_and_shuffled_frames_do_not() -> None:
    blinking, shuffled, _ = _movies()
    sigma = 110 / 100
    found = frame_persistence(blinking, sigma)
    assert found.spots >= 50
    # Mean on time 2 frames: about 2/3 of the spots come back, far above chance.
    assert found.next_frame > found.chance + 0.3 and found.persistence > 0.4
    assert not found.independent
    mixed = frame_persistence(shuffled, sigma)
    assert mixed.independent and abs(mixed.persistence) < 0.1
    # Short on times persist less; too few frames give no measure.
    short = simulate(SimulationConfig(**SIM, on_frames=0.5, seed=3))
    assert 0.15 < frame_persistence(short.movie, sigma).persistence < found.persistence
    assert frame_persistence(blinking[:3], sigma) is None


def test_warning_names_the_fix_only_where_context_is_used() -> None:
    from microsight.families.smlm.module import warn_if_frames_independent

    blinking, shuffled, _ = _movies()
    m = LocalizeConfig(simulation=SIM)
    with pytest.warns(UserWarning, match="context: 0") as caught:
        warn_if_frames_independent(shuffled, m, "shuffled.tif")
    assert "shuffled.tif" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_frames_independent(blinking, m, "blinking.tif")
        warn_if_frames_independent(shuffled, LocalizeConfig(context=0, simulation=SIM), "s")


def test_training_on_a_frame_independent_movie_warns(tmp_path: Path) -> None:
    from microsight.families.smlm.module import training_movies

    _, shuffled, truth = _movies()
    tifffile.imwrite(tmp_path / "m.tif", shuffled.astype(np.uint16))
    table = write_localizations(tmp_path / "t.csv", truth)
    with pytest.warns(UserWarning, match="do not persist"):
        training_movies(LocalizeConfig(simulation=SIM), 0, tmp_path / "m.tif", table, "TYX")
