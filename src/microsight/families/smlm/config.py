"""Configuration shared by the single-molecule localization methods (torch-free)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from microsight.config import UNetConfig
from microsight.data.smlm_config import SimulationConfig

#: ``--input simulate`` on the command line: train on freshly simulated movies.
SIMULATE = "simulate"
LOC_METRICS = ("jaccard", "recall", "precision", "rmse_lateral", "efficiency_lateral")
#: What every SMLM method declares alike (``MethodSpec(..., **SMLM_SPEC)``): trained on
#: simulated movies or a movie and its table, predicting and scoring whole movies.
SMLM_SPEC = {"family": "smlm", "needs_target": None, "predictor": ".predict_image",
             "evaluator": ".evaluate_model", "exports": True}


class SMLMConfig(UNetConfig):
    """Fields shared by the SMLM methods: training simulation and evaluation."""

    unet_defaults: ClassVar[dict[str, Any]] = {"base_channels": 16}

    ndim: int = Field(2, ge=2, le=2, description="SMLM networks work on YX frames.")
    simulation: SimulationConfig = Field(
        default_factory=SimulationConfig,
        description="Simulation of the training movies; its camera and pixel size must "
                    "match the data the model will see.")
    train_frames: int = Field(1000, ge=4, description="Simulated training frames.")
    train_densities: list[float] = Field(
        [], description="Emitter densities (per um^2) of the simulated training movies, "
                        "frames split evenly between them (a model for a range of "
                        "densities); empty: simulation.density only.")
    val_frames: int = Field(64, ge=1, description="Simulated validation frames.")
    tolerance: float = Field(250.0, gt=0, description="Matching tolerance (nm) in evaluation.")
    classical_threshold: float = Field(
        4.0, gt=0, description="Classical baseline: detection threshold (noise units).")
    frame_batch: int = Field(32, ge=1, description="Frames per forward pass at prediction.")

    @property
    def sigma_px(self) -> float:
        """In-focus PSF sd in camera pixels."""
        return self.simulation.sigma / self.simulation.pixel_size

    @property
    def photon_scale(self) -> float:
        """Photons that map to 1 in the network input: the peak pixel of a mean emitter."""
        s = self.sigma_px
        return float(self.simulation.background + self.simulation.photons
                     / (2 * np.pi * s * s))
