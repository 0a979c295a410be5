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

import numpy as np
from scipy.special import erf

from microsight.data.smlm_config import CameraConfig, SimulationConfig
from microsight.io.localizations import make_table


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


__all__ = ["CameraConfig", "Simulation", "SimulationConfig", "simulate"]
