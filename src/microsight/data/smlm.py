"""Simulated single-molecule localization microscopy (SMLM) movies.

A simulation has four stages, each a small function:

1. **structure**: binding sites in nm (uniform, worm-like filaments,
   clusters, or a table the user gives), optionally with a z range;
2. **blinking**: every frame, new emitters switch on at free sites so that
   on average ``density`` emitters per um^2 are on; an emitter stays on for
   an exponential time (mean ``on_frames``, continuous in time, so first and
   last frames are partial), then bleaches with probability ``bleach`` or
   returns to the pool; photons per frame are gamma distributed;
3. **PSF**: 2D Gaussian sampled at pixel centres, Gaussian integrated over
   each pixel, or astigmatic 3D (integrated, ``sigma_x`` and ``sigma_y``
   change with z);
4. **camera**: quantum efficiency and Poisson shot noise, then EMCCD (gamma
   electron multiplication, excess noise factor 2), sCMOS (per-pixel offset,
   read-noise variance and gain) or an ideal photon counter; conversion to
   ADU.

The ground truth is a localization table (``microsight.io.localizations``).
Everything is numpy and seeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator
from scipy.special import erf

from microsight.config.base import StrictModel
from microsight.io.localizations import make_table


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
def _filament_sites(cfg: SimulationConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sites on worm-like curves crossing the field (persistent random walks)."""
    height, width = cfg.shape[0] * cfg.pixel_size, cfg.shape[1] * cfg.pixel_size
    step = 20.0
    n_steps = int(2 * max(height, width) / step)
    curves = []
    for _ in range(cfg.filaments):
        start = rng.uniform([0, 0], [width, height])
        angle = rng.uniform(0, 2 * np.pi)
        turns = rng.normal(0, np.sqrt(2 * step / cfg.persistence), n_steps)
        angles = angle + np.cumsum(turns)
        path = start + np.cumsum(step * np.stack([np.cos(angles), np.sin(angles)], 1), 0)
        # Walk both ways from the start so the filament crosses the field.
        back = start - np.cumsum(step * np.stack([np.cos(angles), np.sin(angles)], 1), 0)
        curves.append(np.concatenate([back[::-1], path]))
    points = np.concatenate(curves)
    inside = ((points[:, 0] >= 0) & (points[:, 0] < width)
              & (points[:, 1] >= 0) & (points[:, 1] < height))
    points = points[inside] if inside.any() else points
    pick = points[rng.integers(0, len(points), n)]
    # Labels sit off the filament axis (antibody size), about 10 nm.
    return pick + rng.uniform(-step / 2, step / 2, (n, 2)) + rng.normal(0, 10, (n, 2))


def make_sites(cfg: SimulationConfig, rng: np.random.Generator,
               table: np.ndarray | None = None) -> np.ndarray:
    """Binding sites ``(N, 3)`` as ``x, y, z`` in nm for the configured structure.

    Parameters
    ----------
    cfg : SimulationConfig
        Simulation settings.
    rng : numpy.random.Generator
        Random generator.
    table : numpy.ndarray, optional
        Localization table whose positions are the sites (structure ``table``).

    Returns
    -------
    numpy.ndarray
    """
    n_on = cfg.density * cfg.area_um2
    n = cfg.sites or int(np.ceil(4 * n_on + 2 * n_on * cfg.frames / cfg.on_frames
                                 * max(cfg.bleach, 0.05))) + 10
    height, width = cfg.shape[0] * cfg.pixel_size, cfg.shape[1] * cfg.pixel_size
    if cfg.structure == "table":
        if table is None or len(table) == 0:
            raise ValueError("structure 'table' needs a localization table of sites")
        xyz = np.stack([table["x"], table["y"], table["z"]], 1).astype(np.float64)
        return xyz
    if cfg.structure == "random":
        xy = rng.uniform([0, 0], [width, height], (n, 2))
    elif cfg.structure == "filaments":
        xy = _filament_sites(cfg, n, rng)
    else:
        centres = rng.uniform([0, 0], [width, height], (cfg.clusters, 2))
        xy = centres[rng.integers(0, cfg.clusters, n)] + rng.normal(0, cfg.cluster_radius, (n, 2))
    xy = np.clip(xy, 0, [width - 1e-3, height - 1e-3])
    z = rng.uniform(*cfg.z_range, n) if cfg.is_3d else np.zeros(n)
    return np.concatenate([xy, z[:, None]], 1)


