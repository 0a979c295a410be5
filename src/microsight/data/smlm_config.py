"""Settings of the SMLM simulator: camera and simulation (pydantic; no heavy imports).

Kept apart from the simulator itself so that method configurations that embed
them can be listed and validated quickly.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from microsight.config.base import StrictModel


class CameraConfig(StrictModel):
    """Detector model: photons -> photo-electrons -> ADU."""

    model: Literal["emccd", "scmos", "ideal"] = Field(
        "emccd", description="emccd (EM gain, excess noise 2), scmos (per-pixel offset/noise), "
                             "ideal (Poisson photon counts, no offset).")
    qe: float = Field(0.9, gt=0, le=1, description="Quantum efficiency.")
    em_gain: float = Field(100.0, ge=1, description="EMCCD electron-multiplying gain.")
    e_per_adu: float | None = Field(
        None, gt=0, description="Electrons per ADU (after EM gain for EMCCD); default 45 "
                                "for EMCCD, 0.5 for sCMOS.")
    baseline: float = Field(100.0, ge=0, description="Offset added to every pixel (ADU).")
    read_noise: float = Field(
        2.0, ge=0, description="Read noise (electrons, rms); sCMOS: median over pixels.")
    offset_sd: float = Field(2.0, ge=0, description="sCMOS: spread of per-pixel offsets (ADU).")
    gain_sd: float = Field(0.02, ge=0, lt=0.5,
                           description="sCMOS: relative spread of per-pixel gains.")

    @property
    def conversion(self) -> float:
        """Electrons per ADU in effect (the model's typical value unless given)."""
        if self.e_per_adu is not None:
            return self.e_per_adu
        return 45.0 if self.model == "emccd" else 0.5

    @property
    def excess_factor(self) -> float:
        """Noise excess factor F^2 of the detector (2 for EMCCD, 1 otherwise)."""
        return 2.0 if self.model == "emccd" else 1.0

    def adu_per_photon(self) -> float:
        """Mean ADU per incident photon (baseline excluded)."""
        gain = self.em_gain if self.model == "emccd" else 1.0
        return 1.0 if self.model == "ideal" else self.qe * gain / self.conversion

    def to_photons(self, adu: np.ndarray) -> np.ndarray:
        """Convert ADU back to (mean) incident photons: remove baseline, divide by the gain."""
        base = 0.0 if self.model == "ideal" else self.baseline
        return ((np.asarray(adu, np.float32) - base) / self.adu_per_photon()).astype(np.float32)

    def from_photons(self, photons: np.ndarray) -> np.ndarray:
        """Mean ADU of incident ``photons`` (noise-free inverse of :meth:`to_photons`)."""
        base = 0.0 if self.model == "ideal" else self.baseline
        return (np.asarray(photons, np.float32) * self.adu_per_photon() + base).astype(
            np.float32)


class SimulationConfig(StrictModel):
    """Everything that defines a simulated SMLM movie."""

    frames: int = Field(100, ge=1, description="Number of frames.")
    shape: list[int] = Field([64, 64], description="Frame size (Y, X) in pixels.")
    pixel_size: float = Field(100.0, gt=0, description="Camera pixel size in nm (object space).")
    structure: Literal["random", "filaments", "clusters", "table"] = Field(
        "random", description="Where emitters sit: uniform, filaments (microtubule-like "
                              "curves), clusters, or the sites of a given table.")
    density: float = Field(
        1.0, gt=0, le=50, description="Mean number of emitters seen per frame and um^2 "
                                       "(any part of the frame on).")
    filaments: int = Field(6, ge=1, description="Number of filaments (structure filaments).")
    persistence: float = Field(3000.0, gt=0, description="Filament persistence length (nm).")
    clusters: int = Field(12, ge=1, description="Number of clusters (structure clusters).")
    cluster_radius: float = Field(60.0, gt=0, description="Cluster radius, Gaussian sd (nm).")
    sites: int = Field(
        0, ge=0, description="Binding sites on the structure; 0: enough that the density "
                             "holds for the whole movie despite bleaching.")
    on_frames: float = Field(2.0, gt=0, description="Mean on time of an emitter (frames).")
    bleach: float = Field(0.5, ge=0, le=1,
                          description="Probability that an emitter bleaches after switching off.")
    photons: float = Field(2000.0, gt=0, description="Mean photons of an emitter per full frame.")
    photons_cv: float = Field(0.4, ge=0, lt=2,
                              description="Coefficient of variation of emitter brightness.")
    background: float = Field(20.0, ge=0, description="Background photons per pixel and frame.")
    background_variation: float = Field(
        0.0, ge=0, lt=1, description="Relative amplitude of a smooth background gradient.")
    psf: Literal["gaussian", "integrated", "astigmatic"] = Field(
        "integrated", description="gaussian (sampled at pixel centres), integrated (over "
                                  "each pixel), astigmatic (3D, integrated).")
    sigma: float = Field(110.0, gt=0, description="PSF Gaussian sd in focus (nm).")
    z_range: list[float] = Field([-500.0, 500.0], description="z range of emitters (nm), 3D.")
    astig_focus: float = Field(
        300.0, ge=0, description="Astigmatism: distance of the x and y foci from z=0 (nm).")
    astig_depth: float = Field(400.0, gt=0, description="Astigmatism: focal depth d (nm).")
    camera: CameraConfig = Field(default_factory=CameraConfig)
    seed: int = Field(0, description="Random seed.")

    @model_validator(mode="after")
    def _check(self) -> SimulationConfig:
        if len(self.shape) != 2 or min(self.shape) < 8:
            raise ValueError(f"shape must be two sizes >= 8 (Y, X), got {self.shape}")
        if len(self.z_range) != 2 or self.z_range[0] > self.z_range[1]:
            raise ValueError(f"z_range must be [low, high], got {self.z_range}")
        return self

    @property
    def is_3d(self) -> bool:
        """Whether emitters have a z coordinate (astigmatic PSF)."""
        return self.psf == "astigmatic"

    @property
    def area_um2(self) -> float:
        """Field of view in um^2."""
        return self.shape[0] * self.shape[1] * (self.pixel_size / 1000.0) ** 2


# --- structures ------------------------------------------------------------------
