"""Percentile normalization whose parameters travel with the model.

Training computes per-channel percentiles, the bundle stores them, and
prediction re-applies them, so a model never sees intensities on a scale it
was not trained on and outputs are mapped back to a physical scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Percentiles over more pixels than this are estimated on a regular subsample:
# the estimate is stable to well below 1% and big images stay cheap.
MAX_PIXELS = 4_000_000


@dataclass
class Normalizer:
    """Per-channel affine map ``(x - low) / (high - low)``."""

    low: list[float]
    high: list[float]

    def _params(self, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        shape = (-1,) + (1,) * (ndim - 1)
        low = np.asarray(self.low, np.float32).reshape(shape)
        scale = np.asarray(self.high, np.float32).reshape(shape) - low
        return low, np.where(scale == 0, np.float32(1), scale)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Normalize a channels-first array ``(C, ...)`` to float32."""
        low, scale = self._params(x.ndim)
        return ((np.asarray(x, np.float32) - low) / scale).astype(np.float32, copy=False)

    def invert(self, y: np.ndarray) -> np.ndarray:
        """Map a normalized channels-first array back to the original scale."""
        low, scale = self._params(y.ndim)
        return (np.asarray(y, np.float32) * scale + low).astype(np.float32, copy=False)

    def invert_spread(self, y: np.ndarray) -> np.ndarray:
        """Map a normalized spread (e.g. an uncertainty scale) back: no offset, only gain."""
        _, scale = self._params(y.ndim)
        return (np.asarray(y, np.float32) * scale).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, list[float]]:
        """Plain-JSON form for the model bundle."""
        return {"low": [float(v) for v in self.low], "high": [float(v) for v in self.high]}

    @classmethod
    def from_dict(cls, data: dict[str, Sequence[float]]) -> Normalizer:
        """Inverse of :meth:`to_dict`."""
        return cls(low=[float(v) for v in data["low"]], high=[float(v) for v in data["high"]])


def subsample(x: np.ndarray, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Return a strided view of ``x`` (channels first) with at most ``max_pixels`` per channel.

    Works on lazy arrays (zarr) too: only the strided pixels are read.
    """
    spatial = x.shape[1:]
    n = int(np.prod(spatial))
    step = max(1, int(np.ceil((n / max_pixels) ** (1 / len(spatial)))))
    return np.asarray(x[(slice(None),) + (slice(None, None, step),) * len(spatial)])


def fit_normalizer(
    images: Sequence[np.ndarray], *, p_low: float = 1.0, p_high: float = 99.8
) -> Normalizer:
    """Per-channel percentiles pooled over channels-first images.

    Parameters
    ----------
    images : sequence of array
        Arrays of shape ``(C, ...)`` with the same ``C``; lazy arrays are
        subsampled, never loaded whole.
    p_low, p_high : float
        Percentiles mapped to 0 and 1.

    Returns
    -------
    Normalizer
    """
    if not images:
        raise ValueError("no images to compute normalization from")
    budget = max(MAX_PIXELS // len(images), 10_000)
    samples = [subsample(im, budget).reshape(im.shape[0], -1) for im in images]
    pooled = np.concatenate(samples, axis=1).astype(np.float32)
    low = np.percentile(pooled, p_low, axis=1)
    high = np.percentile(pooled, p_high, axis=1)
    return Normalizer(low=[float(v) for v in low], high=[float(v) for v in high])