# --- blinking --------------------------------------------------------------------
def blink(cfg: SimulationConfig, sites: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Emitter events per frame: a localization table of the true positions and photons.

    Every frame ``Poisson(density * area / (on_frames + 1))`` free sites switch on at
    a uniform time within the frame; on times are exponential. A burn-in of
    a few on times before frame 0 makes the first frames as dense as the rest.
    """
    # An emitter on for a time T is seen in T + 1 frames on average (it switches on
    # and off within frames), so this rate gives ``density`` emitters per frame.
    rate = cfg.density * cfg.area_um2 / (cfg.on_frames + 1)
    shape_k = 1.0 / max(cfg.photons_cv, 1e-3) ** 2
    burn = int(np.ceil(5 * cfg.on_frames))
    free = np.ones(len(sites), bool)
    busy_until = np.full(len(sites), -np.inf)
    events = []  # (site, t_start, t_end, brightness)
    for f in range(-burn, cfg.frames):
        available = np.flatnonzero(free & (busy_until <= f))
        k = min(rng.poisson(rate), len(available))
        if k == 0:
            continue
        chosen = rng.choice(available, k, replace=False)
        t0 = f + rng.uniform(0, 1, k)
        t1 = t0 + rng.exponential(cfg.on_frames, k)
        busy_until[chosen] = t1
        free[chosen] = rng.uniform(size=k) >= cfg.bleach
        bright = (rng.gamma(shape_k, cfg.photons / shape_k, k) if cfg.photons_cv > 0
                  else np.full(k, cfg.photons))
        events.append(np.stack([chosen, t0, t1, bright], 1))
    if not events:
        return make_table(0)
    ev = np.concatenate(events)
    first = np.maximum(np.floor(ev[:, 1]).astype(np.int64), 0)
    last = np.minimum(np.floor(ev[:, 2]).astype(np.int64), cfg.frames - 1)
    counts = np.maximum(last - first + 1, 0)
    idx = np.repeat(np.arange(len(ev)), counts)
    frame = np.repeat(first, counts) + (np.arange(counts.sum()) - np.repeat(
        np.cumsum(counts) - counts, counts))
    overlap = np.minimum(ev[idx, 2], frame + 1) - np.maximum(ev[idx, 1], frame)
    keep = overlap > 0
    idx, frame, overlap = idx[keep], frame[keep], overlap[keep]
    xyz = sites[ev[idx, 0].astype(np.int64)]
    table = make_table(frame=frame, x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2],
                       photons=ev[idx, 3] * overlap, background=cfg.background)
    return table[np.lexsort((table["x"], table["frame"]))]


# --- PSF -------------------------------------------------------------------------
def astigmatic_sigmas(z: np.ndarray, sigma: float, focus: float, depth: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """PSF widths ``(sigma_x, sigma_y)`` in nm at heights ``z`` (nm): foci at +-``focus``."""
    z = np.asarray(z, np.float64)
    sx = sigma * np.sqrt(1 + ((z - focus) / depth) ** 2)
    sy = sigma * np.sqrt(1 + ((z + focus) / depth) ** 2)
    return sx, sy


def psf_sigmas(cfg: SimulationConfig, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PSF widths in nm for the configured model."""
    if cfg.is_3d:
        return astigmatic_sigmas(z, cfg.sigma, cfg.astig_focus, cfg.astig_depth)
    flat = np.full(np.shape(z), cfg.sigma, np.float64)
    return flat, flat.copy()


def _profiles(centre: np.ndarray, sigma: np.ndarray, start: np.ndarray, width: int,
              integrated: bool) -> np.ndarray:
    """1D PSF weights ``(N, width)`` of pixels ``start .. start+width-1`` (pixel units)."""
    pix = start[:, None] + np.arange(width)[None, :]
    c, s = centre[:, None], sigma[:, None]
    if integrated:
        # Pixel j spans [j, j+1) in corner-origin pixel units.
        scale = 1 / (np.sqrt(2) * s)
        return 0.5 * (erf((pix + 1 - c) * scale) - erf((pix - c) * scale))
    return np.exp(-0.5 * ((pix + 0.5 - c) / s) ** 2) / (np.sqrt(2 * np.pi) * s)


def render_psfs(table: np.ndarray, cfg: SimulationConfig, n_frames: int,
                chunk: int = 200_000) -> np.ndarray:
    """Expected photons per pixel ``(frames, Y, X)`` of the emitters in ``table``."""
    h, w = cfg.shape
    out = np.zeros(n_frames * h * w, np.float64)
    px = cfg.pixel_size
    sx_nm, sy_nm = psf_sigmas(cfg, table["z"])
    integrated = cfg.psf != "gaussian"
    half = int(np.ceil(4 * max(float(np.max(sx_nm, initial=cfg.sigma)),
                               float(np.max(sy_nm, initial=cfg.sigma))) / px))
    width = 2 * half + 1
    for lo in range(0, len(table), chunk):
        t = table[lo:lo + chunk]
        cx, cy = t["x"] / px, t["y"] / px
        sx, sy = sx_nm[lo:lo + chunk] / px, sy_nm[lo:lo + chunk] / px
        x0 = np.floor(cx).astype(np.int64) - half
        y0 = np.floor(cy).astype(np.int64) - half
        wx = _profiles(cx, sx, x0, width, integrated)
        wy = _profiles(cy, sy, y0, width, integrated)
        xs = x0[:, None] + np.arange(width)
        ys = y0[:, None] + np.arange(width)
        vals = t["photons"][:, None, None] * wy[:, :, None] * wx[:, None, :]
        ok = ((ys >= 0) & (ys < h))[:, :, None] & ((xs >= 0) & (xs < w))[:, None, :]
        flat = (t["frame"][:, None, None] * h + ys[:, :, None]) * w + xs[:, None, :]
        out += np.bincount(flat[ok], weights=vals[ok], minlength=out.size)
    return out.reshape(n_frames, h, w)


# --- camera ----------------------------------------------------------------------
@dataclass
class CameraMaps:
    """Per-pixel calibration of an sCMOS camera (offset ADU, read variance e^2, gain)."""

    offset: np.ndarray
    variance: np.ndarray
    gain: np.ndarray


def camera_maps(camera: CameraConfig, shape: tuple[int, int], seed: int = 0) -> CameraMaps:
    """Fixed per-pixel offset, read-noise variance and relative gain of an sCMOS chip."""
    rng = np.random.default_rng(seed + 7919)
    offset = camera.baseline + rng.normal(0, camera.offset_sd, shape)
    # Read-noise variance is skewed in real sCMOS chips: a log-normal spread.
    variance = camera.read_noise ** 2 * rng.lognormal(0, 0.5, shape)
    gain = 1 + rng.normal(0, camera.gain_sd, shape)
    return CameraMaps(offset.astype(np.float32), variance.astype(np.float32),
                      np.clip(gain, 0.5, 1.5).astype(np.float32))


def apply_camera(expected: np.ndarray, camera: CameraConfig, rng: np.random.Generator,
                 maps: CameraMaps | None = None) -> np.ndarray:
    """Noisy camera frames (float32 ADU) from expected photons per pixel.

    Parameters
    ----------
    expected : numpy.ndarray
        Expected incident photons per pixel (emitters plus background).
    camera : CameraConfig
        Detector model.
    rng : numpy.random.Generator
        Random generator.
    maps : CameraMaps, optional
        sCMOS calibration maps (made from the seed when omitted).

    Returns
    -------
    numpy.ndarray
    """
    electrons = rng.poisson(np.maximum(expected, 0) * camera.qe).astype(np.float64)
    if camera.model == "ideal":
        return electrons.astype(np.float32) / np.float32(camera.qe)
    if camera.model == "emccd":
        # Gamma-distributed multiplication of n electrons: mean n*g, excess factor 2.
        amplified = np.zeros_like(electrons)
        lit = electrons > 0
        amplified[lit] = rng.gamma(electrons[lit], camera.em_gain)
        amplified += rng.normal(0, camera.read_noise, electrons.shape)
        adu = amplified / camera.conversion + camera.baseline
    else:
        maps = maps or camera_maps(camera, expected.shape[-2:])
        noisy = electrons * maps.gain + rng.normal(0, 1, electrons.shape) * np.sqrt(maps.variance)
        adu = noisy / camera.conversion + maps.offset
    return np.clip(np.round(adu), 0, 65535).astype(np.float32)


def background_map(cfg: SimulationConfig) -> np.ndarray:
    """Background photons per pixel ``(Y, X)``: constant, or with a smooth gradient."""
    h, w = cfg.shape
    if cfg.background_variation == 0:
        return np.full((h, w), cfg.background, np.float64)
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = np.cos(np.pi * xx / w) * np.cos(np.pi * yy / h)
    return cfg.background * (1 + cfg.background_variation * ramp)


@dataclass
class Simulation:
    """A simulated movie (ADU, ``(T, Y, X)`` float32) with its ground-truth table."""

    movie: np.ndarray
    truth: np.ndarray
    config: SimulationConfig

    @property
    def photons(self) -> np.ndarray:
        """The movie converted back to incident photons (camera gain and offset removed)."""
        return self.config.camera.to_photons(self.movie)


def simulate(cfg: SimulationConfig, *, table: np.ndarray | None = None) -> Simulation:
    """Simulate an SMLM movie and its ground truth.

    Parameters
    ----------
    cfg : SimulationConfig
        Settings (structure, density, blinking, photons, PSF, camera, seed).
    table : numpy.ndarray, optional
        Sites for ``structure='table'`` (a localization table, nm).

    Returns
    -------
    Simulation
    """
    rng = np.random.default_rng(cfg.seed)
    sites = make_sites(cfg, rng, table)
    truth = blink(cfg, sites, rng)
    expected = render_psfs(truth, cfg, cfg.frames) + background_map(cfg)[None]
    movie = apply_camera(expected, cfg.camera, rng,
                         camera_maps(cfg.camera, tuple(cfg.shape), cfg.seed)
                         if cfg.camera.model == "scmos" else None)
    return Simulation(movie, truth, cfg)
