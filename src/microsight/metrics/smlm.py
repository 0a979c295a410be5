"""SMLM metrics as the localization challenges define them (Sage et al. 2015, 2019).

Localizations are matched to the ground truth frame by frame, one-to-one
(Hungarian, ``metrics.detection.match_points``) within a lateral tolerance
(and optionally an axial one). From the matches: recall, precision,
Jaccard index ``TP / (TP + FP + FN)``, lateral and axial RMSE of the
matched pairs, and the 2019 challenge's efficiency

    E = 100 - sqrt((100 - JI[%])^2 + alpha^2 RMSE^2)

with ``alpha = 1 nm^-1`` (lateral) and ``0.5 nm^-1`` (axial). For
reconstructions: normalized MSE after a least-squares gain and the Fourier
ring correlation resolution (``metrics.resolution``).
"""

from __future__ import annotations

import numpy as np

from microsight.metrics.detection import match_points
from microsight.metrics.resolution import frc_resolution

ALPHA_LATERAL = 1.0
ALPHA_AXIAL = 0.5


def match_localizations(pred: np.ndarray, truth: np.ndarray, tolerance: float = 250.0, *,
                        axial_tolerance: float | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Match localizations to ground truth frame by frame within ``tolerance`` nm.

    Parameters
    ----------
    pred, truth : numpy.ndarray
        Localization tables (``io.localizations.LOC_DTYPE``).
    tolerance : float
        Largest lateral distance of a match (nm).
    axial_tolerance : float, optional
        Largest axial distance (nm); pairs farther apart in z do not match.

    Returns
    -------
    pred_idx, true_idx : numpy.ndarray
        Row indices into ``pred`` and ``truth`` of the matched pairs.
    """
    pred_rows = {f: np.flatnonzero(pred["frame"] == f) for f in np.unique(pred["frame"])}
    pi, ti = [], []
    for f, t_rows in ((f, np.flatnonzero(truth["frame"] == f)) for f in np.unique(truth["frame"])):
        p_rows = pred_rows.get(f)
        if p_rows is None or len(p_rows) == 0:
            continue
        p, t = pred[p_rows], truth[t_rows]
        if axial_tolerance is None:
            pc = np.stack([p["x"], p["y"]], 1)
            tc = np.stack([t["x"], t["y"]], 1)
            i, j = match_points(pc, tc, tolerance)
        else:
            # Scale z so that a sphere of radius `tolerance` bounds both tolerances, then
            # drop pairs outside either one.
            k = tolerance / axial_tolerance
            pc = np.stack([p["x"], p["y"], k * p["z"]], 1)
            tc = np.stack([t["x"], t["y"], k * t["z"]], 1)
            i, j = match_points(pc, tc, tolerance * np.sqrt(2))
            ok = ((np.hypot(p["x"][i] - t["x"][j], p["y"][i] - t["y"][j]) <= tolerance)
                  & (np.abs(p["z"][i] - t["z"][j]) <= axial_tolerance))
            i, j = i[ok], j[ok]
        pi.append(p_rows[i])
        ti.append(t_rows[j])
    if not pi:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(pi), np.concatenate(ti)


def efficiency(jaccard: float, rmse: float, alpha: float = ALPHA_LATERAL) -> float:
    """The 2019 challenge's efficiency ``100 - sqrt((100 - JI%)^2 + alpha^2 RMSE^2)``.

    ``jaccard`` is a fraction in [0, 1], ``rmse`` in nm.
    """
    if not np.isfinite(rmse):
        return float("nan")
    return float(100 - np.sqrt((100 - 100 * jaccard) ** 2 + (alpha * rmse) ** 2))


def localization_scores(pred: np.ndarray, truth: np.ndarray, tolerance: float = 250.0, *,
                        axial_tolerance: float | None = None) -> dict[str, float]:
    """Challenge metrics of a localization table against the ground truth.

    Parameters
    ----------
    pred, truth : numpy.ndarray
        Localization tables (nm).
    tolerance : float
        Lateral matching tolerance (nm).
    axial_tolerance : float, optional
        Axial matching tolerance (nm); also switches on the axial metrics.

    Returns
    -------
    dict
        ``recall, precision, jaccard`` (fractions), ``rmse_lateral`` and
        ``rmse_axial`` (nm; NaN without matches or without z),
        ``efficiency_lateral`` / ``efficiency_axial`` and the counts
        ``tp, fp, fn``. Empty-set conventions as in ``metrics.detection``.
    """
    pi, ti = match_localizations(pred, truth, tolerance, axial_tolerance=axial_tolerance)
    tp, n_pred, n_true = len(pi), len(pred), len(truth)
    recall = tp / n_true if n_true else 1.0
    precision = tp / n_pred if n_pred else 1.0
    union = n_pred + n_true - tp
    jaccard = tp / union if union else 1.0
    nan = float("nan")
    if tp:
        d2 = (pred["x"][pi] - truth["x"][ti]) ** 2 + (pred["y"][pi] - truth["y"][ti]) ** 2
        rmse_lat = float(np.sqrt(np.mean(d2)))
        dz = pred["z"][pi] - truth["z"][ti]
        rmse_ax = float(np.sqrt(np.mean(dz ** 2))) if axial_tolerance is not None else nan
    else:
        rmse_lat = rmse_ax = nan
    return {"recall": float(recall), "precision": float(precision), "jaccard": float(jaccard),
            "rmse_lateral": rmse_lat, "rmse_axial": rmse_ax,
            "efficiency_lateral": efficiency(jaccard, rmse_lat, ALPHA_LATERAL),
            "efficiency_axial": efficiency(jaccard, rmse_ax, ALPHA_AXIAL),
            "tp": int(tp), "fp": int(n_pred - tp), "fn": int(n_true - tp)}


def nmse(reconstruction: np.ndarray, truth: np.ndarray) -> float:
    """Normalized MSE ``||g r - t||^2 / ||t||^2`` with the least-squares gain ``g``.

    Both images are first scaled to unit sum, as a reconstruction's intensity
    scale is arbitrary; the gain then removes any remaining scale mismatch.
    """
    r = np.asarray(reconstruction, np.float64).ravel()
    t = np.asarray(truth, np.float64).ravel()
    denom = float(np.dot(t, t))
    if denom == 0:
        return float("nan")
    rr = float(np.dot(r, r))
    gain = float(np.dot(r, t)) / rr if rr else 0.0
    return float(np.sum((gain * r - t) ** 2) / denom)


def reconstruction_scores(reconstruction: np.ndarray, truth: np.ndarray, *,
                          pixel_size: float) -> dict[str, float]:
    """NMSE and FRC resolution (nm, 1/7 threshold) of a reconstruction against the truth.

    Parameters
    ----------
    reconstruction, truth : numpy.ndarray
        Images on the same grid (e.g. a super-resolved sum and the rendered
        ground truth).
    pixel_size : float
        Pixel size of that grid (nm).

    Returns
    -------
    dict
        ``nmse`` and ``frc_resolution`` (nm; infinite when the curve never
        crosses the threshold).
    """
    return {"nmse": nmse(reconstruction, truth),
            "frc_resolution": float(frc_resolution(reconstruction, truth,
                                                   pixel_size=pixel_size))}
