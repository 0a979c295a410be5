"""Maximum-likelihood polish of the learned localizer's 2D detections.

The network finds emitters well in crowded frames; where the PSFs of its
detections do not overlap, the classical Poisson MLE fit of the PSF is the
more precise estimator (it reaches the Cramer-Rao bound). The polish:

1. drops the weaker of two detections closer than ``DUPLICATE`` pixels (one
   emitter found twice: no pair that close is resolvable);
2. fits every detection alone within ``ISOLATION`` pixels with one emitter,
   and tests whether that spot holds two unresolved emitters (a two-emitter
   fit whose likelihood is better by more than ``SPLIT_LLR``, corrected for the
   camera's excess noise); a split adds a localization;
3. fits two detections near each other only (a pair) jointly, since each
   biases the other's single fit towards their midpoint;
4. leaves larger groups with the network's estimates.

A fit replaces the network's estimate only when it converged near it; its
standard deviations are the fit's Cramer-Rao bounds.
"""

from __future__ import annotations

import numpy as np

from microsight.data.smlm_fit import fit_pairs, fit_spots, split_spots
from microsight.methods.localize.config import LocalizeConfig

#: Half width of the fit window; a detection is isolated when no other detection of its
#: frame lies within ``ISOLATION`` pixels: a neighbour that far sits at least 5 pixels
#: (about 4 PSF widths) outside the fit window.
FIT_HALF = 3
ISOLATION = 2 * FIT_HALF + 2
#: Detections of one frame closer than this (pixels) are one emitter found twice.
DUPLICATE = 0.5
#: Largest move (pixels) of a pair fit from the network's estimates.
PAIR_SHIFT = 2.0
#: Twice the log-likelihood gain (over the noise excess factor) of two emitters over
#: one that splits a spot: chi-square with 3 degrees of freedom has p ~ 1e-6 there.
SPLIT_LLR = 30.0
#: A split needs both emitters at least this far apart (pixels) ...
SPLIT_DISTANCE = 1.0
#: ... and each with at least this share of the photons.
SPLIT_SHARE = 0.15

_FIT_COLUMNS = (("x", "x", True), ("y", "y", True), ("photons", "photons", False),
                ("sigma_x", "sd_x", True), ("sigma_y", "sd_y", True),
                ("sigma_photons", "sd_photons", False))


