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


def _psf_terms(x: np.ndarray, y: np.ndarray, ys: np.ndarray, xs: np.ndarray, sigma: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrated unit PSF ``(S, W, W)`` at ``x, y`` and its derivatives in ``x`` and ``y``."""
    s = np.full_like(x, sigma)
    ex, dex = _edge_terms(xs, x[:, None], s[:, None])
    ey, dey = _edge_terms(ys, y[:, None], s[:, None])
    return (ey[:, :, None] * ex[:, None, :], ey[:, :, None] * dex[:, None, :],
            dey[:, :, None] * ex[:, None, :])


def _model(params: np.ndarray, ys: np.ndarray, xs: np.ndarray, sigma: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """Expected photons ``(S, W, W)`` and Jacobian ``(S, P, W, W)`` of K emitters.

    ``params`` holds ``x, y, N`` of each emitter, then the background:
    ``P = 3 K + 1`` columns (one emitter: ``x, y, N, b``).
    """
    mu = np.broadcast_to(params[:, -1, None, None], (len(params), ys.shape[1], xs.shape[1]))
    mu, jac = mu.copy(), []
    for e in range(0, params.shape[1] - 1, 3):
        x, y, n = params[:, e], params[:, e + 1], params[:, e + 2]
        psf, dx, dy = _psf_terms(x, y, ys, xs, sigma)
        mu += n[:, None, None] * psf
        jac += [n[:, None, None] * dx, n[:, None, None] * dy, psf]
    jac.append(np.ones_like(mu))
    return mu, np.stack(jac, axis=1)


def _fisher_scoring(params: np.ndarray, data: np.ndarray, weight: np.ndarray,
                    ys: np.ndarray, xs: np.ndarray, sigma: float, iterations: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Poisson MLE of :func:`_model` by damped Fisher scoring; parameters and their CRLB sd."""
    n_par = params.shape[1]
    positions = np.zeros(n_par, bool)
    positions[[c for e in range(0, n_par - 1, 3) for c in (e, e + 1)]] = True
    eye = np.eye(n_par)
    for _ in range(iterations):
        mu, jac = _model(params, ys, xs, sigma)
        grad = np.einsum("sipq,spq->si", jac, weight * (data / mu - 1))
        info = np.einsum("sipq,sjpq->sij", jac, jac * (weight / mu)[:, None])
        lhs = info + 1e-3 * eye * np.diagonal(info, axis1=1, axis2=2)[:, :, None]
        step = np.linalg.solve(lhs + 1e-9 * eye, grad[:, :, None])[:, :, 0]
        # Keep each step bounded (at most a pixel) so no emitter jumps away.
        step[:, positions] = np.clip(step[:, positions], -1, 1)
        params = params + step
        params[:, ~positions] = np.maximum(params[:, ~positions], 1e-3)
    mu, jac = _model(params, ys, xs, sigma)
    info = np.einsum("sipq,sjpq->sij", jac, jac * (weight / mu)[:, None])
    sd = np.sqrt(np.maximum(np.diagonal(np.linalg.pinv(info), axis1=1, axis2=2), 0))
    return params, sd


def _loglik(params: np.ndarray, data: np.ndarray, weight: np.ndarray, ys: np.ndarray,
            xs: np.ndarray, sigma: float) -> np.ndarray:
    """Poisson log-likelihood per window, without the ``log(data!)`` term (same for all models)."""
    mu, _ = _model(params, ys, xs, sigma)
    return (weight * (data * np.log(mu) - mu)).sum(axis=(1, 2))


def _windows(frames: np.ndarray, corners: np.ndarray, size: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Photons, in-frame weights and pixel coordinates of ``size``-pixel windows.

    ``corners`` ``(S, 3)`` are ``frame, y, x`` of each window's first pixel
    (may lie outside the frame: those pixels get weight 0).
    """
    _, h, w = frames.shape
    pad = size
    padded = np.pad(frames, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    off = np.arange(size)
    rows = corners[:, 1][:, None] + off
    cols = corners[:, 2][:, None] + off
    data = padded[corners[:, 0][:, None, None], rows[:, :, None] + pad,
                  cols[:, None, :] + pad].astype(np.float64)
    # Window pixels outside the frame carry no information: weight 0 in the likelihood.
    weight = (((rows >= 0) & (rows < h))[:, :, None]
              & ((cols >= 0) & (cols < w))[:, None, :]).astype(np.float64)
    return np.maximum(data, 0), weight, rows.astype(np.float64), cols.astype(np.float64)


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
        sd_photons``, ``ok`` (converged inside the window) and ``loglik`` (Poisson
        log-likelihood of the fit, up to a term that depends on the data only).
    """
    frames = np.asarray(frames, np.float32)
    spots = np.asarray(spots, np.int64).reshape(-1, 3)
    corners = spots - np.array([0, half, half])
    data, weight, ys, xs = _windows(frames, corners, 2 * half + 1)
    bg = np.maximum(np.percentile(data.reshape(len(data), -1), 20, axis=1), 1e-3)
    n0 = np.maximum((weight * (data - bg[:, None, None])).sum(axis=(1, 2)), 1.0)
    params = np.stack([spots[:, 2] + 0.5, spots[:, 1] + 0.5, n0, bg], 1)
    params, sd = _fisher_scoring(params, data, weight, ys, xs, sigma, iterations)
    inside = ((np.abs(params[:, 0] - (spots[:, 2] + 0.5)) < half)
              & (np.abs(params[:, 1] - (spots[:, 1] + 0.5)) < half))
    return {"x": params[:, 0], "y": params[:, 1], "photons": params[:, 2],
            "background": params[:, 3], "sd_x": sd[:, 0], "sd_y": sd[:, 1],
            "sd_photons": sd[:, 2], "ok": inside & np.isfinite(params).all(1),
            "loglik": _loglik(params, data, weight, ys, xs, sigma)}


def fit_pairs(frames: np.ndarray, pairs: np.ndarray, sigma: float, *, half: int = 3,
              iterations: int = 20) -> dict[str, np.ndarray]:
    """Joint Poisson MLE of two integrated Gaussians + one background per pair of spots.

    Two emitters closer than a few PSF widths bias each other's single fits
    towards their midpoint; fitting both at once in one window removes that
    bias.

    Parameters
    ----------
    frames : numpy.ndarray
        Movie ``(T, Y, X)`` in photons.
    pairs : numpy.ndarray
        ``(N, 2, 3)``: ``frame, y, x`` pixel indices of the two spots of each
        pair (same frame).
    sigma : float
        PSF standard deviation (pixels), fixed in the fit.
    half : int
        Margin (pixels) of the window around the two spots.
    iterations : int
        Fisher-scoring iterations.

    Returns
    -------
    dict
        Per pair and emitter (arrays ``(N, 2)``): ``x, y`` (pixel coordinates,
        corner origin), ``photons``, ``sd_x, sd_y, sd_photons``; ``background``
        ``(N,)``, ``ok`` ``(N,)`` (both emitters converged inside the window) and
        ``loglik`` ``(N,)`` (as in :func:`fit_spots`).
    """
    frames = np.asarray(frames, np.float32)
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2, 3)
    lo = pairs.min(axis=1)
    extent = (pairs.max(axis=1) - lo)[:, 1:]
    # One window size for all pairs (vectorized), centred on each pair.
    size = int(extent.max(initial=0)) + 2 * half + 1
    corners = np.concatenate([lo[:, :1], lo[:, 1:] - (size - 1 - extent) // 2], 1)
    data, weight, ys, xs = _windows(frames, corners, size)
    bg = np.maximum(np.percentile(data.reshape(len(data), -1), 20, axis=1), 1e-3)
    n0 = np.maximum((weight * (data - bg[:, None, None])).sum(axis=(1, 2)) / 2, 1.0)
    params = np.stack([pairs[:, 0, 2] + 0.5, pairs[:, 0, 1] + 0.5, n0,
                       pairs[:, 1, 2] + 0.5, pairs[:, 1, 1] + 0.5, n0, bg], 1)
    return _pair_fit(params, data, weight, ys, xs, sigma, iterations, half)


def split_spots(frames: np.ndarray, spots: np.ndarray, single: dict[str, np.ndarray],
                sigma: float, *, half: int = 3, iterations: int = 20
                ) -> dict[str, np.ndarray]:
    """Fit two emitters in each single spot's window (an unresolved pair?).

    The first emitter starts at the single fit, the second at the largest
    residual of that fit; comparing ``loglik`` with the single fit's tells
    whether the spot holds two emitters.

    Parameters
    ----------
    frames : numpy.ndarray
        Movie ``(T, Y, X)`` in photons.
    spots : numpy.ndarray
        ``(N, 3)`` ``frame, y, x`` pixel indices, as given to :func:`fit_spots`.
    single : dict
        :func:`fit_spots`' result for those spots.
    sigma : float
        PSF standard deviation (pixels), fixed in the fit.
    half : int
        Half width of the window (as in :func:`fit_spots`).
    iterations : int
        Fisher-scoring iterations.

    Returns
    -------
    dict
        As :func:`fit_pairs`.
    """
    frames = np.asarray(frames, np.float32)
    spots = np.asarray(spots, np.int64).reshape(-1, 3)
    data, weight, ys, xs = _windows(frames, spots - np.array([0, half, half]), 2 * half + 1)
    one = np.stack([single[k] for k in ("x", "y", "photons", "background")], 1)
    mu, _ = _model(one, ys, xs, sigma)
    residual = ndimage.gaussian_filter(weight * (data - mu), (0, sigma, sigma))
    peak = residual.reshape(len(data), -1).argmax(1)
    py, pxl = np.unravel_index(peak, residual.shape[1:])
    second_x = xs[np.arange(len(xs)), pxl] + 0.5
    second_y = ys[np.arange(len(ys)), py] + 0.5
    n = one[:, 2] / 2
    params = np.stack([one[:, 0], one[:, 1], n, second_x, second_y, n, one[:, 3]], 1)
    return _pair_fit(params, data, weight, ys, xs, sigma, iterations, half)


def _pair_fit(params: np.ndarray, data: np.ndarray, weight: np.ndarray, ys: np.ndarray,
              xs: np.ndarray, sigma: float, iterations: int, half: int
              ) -> dict[str, np.ndarray]:
    start = params[:, [0, 1, 3, 4]].copy()
    params, sd = _fisher_scoring(params, data, weight, ys, xs, sigma, iterations)
    x, y, n = params[:, [0, 3]], params[:, [1, 4]], params[:, [2, 5]]
    inside = ((np.abs(x - start[:, [0, 2]]) < half)
              & (np.abs(y - start[:, [1, 3]]) < half)).all(1)
    return {"x": x, "y": y, "photons": n, "background": params[:, 6],
            "sd_x": sd[:, [0, 3]], "sd_y": sd[:, [1, 4]], "sd_photons": sd[:, [2, 5]],
            "ok": inside & np.isfinite(params).all(1),
            "loglik": _loglik(params, data, weight, ys, xs, sigma)}


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
