"""The classical baseline of label-free prediction: per-pixel linear regression.

Each target is modelled as a linear function of the input channels and of
Gaussian-smoothed copies of them (so that the baseline sees a little
neighbourhood, as the network does). Fitted by least squares on a sample of
training pixels, in normalized units, and stored as plain JSON in the
bundle's data summary, so evaluation can compare against it without the
training data.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SIGMAS = (2.0, 6.0)
MAX_PIXELS = 200_000
RIDGE = 1e-3


def features(item: np.ndarray, sigmas: tuple[float, ...] = SIGMAS) -> np.ndarray:
    """Per-pixel features ``(F, ...)``: channels, their smoothed copies, and a constant."""
    blocks = [item]
    for s in sigmas:
        blocks.append(ndimage.gaussian_filter(item, (0,) + (s,) * (item.ndim - 1)))
    blocks.append(np.ones((1, *item.shape[1:]), item.dtype))
    return np.concatenate(blocks, axis=0)


def fit_linear(inputs: list[np.ndarray], targets: list[np.ndarray], *,
               sigmas: tuple[float, ...] = SIGMAS, seed: int = 0) -> dict:
    """Least-squares (lightly ridge-regularized) fit of every target on the features.

    Parameters
    ----------
    inputs, targets : list of numpy.ndarray
        Normalized channels-first training items.

    Returns
    -------
    dict
        ``{"sigmas": [...], "coef": [[...] per target]}`` (plain JSON).
    """
    rng = np.random.default_rng(seed)
    per_item = max(MAX_PIXELS // len(inputs), 1000)
    xs, ys = [], []
    for x, y in zip(inputs, targets, strict=True):
        f = features(x, sigmas).reshape(-1, int(np.prod(x.shape[1:])))
        t = y.reshape(y.shape[0], -1)
        pick = rng.choice(f.shape[1], min(per_item, f.shape[1]), replace=False)
        xs.append(f[:, pick])
        ys.append(t[:, pick])
    a = np.concatenate(xs, 1).astype(np.float64)
    b = np.concatenate(ys, 1).astype(np.float64)
    gram = a @ a.T + RIDGE * len(a[0]) * np.eye(len(a))
    coef = np.linalg.solve(gram, a @ b.T).T
    # Six significant digits: ample in normalized units, and the bundle's JSON stays short.
    return {"sigmas": list(sigmas),
            "coef": [[float(f"{c:.6g}") for c in row] for row in coef]}


def apply_linear(params: dict, item: np.ndarray) -> np.ndarray:
    """Predict normalized targets ``(C_out, ...)`` from a normalized input item."""
    f = features(np.asarray(item, np.float32), tuple(params["sigmas"]))
    coef = np.asarray(params["coef"], np.float32)
    return np.tensordot(coef, f, axes=(1, 0)).astype(np.float32)
