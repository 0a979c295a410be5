"""Patch sampling and augmentation on the training device, a whole batch at once.

The training images live on the device as flat buffers. A batch is one
gather: random image and position per patch (a share of them centred on
foreground), and a random flip/rotation that is applied to the *index grid*
rather than to the pixels, so augmentation costs nothing extra. No Python
loop runs per patch, which keeps a GPU busy instead of waiting on a loader.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

# Foreground candidates kept per image: enough to cover the bright structures,
# bounded so that huge images do not allocate a huge index table.
MAX_FG_CANDIDATES = 200_000


def _dihedral_grids(patch: tuple[int, ...], flips: bool, rotations: bool) -> torch.Tensor:
    """Coordinate grids ``(n_transforms, ndim, *patch)`` of every allowed transform."""
    axes = [torch.arange(p) for p in patch]
    base = torch.stack(torch.meshgrid(*axes, indexing="ij"))
    grids = []
    for k in range(4 if rotations else 1):
        rotated = torch.rot90(base, k, dims=(-2, -1))
        grids.append(rotated)
        if flips:
            grids.append(torch.flip(rotated, dims=(-1,)))
    if flips and not rotations:
        grids += [torch.flip(g, dims=(-2,)) for g in list(grids)]
    if flips and len(patch) == 3:
        grids += [torch.flip(g, dims=(-3,)) for g in list(grids)]
    return torch.stack(grids)


def _foreground_starts(target: np.ndarray, patch: tuple[int, ...], rng: np.random.Generator
                       ) -> np.ndarray:
    """Top-left corners of patches whose centre lies on bright target pixels."""
    signal = target.mean(axis=0)
    smooth = ndimage.uniform_filter(signal, size=3)
    threshold = np.percentile(smooth, 80)
    centres = np.argwhere(smooth > threshold)
    if len(centres) == 0:
        return np.zeros((0, len(patch)), np.int64)
    if len(centres) > MAX_FG_CANDIDATES:
        centres = centres[rng.choice(len(centres), MAX_FG_CANDIDATES, replace=False)]
    half = np.asarray(patch) // 2
    limit = np.asarray(signal.shape) - np.asarray(patch)
    return np.clip(centres - half, 0, limit).astype(np.int64)


class PatchSampler:
    """Draw augmented patch batches from images kept on one device.

    Parameters
    ----------
    inputs : list of numpy.ndarray
        Channels-first images ``(C, *spatial)`` (normalized float32).
    targets : list of numpy.ndarray or None
        Matching targets; ``None`` for self-supervised methods.
    patch_size : tuple of int
        Spatial patch size.
    batch_size : int
        Patches per batch.
    foreground_fraction : float
        Share of patches centred on foreground (bright target pixels).
    flips, rotations : bool
        Augmentations of the spatial plane (YX; Z flips too for 3D).
    intensity_jitter : float
        Random gain ``1 +/- j`` applied to input and target together.
    seed : int
        Seed of the patch draws (re-seeded per epoch by :meth:`reseed`).
    align : int
        Patch corners are rounded down to multiples of this (e.g. the factor of a
        super-resolution method whose inputs are stored on the target grid).
    """

    def __init__(
        self,
        inputs: list[np.ndarray],
        targets: list[np.ndarray] | None,
        patch_size: tuple[int, ...],
        batch_size: int,
        *,
        foreground_fraction: float = 0.5,
        flips: bool = True,
        rotations: bool = True,
        intensity_jitter: float = 0.0,
        seed: int = 0,
        align: int = 1,
    ):
        self.patch = tuple(int(p) for p in patch_size)
        self.batch_size = int(batch_size)
        self.fg_fraction = float(foreground_fraction)
        self.jitter = float(intensity_jitter)
        self.seed = int(seed)
        self.align = int(align)
        ndim = len(self.patch)
        shapes = np.array([x.shape[1:] for x in inputs], np.int64)
        strides = np.stack([np.cumprod((list(s[1:]) + [1])[::-1])[::-1] for s in shapes])
        sizes = shapes.prod(axis=1)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        valid = shapes - np.asarray(self.patch) + 1
        self.x_buf = torch.from_numpy(
            np.concatenate([x.reshape(x.shape[0], -1) for x in inputs], 1))
        self.y_buf = None
        if targets is not None:
            self.y_buf = torch.from_numpy(
                np.concatenate([y.reshape(y.shape[0], -1) for y in targets], 1))
        rng = np.random.default_rng(seed)
        fg = [_foreground_starts(t, self.patch, rng)
              for t in (targets if targets is not None else inputs)]
        self.fg_image = torch.from_numpy(
            np.concatenate([np.full(len(f), i, np.int64) for i, f in enumerate(fg)]))
        self.fg_start = torch.from_numpy(
            np.concatenate(fg) if fg else np.zeros((0, ndim), np.int64)).reshape(-1, ndim)
        self.offsets = torch.from_numpy(offsets.astype(np.int64))
        self.strides = torch.from_numpy(strides.astype(np.int64))
        self.valid = torch.from_numpy(valid.astype(np.int64))
        self.weights = torch.from_numpy(valid.prod(axis=1).astype(np.float64))
        self.grids = _dihedral_grids(self.patch, flips, rotations)
        self.generator = torch.Generator()
        self.device = torch.device("cpu")

    _TENSORS = ("x_buf", "y_buf", "fg_image", "fg_start", "offsets", "strides", "valid",
                "weights", "grids")

    def to(self, device: torch.device | str) -> PatchSampler:
        """Move the images and index tables to ``device`` (once, before training)."""
        device = torch.device(device)
        for name in self._TENSORS:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.to(device))
        self.device = device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(self.seed)
        return self

    def reseed(self, epoch: int) -> None:
        """Seed from (seed, epoch): a resumed run draws the same patches as an unbroken one."""
        self.generator.manual_seed(self.seed * 100_003 + epoch)

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator, device=self.device)

    def _starts(self) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.batch_size
        image = torch.multinomial(self.weights, b, replacement=True, generator=self.generator)
        start = (self._rand(b, len(self.patch)) * self.valid[image]).long()
        if len(self.fg_image) and self.fg_fraction > 0:
            pick = (self._rand(b) * len(self.fg_image)).long()
            use_fg = self._rand(b) < self.fg_fraction
            image = torch.where(use_fg, self.fg_image[pick], image)
            start = torch.where(use_fg[:, None], self.fg_start[pick], start)
        if self.align > 1:
            start = start - start % self.align
        return image, start

    def sample(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One batch ``(x, y)`` of shape ``(B, C, *patch)``; ``y`` is None without targets."""
        image, start = self._starts()
        b, nd = self.batch_size, len(self.patch)
        choice = (self._rand(b) * len(self.grids)).long()
        grid = self.grids[choice]  # (B, ndim, *patch)
        expand = (slice(None), slice(None)) + (None,) * nd
        pos = start[expand] + grid
        flat = self.offsets[image].view((b,) + (1,) * nd) + (pos * self.strides[image][expand]
                                                             ).sum(1)
        x = self.x_buf[:, flat].transpose(0, 1)
        y = None if self.y_buf is None else self.y_buf[:, flat].transpose(0, 1)
        if self.jitter > 0:
            gain = 1 + self.jitter * (2 * self._rand(b) - 1)
            gain = gain.view((b,) + (1,) * (nd + 1))
            x = x * gain
            y = None if y is None else y * gain
        return x.contiguous(), None if y is None else y.contiguous()
