"""Classical SMLM localization and the Cramer-Rao bound of the pixelated Gaussian PSF.

The baseline works like ThunderSTORM's default pipeline: a band-pass filter
(PSF-sized Gaussian minus a wide local mean), local maxima above a multiple
of the filtered image's robust noise level, then a maximum-likelihood fit
of an integrated Gaussian plus constant background under Poisson noise in
a small window around each maximum. The fit is Fisher scoring
(Levenberg-Marquardt-damped Newton steps with the expected Hessian), run on
all spots of a movie at once as ``(spots, window, window)`` arrays, so
thousands of spots cost a few array operations per iteration.

The Fisher information of that same model gives the Cramer-Rao lower bound
(CRLB) of any unbiased estimator of the position: the yardstick of the
localization precision of the learned localizer.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.special import erf

from microsight.io.localizations import make_table

_SQRT2 = np.sqrt(2.0)


def _edge_terms(pix: np.ndarray, c: np.ndarray, s: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Integrated 1D Gaussian over pixels ``[pix, pix+1)`` and its derivative in ``c``."""
    a, b = (pix - c) / (_SQRT2 * s), (pix + 1 - c) / (_SQRT2 * s)
    e = 0.5 * (erf(b) - erf(a))
    de = (np.exp(-a ** 2) - np.exp(-b ** 2)) / (np.sqrt(2 * np.pi) * s)
    return e, de


def _model(params: np.ndarray, ys: np.ndarray, xs: np.ndarray, sigma: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """Expected photons ``(S, W, W)`` and Jacobian ``(S, 4, W, W)`` for ``x, y, N, b``."""
    x, y, n, b = (params[:, i] for i in range(4))
    s = np.full_like(x, sigma)
    ex, dex = _edge_terms(xs, x[:, None], s[:, None])
    ey, dey = _edge_terms(ys, y[:, None], s[:, None])
    psf = ey[:, :, None] * ex[:, None, :]
    mu = b[:, None, None] + n[:, None, None] * psf
    jac = np.stack([n[:, None, None] * ey[:, :, None] * dex[:, None, :],
                    n[:, None, None] * dey[:, :, None] * ex[:, None, :],
                    psf, np.ones_like(psf)], axis=1)
    return mu, jac


def fisher_information(params: np.ndarray, ys: np.ndarray, xs: np.ndarray, sigma: float,
                       excess: float = 1.0) -> np.ndarray:
    """Fisher information ``(S, 4, 4)`` of ``x, y, N, b`` under Poisson noise.

    ``excess`` (2 for EMCCD) divides the information: multiplication noise
    doubles the variance of every pixel.
    """
    mu, jac = _model(params, ys, xs, sigma)
    return np.einsum("sipq,sjpq->sij", jac, jac / mu[:, None]) / excess


def crlb(photons: float, background: float, sigma: float, *, window: int = 15,
         excess: float = 1.0, n_positions: int = 25, seed: int = 0) -> dict[str, float]:
    """Cramer-Rao lower bound of the pixelated Gaussian PSF with background (pixel units).

    Averaged over sub-pixel positions (uniform within the centre pixel), since
    the bound depends slightly on where the emitter sits in its pixel.

    Parameters
    ----------
    photons : float
        Photons of the emitter.
    background : float
        Background photons per pixel.
    sigma : float
        PSF standard deviation (pixels).
    window : int
        Pixels per side over which information is summed (large enough to hold the PSF).
    excess : float
        Noise excess factor (2 for EMCCD).
    n_positions : int
        Sub-pixel positions averaged.
    seed : int
        Seed of those positions.

    Returns
    -------
    dict
        ``x, y, photons, background`` standard deviations (``x, y`` in pixels)
        and ``xy``, the root-mean-square of the x and y bounds.
    """
    rng = np.random.default_rng(seed)
    centre = window // 2 + rng.uniform(0, 1, (n_positions, 2))
    params = np.stack([centre[:, 0], centre[:, 1], np.full(n_positions, photons),
                       np.full(n_positions, max(background, 1e-6))], 1)
    pix = np.broadcast_to(np.arange(window, dtype=np.float64), (n_positions, window))
    info = fisher_information(params, pix, pix, sigma, excess)
    var = np.mean(np.diagonal(np.linalg.inv(info), axis1=1, axis2=2), axis=0)
    sd = np.sqrt(var)
    return {"x": float(sd[0]), "y": float(sd[1]), "photons": float(sd[2]),
            "background": float(sd[3]), "xy": float(np.sqrt((var[0] + var[1]) / 2))}


def find_spots(frames: np.ndarray, sigma: float, threshold: float = 4.0,
               min_distance: int = 1) -> np.ndarray:
    """Local maxima ``(N, 3)`` as ``frame, y, x`` pixel indices in a ``(T, Y, X)`` movie.

    The movie (photons) is band-pass filtered per frame: Gaussian of the PSF
    width minus a local mean over ``6 sigma``; a maximum must exceed
    ``threshold`` times the robust (MAD) noise level of the filtered frame.
    """
    frames = np.asarray(frames, np.float32)
    smooth = ndimage.gaussian_filter(frames, (0, sigma, sigma))
    local = ndimage.uniform_filter(frames, (1, int(6 * sigma) | 1, int(6 * sigma) | 1))
    band = smooth - local
    med = np.median(band, axis=(1, 2), keepdims=True)
    noise = 1.4826 * np.median(np.abs(band - med), axis=(1, 2), keepdims=True)
    size = 2 * min_distance + 1
    peaks = (band == ndimage.maximum_filter(band, (1, size, size))) & (
        band > med + threshold * np.maximum(noise, 1e-6))
    return np.argwhere(peaks)


def fit_spots(frames: np.ndarray, spots: np.ndarray, sigma: float, *, half: int = 3,
              iterations: int = 12) -> dict[str, np.ndarray]:
    """Poisson maximum-likelihood fit of an integrated Gaussian + background per spot.

    Parameters
    ----------
    frames : numpy.ndarray
        Movie ``(T, Y, X)`` in photons.
    spots : numpy.ndarray
        ``(N, 3)`` ``frame, y, x`` pixel indices of the spots.
    sigma : float
        PSF standard deviation (pixels), fixed in the fit.
    half : int
        Half width of the fit window (``2 half + 1`` pixels per side).
    iterations : int
        Fisher-scoring iterations.

    Returns
    -------
    dict
        ``x, y`` (pixel coordinates, corner origin: pixel centres at ``i + 0.5``),
        ``photons``, ``background``, their CRLB standard deviations ``sd_x, sd_y,
        sd_photons`` and ``ok`` (converged inside the window).
    """
    frames = np.asarray(frames, np.float32)
    _, h, w = frames.shape
    spots = np.asarray(spots, np.int64).reshape(-1, 3)
    size = 2 * half + 1
    padded = np.pad(frames, ((0, 0), (half, half), (half, half)), mode="edge")
    off = np.arange(size)
    rows = spots[:, 1][:, None] + off
    cols = spots[:, 2][:, None] + off
    data = padded[spots[:, 0][:, None, None], rows[:, :, None], cols[:, None, :]].astype(
        np.float64)
    data = np.maximum(data, 0)
    # Window pixels outside the frame carry no information: weight 0 in the likelihood.
    weight = (((rows >= half) & (rows < h + half))[:, :, None]
              & ((cols >= half) & (cols < w + half))[:, None, :]).astype(np.float64)
    ys = (rows - half).astype(np.float64)
    xs = (cols - half).astype(np.float64)
    bg = np.maximum(np.percentile(data.reshape(len(data), -1), 20, axis=1), 1e-3)
    n0 = np.maximum((weight * (data - bg[:, None, None])).sum(axis=(1, 2)), 1.0)
    params = np.stack([spots[:, 2] + 0.5, spots[:, 1] + 0.5, n0, bg], 1)
    damping = np.full(len(params), 1e-3)
    for _ in range(iterations):
        mu, jac = _model(params, ys, xs, sigma)
        grad = np.einsum("sipq,spq->si", jac, weight * (data / mu - 1))
        info = np.einsum("sipq,sjpq->sij", jac, jac * (weight / mu)[:, None])
        lhs = info + damping[:, None, None] * np.eye(4) * np.diagonal(
            info, axis1=1, axis2=2)[:, :, None]
        step = np.linalg.solve(lhs + 1e-9 * np.eye(4), grad[:, :, None])[:, :, 0]
        # Keep each step bounded (at most a pixel) so no spot jumps away.
        step[:, :2] = np.clip(step[:, :2], -1, 1)
        params = params + step
        params[:, 2] = np.maximum(params[:, 2], 1.0)
        params[:, 3] = np.maximum(params[:, 3], 1e-3)
    mu, jac = _model(params, ys, xs, sigma)
    info = np.einsum("sipq,sjpq->sij", jac, jac * (weight / mu)[:, None])
    cov = np.linalg.pinv(info)
    sd = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0))
    inside = ((np.abs(params[:, 0] - (spots[:, 2] + 0.5)) < half)
              & (np.abs(params[:, 1] - (spots[:, 1] + 0.5)) < half))
    return {"x": params[:, 0], "y": params[:, 1], "photons": params[:, 2],
            "background": params[:, 3], "sd_x": sd[:, 0], "sd_y": sd[:, 1],
            "sd_photons": sd[:, 2], "ok": inside & np.isfinite(params).all(1)}


