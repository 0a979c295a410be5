"""Sample data for napari's File > Open Sample menu."""

from __future__ import annotations

import numpy as np


def nuclei() -> list[tuple]:
    """The bundled 512 x 512 nuclei image (DSB2018, CC0)."""
    from microsight.data.samples import sample_nuclei

    return [(sample_nuclei(), {"name": "nuclei"}, "image")]


def smlm_movie() -> list[tuple]:
    """A small simulated SMLM movie (TYX, 100 frames of 64 x 64) and its true emitters.

    Small enough to simulate in about a second; the ground truth comes as a Points
    layer in pixel units (frame, y, x) to compare localizations with.
    """
    from microsight.data.smlm import simulate
    from microsight.data.smlm_config import SimulationConfig

    cfg = SimulationConfig(frames=100, shape=[64, 64], structure="filaments", seed=0)
    sim = simulate(cfg)
    truth = sim.truth
    px = cfg.pixel_size
    # Coordinates in nm from the top-left corner; napari puts pixel centres at integers.
    points = np.stack([truth["frame"], truth["y"] / px - 0.5, truth["x"] / px - 0.5], axis=1)
    movie = np.clip(np.round(sim.movie), 0, 65535).astype(np.uint16)
    return [
        (movie, {"name": "smlm movie", "colormap": "gray"}, "image"),
        (points, {"name": "smlm ground truth", "size": 1.0, "face_color": "cyan",
                  "features": {"photons": truth["photons"]}, "visible": False}, "points"),
    ]
