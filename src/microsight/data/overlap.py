"""Checks of a training/validation split: shared patches and a too-small validation set.

A validation score only means something if the validation data are new to
the network. Two common ways they are not:

* the same image (or a crop of it) sits in both folders: **exact**
  duplicate patches, found by hashing the pixels;
* two acquisitions of the same field of view (another noise realization, a
  re-saved or rescaled copy) are split across them: **near** duplicates,
  found by correlating coarse (block-averaged) versions of the patches,
  which averages the noise away.

Both compare non-overlapping grid patches, so a copy shifted by a few
pixels is still found as a near duplicate (the coarse blocks barely
change), but not a copy shifted by half a patch. Flat patches (background)
are skipped: they match everywhere and mean nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from microsight.data.split import SPLIT_FIX

__all__ = ["OverlapResult", "check_split", "find_overlap"]

NEAR_THRESHOLD = 0.98
# Smaller patches of smooth structure (one blob edge) correlate by chance.
MIN_CHECK_PATCH = 32
COARSE = 8  # coarse blocks per patch side
MAX_PATCHES = 4000
# Fewer validation pixels than this many training patches: too small.
MIN_VAL_PATCHES = 8


@dataclass
class OverlapResult:
    """Duplicate patches between training and validation items.

    Attributes
    ----------
    val_patches, train_patches : int
        Non-flat grid patches compared (after subsampling).
    exact : list of tuple
        ``(val_item, val_patch, train_item, train_patch)`` of identical patches.
    near : list of tuple
        The same for near duplicates (coarse correlation >= threshold),
        exact ones excluded, with the correlation last.
    """

    val_patches: int = 0
    train_patches: int = 0
    exact: list[tuple[int, int, int, int]] = field(default_factory=list)
    near: list[tuple[int, int, int, int, float]] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """Whether any duplicate was found."""
        return bool(self.exact or self.near)

    def summary(self) -> dict[str, int]:
        """Counts for ``qc.json``."""
        return {
            "val_patches": self.val_patches,
            "train_patches": self.train_patches,
            "exact_duplicates": len(self.exact),
            "near_duplicates": len(self.near),
        }


def _patches(item: np.ndarray, size: tuple[int, ...]) -> list[tuple[int, np.ndarray]]:
    """Non-overlapping grid patches of a channels-first item (index, patch)."""
    spatial = item.shape[-len(size) :]
    counts = [s // p for s, p in zip(spatial, size, strict=True)]
    out = []
    for k, corner in enumerate(np.ndindex(*counts)):
        key = (...,) + tuple(slice(c * p, (c + 1) * p) for c, p in zip(corner, size, strict=True))
        out.append((k, item[key]))
    return out


def _coarse(patch: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Block means on a COARSE^ndim grid (channels kept), flattened."""
    blocks = [max(1, p // COARSE) for p in size]
    shape = [p // b for p, b in zip(size, blocks, strict=True)]
    lead = patch.shape[: patch.ndim - len(size)]
    crop = patch[(...,) + tuple(slice(0, s * b) for s, b in zip(shape, blocks, strict=True))]
    split = [*lead] + [d for s, b in zip(shape, blocks, strict=True) for d in (s, b)]
    axes = tuple(len(lead) + 2 * i + 1 for i in range(len(size)))
    return crop.reshape(split).mean(axis=axes).ravel()


def _collect(
    items: Sequence[np.ndarray], size: tuple[int, ...], limit: int, rng: np.random.Generator
) -> tuple[list[tuple[int, int]], list[bytes], np.ndarray]:
    """Ids, pixel hashes and unit-norm centred coarse vectors of the non-flat patches."""
    ids, hashes, feats = [], [], []
    for i, item in enumerate(items):
        for k, patch in _patches(np.asarray(item), size):
            coarse = _coarse(patch.astype(np.float64), size)
            centred = coarse - coarse.mean()
            norm = float(np.linalg.norm(centred))
            if norm <= 1e-9 * (1.0 + float(np.abs(coarse).max())) or np.ptp(patch) == 0:
                continue
            ids.append((i, k))
            data = np.ascontiguousarray(patch, dtype=np.float32).tobytes()
            hashes.append(hashlib.blake2b(data, digest_size=16).digest())
            feats.append(centred / norm)
    if len(ids) > limit:
        keep = np.sort(rng.choice(len(ids), limit, replace=False))
        ids = [ids[j] for j in keep]
        hashes = [hashes[j] for j in keep]
        feats = [feats[j] for j in keep]
    matrix = np.array(feats, dtype=np.float32) if feats else np.zeros((0, 1), np.float32)
    return ids, hashes, matrix


def find_overlap(
    train: Sequence[np.ndarray],
    val: Sequence[np.ndarray],
    *,
    patch_size: Sequence[int],
    threshold: float = NEAR_THRESHOLD,
    max_patches: int = MAX_PATCHES,
    seed: int = 0,
) -> OverlapResult:
    """Find validation patches that repeat (exactly or nearly) a training patch.

    Parameters
    ----------
    train, val : sequence of numpy.ndarray
        Items (channels-first or plain), spatial axes last.
    patch_size : sequence of int
        Patch size per spatial axis (e.g. the training patch size).
    threshold : float, default 0.98
        Pearson correlation of the block-averaged patches at or above which
        two patches count as near duplicates.
    max_patches : int, default 4000
        At most this many patches per side are compared (random subset).
    seed : int, default 0
        Seed of that subset.

    Returns
    -------
    OverlapResult
    """
    size = tuple(int(p) for p in patch_size)
    rng = np.random.default_rng(seed)
    t_ids, t_hash, t_feat = _collect(train, size, max_patches, rng)
    v_ids, v_hash, v_feat = _collect(val, size, max_patches, rng)
    result = OverlapResult(val_patches=len(v_ids), train_patches=len(t_ids))
    if not t_ids or not v_ids:
        return result
    by_hash: dict[bytes, int] = {}
    for j, h in enumerate(t_hash):
        by_hash.setdefault(h, j)
    exact_val = set()
    for j, h in enumerate(v_hash):
        if h in by_hash:
            t = by_hash[h]
            result.exact.append((*v_ids[j], *t_ids[t]))
            exact_val.add(j)
    # Chunks of validation patches bound the correlation matrix's memory.
    for start in range(0, len(v_ids), 512):
        corr = v_feat[start : start + 512] @ t_feat.T
        best = corr.argmax(axis=1)
        for off, t in enumerate(best):
            j = start + off
            c = float(corr[off, t])
            if c >= threshold and j not in exact_val:
                result.near.append((*v_ids[j], *t_ids[int(t)], c))
    return result


def check_split(
    train_inputs: Sequence[np.ndarray],
    val_inputs: Sequence[np.ndarray],
    *,
    patch_size: Sequence[int],
    train_targets: Sequence[np.ndarray] | None = None,
    val_targets: Sequence[np.ndarray] | None = None,
) -> tuple[list[str], dict[str, dict[str, int]]]:
    """Warnings about a training/validation split, and the overlap counts.

    Parameters
    ----------
    train_inputs, val_inputs : sequence of numpy.ndarray
        Channels-first items of both parts.
    patch_size : sequence of int
        Training patch size (duplicates are looked for in patches of at
        least 32 pixels per side).
    train_targets, val_targets : sequence of numpy.ndarray, optional
        Targets, checked too (one ground truth shared by several noisy
        captures is the commonest leak).

    Returns
    -------
    warnings : list of str
        One sentence per problem (empty when the split looks sound).
    counts : dict
        ``{"inputs": ..., "targets": ...}`` overlap counts.
    """
    warnings: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    patch_px = int(np.prod(patch_size))
    val_px = sum(int(np.prod(x.shape[-len(patch_size) :])) for x in val_inputs)
    if val_px < MIN_VAL_PATCHES * patch_px:
        warnings.append(
            f"The validation set holds {val_px / patch_px:.1f} patches' worth of pixels (fewer "
            f"than {MIN_VAL_PATCHES}): its score will be noisy; raise data.val_fraction or add "
            "images."
        )
    parts = [("inputs", train_inputs, val_inputs)]
    if train_targets is not None and val_targets is not None:
        parts.append(("targets", train_targets, val_targets))
    size = [max(int(p), MIN_CHECK_PATCH) for p in patch_size]
    for name, tr, va in parts:
        res = find_overlap(tr, va, patch_size=size)
        counts[name] = res.summary()
        if res.found:
            warnings.append(
                f"Validation {name} repeat training {name}: {len(res.exact)} identical and "
                f"{len(res.near)} near-identical patch(es) of {res.val_patches} checked; the "
                "validation score is optimistic. Keep every field of view (and all captures "
                f"of it) on one side of the split: {SPLIT_FIX}."
            )
    return warnings, counts