def localize_classical(frames: np.ndarray, *, sigma: float, pixel_size: float,
                       threshold: float = 4.0, half: int = 3, first_frame: int = 0,
                       chunk: int = 256) -> np.ndarray:
    """Detect and fit every spot of a movie: the classical localization table.

    Parameters
    ----------
    frames : numpy.ndarray
        Movie ``(T, Y, X)`` in photons (camera offset and gain removed).
    sigma : float
        PSF standard deviation (pixels).
    pixel_size : float
        Pixel size in nm (output coordinates are nm).
    threshold : float
        Detection threshold in units of the filtered image's noise.
    half : int
        Fit window half width (pixels).
    first_frame : int
        Frame number of ``frames[0]``.
    chunk : int
        Frames processed at once (bounds memory).

    Returns
    -------
    numpy.ndarray
        Localization table (``microsight.io.localizations.LOC_DTYPE``).
    """
    frames = np.asarray(frames, np.float32)
    if frames.ndim == 2:
        frames = frames[None]
    tables = []
    for lo in range(0, len(frames), chunk):
        part = frames[lo:lo + chunk]
        spots = find_spots(part, sigma, threshold)
        if len(spots) == 0:
            continue
        fit = fit_spots(part, spots, sigma, half=half)
        ok = fit["ok"]
        tables.append(make_table(
            frame=spots[ok, 0] + lo + first_frame, x=fit["x"][ok] * pixel_size,
            y=fit["y"][ok] * pixel_size, photons=fit["photons"][ok],
            background=fit["background"][ok], sigma_x=fit["sd_x"][ok] * pixel_size,
            sigma_y=fit["sd_y"][ok] * pixel_size, sigma_photons=fit["sd_photons"][ok],
            score=np.ones(int(ok.sum()))))
    return np.concatenate(tables) if tables else make_table(0)
