"""Tiled prediction for images of any size, in bounded memory.

Tiles overlap and are blended with weights that ramp down towards tile
edges. Tiles are processed band by band along the first spatial axis (Y
for 2D, Z for 3D): a band's rows are written out as soon as no later tile
can touch them. Memory therefore grows with the tile size times one image
row of tiles, never with the image: an 8192 x 8192 image streamed from and
to OME-Zarr is never held whole.

A module may produce outputs larger than its inputs (super-resolution): its
``output_scale`` attribute (default 1) is the integer factor between output
and input pixels along every spatial axis. Input tiles are cut as usual;
output regions, blending weights and the band bookkeeping are in output
coordinates (``output_scale`` times the input coordinates).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product

import numpy as np
import torch

from microsight.data.normalization import Normalizer, fit_normalizer
from microsight.data.tiling import blend_weights, pad_to_multiple, tile_starts
from microsight.engine.progress import Monitor

ReadFn = Callable[[tuple[slice, ...]], np.ndarray]
WriteFn = Callable[[tuple[slice, ...], np.ndarray], None]


@dataclass
class TileSettings:
    """Tile size and overlap per spatial axis, and tiles per forward pass.

    Sizes are input pixels. With ``output_sized`` (set by :meth:`default` when
    no tile size is asked for), they are meant as *output* pixels instead: a
    module with ``output_scale`` k gets input tiles and overlaps k times
    smaller, so its output tiles, and memory, stay those of the default.
    """

    tile: tuple[int, ...]
    overlap: tuple[int, ...]
    batch_size: int = 1
    output_sized: bool = False
    #: Progress reports and cancellation of the prediction (a GUI's hooks).
    monitor: Monitor | None = None

    def for_scale(self, scale: int) -> TileSettings:
        """Input-pixel settings for a module whose outputs are ``scale`` times larger."""
        if not self.output_sized or scale == 1:
            return self
        return TileSettings(tuple(max(t // scale, 8) for t in self.tile),
                            tuple(o // scale for o in self.overlap), self.batch_size,
                            monitor=self.monitor)

    @classmethod
    def default(cls, ndim: int, tile: int | None = None, overlap: int | None = None,
                batch_size: int | None = None, monitor: Monitor | None = None
                ) -> TileSettings:
        cuda = torch.cuda.is_available()
        # CPU: 256-pixel tiles ran 1.8x faster than 512 (cache-friendlier;
        # docs/benchmarks-history.md).
        t = tile or ((512 if cuda else 256) if ndim == 2 else 128)
        o = overlap if overlap is not None else max(t // 8, 8)
        tz = min(t, 32) if ndim == 3 else t
        oz = min(o, tz // 4) if ndim == 3 else o
        sizes = (t, t) if ndim == 2 else (tz, t, t)
        overlaps = (o, o) if ndim == 2 else (oz, o, o)
        # One tile per pass on CPU keeps activations (the bulk of memory) small at no
        # cost in speed; a GPU needs several tiles per pass to be busy.
        return cls(sizes, overlaps, batch_size or (8 if cuda else 1),
                   output_sized=tile is None, monitor=monitor)


def _pad(block: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    widths = [(0, 0)] + [(0, t - s) for s, t in zip(block.shape[1:], shape, strict=True)]
    if all(w[1] == 0 for w in widths):
        return block
    mode = "reflect" if all(w[1] < s for w, s in zip(widths[1:], block.shape[1:],
                                                     strict=True)) else "symmetric"
    return np.pad(block, widths, mode=mode)


class TiledPredictor:
    """Run a module over an item of any size, tile by tile.

    Parameters
    ----------
    module : MicrosightModule
        Network in eval mode.
    settings : TileSettings
        Tiling.
    device : torch.device
        Where the network runs.
    halo : tuple of int, optional
        Context per spatial axis: each tile is read this much larger on every
        side (real pixels inside the image, mirrored beyond it) and the
        network's output is cropped back to the tile, so that pixels near tile
        edges see what they would see in the whole image (a network that
        declares its receptive field, e.g. a BioImage Model Zoo package).
    """

    def __init__(self, module, settings: TileSettings, device: torch.device | None = None,
                 halo: tuple[int, ...] | None = None):
        self.module = module
        self.scale = output_scale(module)
        self.settings = settings.for_scale(self.scale)
        self.device = device or next(module.parameters()).device
        self.divisor = module.divisor
        self.halo = tuple(halo) if halo else (0,) * len(self.settings.tile)

    def _read(self, read: ReadFn, region: tuple[slice, ...], shape: tuple[int, ...]
              ) -> np.ndarray:
        """The tile ``region`` with its halo: ``read`` inside the image, mirrored beyond."""
        if not any(self.halo):
            return read(region)
        wider = tuple(slice(max(0, r.start - h), min(n, r.stop + h))
                      for r, h, n in zip(region, self.halo, shape, strict=True))
        block = read(wider)
        widths = [(0, 0)] + [(h - (r.start - w.start), h - (w.stop - r.stop)) for r, w, h in
                             zip(region, wider, self.halo, strict=True)]
        return np.pad(block, widths, mode="symmetric") if any(map(any, widths)) else block

    @property
    def out_channels(self) -> int:
        """Outputs, then per-pixel uncertainties when the module is asked for them."""
        return self.module.prediction_channels

    def _forward(self, tiles: list[np.ndarray]) -> torch.Tensor:
        """Output tiles (float32, on the device) of a batch of input tiles."""
        x = torch.from_numpy(np.stack(tiles))
        if self.device.type == "cuda":
            # From pinned memory the copy need not wait for the GPU: the host cuts the
            # next tiles while the GPU still works on these.
            x = x.pin_memory().to(self.device, non_blocking=True)
        else:
            x = x.to(self.device)
        if x.ndim == 4:
            # NHWC: about 1.8x faster convolutions on a CPU (oneDNN), faster on GPUs.
            x = x.contiguous(memory_format=torch.channels_last)
        # Outputs stay float32 on a CPU: bf16 would round restored intensities.
        ctx = (torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda"
               else contextlib.nullcontext())
        with ctx:
            return self.module.predict_batch(x).float()

    def n_tiles(self, shape: tuple[int, ...]) -> int:
        """Number of tiles for an item of spatial ``shape``."""
        sizes = [min(t, s) for t, s in zip(self.settings.tile, shape, strict=True)]
        return int(np.prod([len(tile_starts(s, t, o)) for s, t, o in
                            zip(shape, sizes, self.settings.overlap, strict=True)]))

    def run(self, shape: tuple[int, ...], read: ReadFn, write: WriteFn,
            advance: Callable[[int], None] | None = None) -> None:
        """Predict an item of spatial ``shape``.

        Parameters
        ----------
        shape : tuple of int
            Spatial shape of the item.
        read : callable
            ``read(region) -> (C, *region_shape)`` normalized float32 input.
        write : callable
            ``write(region, block)`` receives finished ``(C_out, ...)`` output blocks;
            ``region`` is in output coordinates (input coordinates times
            ``output_scale``).
        advance : callable, optional
            Called with the number of tiles done (for progress bars).
        """
        sizes = tuple(min(t, s) for t, s in zip(self.settings.tile, shape, strict=True))
        overlaps = tuple(min(o, t // 2) for o, t in zip(self.settings.overlap, sizes,
                                                       strict=True))
        halo = self.halo
        padded = pad_to_multiple(tuple(t + 2 * h for t, h in zip(sizes, halo, strict=True)),
                                 self.divisor)
        starts = [tile_starts(s, t, o) for s, t, o in zip(shape, sizes, overlaps, strict=True)]
        n_total, n_done = int(np.prod([len(s) for s in starts])), 0
        # From here on, sizes and positions are in output pixels (``k`` = scale).
        k = self.scale
        out_sizes = tuple(t * k for t in sizes)
        # Blending happens where the network runs: on a GPU only finished rows come
        # back to the host, once per band, instead of every output tile.
        weight = torch.from_numpy(blend_weights(out_sizes, tuple(o * k for o in overlaps))[None]
                                  ).to(self.device)
        rest = tuple(r * k for r in shape[1:])
        acc = torch.zeros((self.out_channels, out_sizes[0], *rest), device=self.device)
        wsum = torch.zeros((1, out_sizes[0], *rest), device=self.device)
        crop = (slice(None),) + tuple(slice(h * k, h * k + t) for t, h in
                                      zip(out_sizes, halo, strict=True))
        for band, s0 in enumerate(starts[0]):
            regions = [(slice(s0, s0 + sizes[0]),) + tuple(
                slice(a, a + t) for a, t in zip(other, sizes[1:], strict=True))
                for other in product(*starts[1:])]
            for i in range(0, len(regions), self.settings.batch_size):
                chunk = regions[i:i + self.settings.batch_size]
                out = self._forward([_pad(self._read(read, r, shape), padded) for r in chunk])
                if k != 1 and out.shape[2:] != tuple(p * k for p in padded):
                    raise RuntimeError(
                        f"the network turned tiles of {padded} into {out.shape[2:]}; "
                        f"expected {k} times the tile (output_scale {k})")
                for region, pred in zip(chunk, out, strict=True):
                    local = (slice(None), slice(0, out_sizes[0])) + tuple(
                        slice(r.start * k, r.stop * k) for r in region[1:])
                    acc[local] += pred[crop] * weight
                    wsum[local] += weight
                if advance is not None:
                    advance(len(chunk))
                n_done += len(chunk)
                if self.settings.monitor is not None:
                    self.settings.monitor.tiles(n_done, n_total)
            nxt = starts[0][band + 1] if band + 1 < len(starts[0]) else s0 + sizes[0]
            done = (nxt - s0) * k
            write((slice(s0 * k, nxt * k),) + tuple(slice(0, r) for r in rest),
                  (acc[:, :done] / wsum[:, :done]).cpu().numpy())
            acc = torch.cat([acc[:, done:], torch.zeros_like(acc[:, :done])], dim=1)
            wsum = torch.cat([wsum[:, done:], torch.zeros_like(wsum[:, :done])], dim=1)


def output_scale(module) -> int:
    """Output pixels per input pixel along each spatial axis (``module.output_scale``, 1)."""
    scale = module.output_scale
    if int(scale) != scale or scale < 1:
        raise ValueError(f"output_scale must be a positive integer, got {scale}")
    return int(scale)


def input_normalizer(normalization: dict, sample: Callable[[], np.ndarray]) -> Normalizer:
    """The input normalizer of a bundle, or one fitted on this image in per-image mode."""
    if normalization["mode"] == "dataset":
        return Normalizer.from_dict(normalization["input"])
    return fit_normalizer([sample()], p_low=normalization["p_low"],
                          p_high=normalization["p_high"])


def output_normalizer(normalization: dict, input_norm: Normalizer, out_channels: int
                      ) -> Normalizer:
    """Map network outputs back to intensities: training-target scale, or this input's scale."""
    if normalization["mode"] == "dataset":
        return Normalizer.from_dict(normalization["target"])
    if len(input_norm.low) == out_channels:
        return input_norm
    return Normalizer([input_norm.low[0]] * out_channels, [input_norm.high[0]] * out_channels)
