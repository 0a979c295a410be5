"""Patch sampling and augmentation on the training device, a whole batch at once.

The training images live on the device as flat buffers. A batch is one
gather: random image and position per patch (a share of them centred on
foreground), and a random flip/rotation that is applied to the *index grid*
rather than to the pixels, so augmentation costs nothing extra. No Python
loop runs per patch, which keeps a GPU busy instead of waiting on a loader.

Random zoom (``scale_jitter``) stretches the same grid: each patch reads a
region ``1 / zoom`` times its size, inputs by linear interpolation (a gather of
the 2 or 4 or 8 neighbouring pixels), label targets by nearest neighbour so
that object ids stay ids. It shows a network its objects at other sizes than
the training images hold, for data where the object size varies.
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
    scale_jitter : float
        Random zoom between ``1 / (1 + s)`` and ``1 + s`` (log-uniform) per patch;
        0 switches it off.
    nearest_targets : bool
        Read zoomed targets by nearest neighbour (label images) instead of linear
        interpolation.
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
        scale_jitter: float = 0.0,
        nearest_targets: bool = False,
        seed: int = 0,
        align: int = 1,
    ):
        self.patch = tuple(int(p) for p in patch_size)
        self.batch_size = int(batch_size)
        self.fg_fraction = float(foreground_fraction)
        self.jitter = float(intensity_jitter)
        self.log_zoom = float(np.log1p(scale_jitter))
        self.nearest_targets = bool(nearest_targets)
        if self.log_zoom > 0 and align > 1:
            raise ValueError("scale_jitter cannot be combined with aligned patch corners")
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
        self.shapes = torch.from_numpy(shapes)
        self.weights = torch.from_numpy(valid.prod(axis=1).astype(np.float64))
        self.grids = _dihedral_grids(self.patch, flips, rotations)
        self.generator = torch.Generator()
        self.device = torch.device("cpu")

    _TENSORS = ("x_buf", "y_buf", "fg_image", "fg_start", "offsets", "strides", "valid",
                "shapes", "weights", "grids")

    def __getstate__(self) -> dict:
        # Sent to spawned training processes as plain arrays: torch's shared-memory
        # transfer fails on empty tensors (no foreground positions).
        state = dict(self.__dict__)
        for name in self._TENSORS:
            if state[name] is not None:
                state[name] = state[name].cpu().numpy()
        state["generator"] = None
        state["device"] = "cpu"
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for name in self._TENSORS:
            if state[name] is not None:
                setattr(self, name, torch.from_numpy(state[name]))
        self.device = torch.device("cpu")
        self.generator = torch.Generator()
        self.generator.manual_seed(self.seed)

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

    def reseed(self, epoch: int, rank: int = 0) -> None:
        """Seed from (seed, epoch, rank): a resumed run draws the same patches as an
        unbroken one, and each process of a multi-device run draws its own."""
        self.generator.manual_seed(self.seed * 100_003 + epoch + rank * 1_000_000_007)

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

    def _gather(self, buf: torch.Tensor, image: torch.Tensor, pos: torch.Tensor
                ) -> torch.Tensor:
        """Pixels of ``buf`` at integer positions ``pos`` ``(B, ndim, *patch)``."""
        b, nd = pos.shape[0], pos.shape[1]
        expand = (slice(None), slice(None)) + (None,) * nd
        flat = self.offsets[image].view((b,) + (1,) * nd) + (pos * self.strides[image][expand]
                                                             ).sum(1)
        return buf[:, flat].transpose(0, 1)

    def _zoomed(self, image: torch.Tensor, start: torch.Tensor, grid: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Patches read through a grid stretched by a random zoom per patch."""
        b, nd = grid.shape[0], grid.shape[1]
        expand = (slice(None), slice(None)) + (None,) * nd
        step = torch.exp(self.log_zoom * (2 * self._rand(b) - 1))  # 1 / zoom
        size = torch.tensor(self.patch, device=self.device, dtype=torch.float32) - 1
        last = (self.shapes[image] - 1).float()
        # Keep the patch's centre where the unzoomed patch had it (on foreground for
        # the foreground share), then pull the stretched region inside the image.
        centre = start.float() + size / 2
        origin = centre - size * step[:, None] / 2
        origin = torch.minimum(origin, last - size * step[:, None]).clamp(min=0)
        pos = origin[expand] + grid.float() * step.view((b, 1) + (1,) * nd)
        pos = torch.minimum(pos, last[expand])
        x = self._linear(self.x_buf, image, pos, last[expand])
        if self.y_buf is None:
            return x, None
        if self.nearest_targets:
            return x, self._gather(self.y_buf, image, pos.round().long())
        return x, self._linear(self.y_buf, image, pos, last[expand])

    def _linear(self, buf: torch.Tensor, image: torch.Tensor, pos: torch.Tensor,
                last: torch.Tensor) -> torch.Tensor:
        """(Bi/tri)linear interpolation of ``buf`` at float positions ``pos``."""
        nd = pos.shape[1]
        low = pos.floor().long()
        frac = pos - low
        out = 0
        for corner in np.ndindex(*(2,) * nd):
            shift = torch.tensor(corner, device=self.device).view((1, nd) + (1,) * nd)
            weight = torch.where(shift.bool(), frac, 1 - frac).prod(1, keepdim=True)
            out = out + weight * self._gather(buf, image, torch.minimum(low + shift,
                                                                        last.long()))
        return out

    def sample(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One batch ``(x, y)`` of shape ``(B, C, *patch)``; ``y`` is None without targets."""
        image, start = self._starts()
        b, nd = self.batch_size, len(self.patch)
        choice = (self._rand(b) * len(self.grids)).long()
        grid = self.grids[choice]  # (B, ndim, *patch)
        if self.log_zoom > 0:
            x, y = self._zoomed(image, start, grid)
        else:
            expand = (slice(None), slice(None)) + (None,) * nd
            pos = start[expand] + grid
            x = self._gather(self.x_buf, image, pos)
            y = None if self.y_buf is None else self._gather(self.y_buf, image, pos)
        if self.jitter > 0:
            gain = 1 + self.jitter * (2 * self._rand(b) - 1)
            gain = gain.view((b,) + (1,) * (nd + 1))
            x = x * gain
            y = None if y is None else y * gain
        return x.contiguous(), None if y is None else y.contiguous()