def neighbour_groups(frame: np.ndarray, y: np.ndarray, x: np.ndarray, radius: float
                     ) -> np.ndarray:
    """Group label of every detection: linked when within ``radius`` in the same frame."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n = len(frame)
    if n < 2:
        return np.arange(n)
    # Frames far apart along a third axis never pair up.
    points = np.stack([frame * (4.0 * radius + 1e3), y, x], 1).astype(np.float64)
    pairs = cKDTree(points).query_pairs(radius, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def isolated(frame: np.ndarray, y: np.ndarray, x: np.ndarray, radius: float) -> np.ndarray:
    """Mask of the detections with no other detection of the same frame within ``radius``."""
    groups = neighbour_groups(frame, y, x, radius)
    return np.bincount(groups)[groups] == 1 if len(groups) else np.ones(0, bool)


def duplicates(cols: dict[str, np.ndarray], frame: np.ndarray, pixel_size: float
               ) -> np.ndarray:
    """Mask of detections to drop: the weaker of two closer than ``DUPLICATE`` pixels.

    Two neighbouring pixels above the single-emitter threshold can both point at
    one emitter. Without a ``score`` column the first of the two is kept.
    """
    from scipy.spatial import cKDTree

    drop = np.zeros(len(frame), bool)
    if len(frame) < 2:
        return drop
    points = np.stack([frame * 1e6, cols["y"] / pixel_size, cols["x"] / pixel_size], 1)
    score = cols.get("score", np.zeros(len(frame)))
    for a, b in cKDTree(points.astype(np.float64)).query_pairs(DUPLICATE,
                                                                 output_type="ndarray"):
        drop[b if score[a] >= score[b] else a] = True
    return drop


def refine(cols: dict[str, np.ndarray], f: np.ndarray, i: np.ndarray, j: np.ndarray,
           photons: np.ndarray, m: LocalizeConfig) -> dict[str, np.ndarray]:
    """Polish a chunk's detections by MLE fits (see the module docstring).

    Parameters
    ----------
    cols : dict of numpy.ndarray
        Localization columns of the detections (nm, photons), updated in place.
    f, i, j : numpy.ndarray
        Frame (within ``photons``), row and column of each detection's pixel.
    photons : numpy.ndarray
        The chunk's frames ``(T, Y, X)`` in photons.
    m : LocalizeConfig
        The localizer's settings (PSF width, pixel size, camera).

    Returns
    -------
    dict of numpy.ndarray
        The columns, without duplicates and with one more row per split spot.
    """
    px, sigma = m.simulation.pixel_size, m.sigma_px
    keep = ~duplicates(cols, f, px)
    if not keep.all():
        cols = {c: v[keep] for c, v in cols.items()}
        f, i, j = f[keep], i[keep], j[keep]
    groups = neighbour_groups(f, i, j, ISOLATION)
    size = np.bincount(groups)[groups] if len(groups) else groups
    extra = []
    alone = np.flatnonzero(size == 1)
    if len(alone):
        spots = np.stack([f[alone], i[alone], j[alone]], 1)
        fit = fit_spots(photons, spots, sigma, half=FIT_HALF)
        keep = fit["ok"] & _near(fit, cols, alone, px, 1.0)
        two = split_spots(photons, spots, fit, sigma, half=FIT_HALF)
        split = keep & _splits(fit, two, m.simulation.camera.excess_factor)
        _write(cols, alone[keep & ~split], _rows(fit, keep & ~split), px)
        if split.any():
            first, second = _order(two, cols, alone, px)
            _write(cols, alone[split], _rows(two, split, first), px)
            extra.append(_new_rows(cols, alone[split], _rows(two, split, second), px))
    paired = np.flatnonzero(size == 2)
    if len(paired):
        paired = paired[np.argsort(groups[paired], kind="stable")].reshape(-1, 2)
        fit = fit_pairs(photons, np.stack([f[paired], i[paired], j[paired]], -1), sigma,
                        half=FIT_HALF)
        keep = fit["ok"] & (_separation(fit) > 2 * DUPLICATE)
        for e in range(2):
            keep &= _near(_rows(fit, slice(None), e), cols, paired[:, e], px, PAIR_SHIFT)
        for e in range(2):
            _write(cols, paired[keep, e], _rows(fit, keep, e), px)
    if not extra:
        return cols
    return {c: np.concatenate([v] + [x[c] for x in extra]) for c, v in cols.items()}


def _splits(single: dict, two: dict, excess: float) -> np.ndarray:
    """Spots that hold two emitters: likelihood gain, separation and photon share."""
    gain = 2 * (two["loglik"] - single["loglik"]) / excess
    share = two["photons"].min(1) / np.maximum(two["photons"].sum(1), 1e-9)
    return (two["ok"] & (gain > SPLIT_LLR) & (_separation(two) > SPLIT_DISTANCE)
            & (share > SPLIT_SHARE))


def _separation(fit: dict) -> np.ndarray:
    return np.hypot(fit["x"][:, 0] - fit["x"][:, 1], fit["y"][:, 0] - fit["y"][:, 1])


def _order(two: dict, cols: dict, idx: np.ndarray, px: float) -> tuple[np.ndarray, np.ndarray]:
    """Per split spot, which of the two emitters keeps the detection (the closer one)."""
    d = [np.hypot(two["x"][:, e] * px - cols["x"][idx], two["y"][:, e] * px - cols["y"][idx])
         for e in range(2)]
    first = (d[1] < d[0]).astype(int)
    return first, 1 - first


def _rows(fit: dict, keep: np.ndarray | slice, emitter: int | np.ndarray | None = None
          ) -> dict[str, np.ndarray]:
    """The kept rows of a fit; for two-emitter fits the given emitter of each."""
    out = {}
    for k, v in fit.items():
        v = v[keep]
        if v.ndim == 2:
            v = v[:, emitter] if np.isscalar(emitter) else v[np.arange(len(v)), emitter[keep]]
        out[k] = v
    return out


def _near(fit: dict, cols: dict, idx: np.ndarray, px: float, limit: float) -> np.ndarray:
    return ((np.abs(fit["x"] * px - cols["x"][idx]) < limit * px)
            & (np.abs(fit["y"] * px - cols["y"][idx]) < limit * px))


def _write(cols: dict, idx: np.ndarray, fit: dict, px: float) -> None:
    for column, key, spatial in _FIT_COLUMNS:
        cols[column][idx] = fit[key] * (px if spatial else 1.0)
    cols["background"][idx] = fit["background"]


def _new_rows(cols: dict, parents: np.ndarray, fit: dict, px: float) -> dict[str, np.ndarray]:
    """Localizations of second emitters: the parent's frame and score, the fit's values."""
    rows = {c: v[parents].copy() for c, v in cols.items()}
    _write(rows, np.arange(len(parents)), fit, px)
    return rows
