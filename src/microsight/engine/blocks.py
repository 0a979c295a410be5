"""One large image predicted over many Dask workers, in blocks of rows with a halo.

The image is cut into blocks of rows (Z planes in 3D) along its first
spatial axis. A worker predicts the tiles of the *whole image's* tile grid
that touch its block (the halo is the tile overlap) and blends them exactly
as the single-process :class:`~microsight.engine.predict.TiledPredictor`
does, tile order included, so every pixel is the same sum of the same
products: the result equals the single-process one. Blocks are aligned with
the output's zarr chunks, so each worker writes its own chunks and no two
workers ever write the same chunk.

Normalization is fitted once, on the client, on the same subsample a single
process uses, and sent to the workers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from microsight.data.layout import (
    check_channels,
    finite_region_reader,
    item_indices,
    item_sampler,
    item_to_output,
    output_axes,
    output_shape,
    write_key,
)
from microsight.data.normalization import Normalizer
from microsight.data.tiling import blend_weights, pad_to_multiple, tile_starts
from microsight.engine.bundle import Model
from microsight.engine.distributed import cached_model, require_dask
from microsight.engine.predict import (
    TiledPredictor,
    TileSettings,
    _pad,
    input_normalizer,
    output_normalizer,
)
from microsight.errors import ColourWarning, MicrosightError
from microsight.io import Image, ImageWriter, open_image_writer, read_image
from microsight.io.image import image_format, mean_of_rgb

#: Rows (2D) or planes (3D) per block by default: the default zarr chunk edge.
DEFAULT_ROWS = {2: 1024, 3: 64}


@dataclass
class Source:
    """Where a worker reads the one item of a large image (picklable)."""

    path: str
    axes: str
    ndim: int
    index: dict[str, int]
    grey: bool = False  # an 8-bit colour image fed to a one-channel model

    def convert(self, block: np.ndarray) -> np.ndarray:
        """A channels-first block as the model takes it: colour made grey (mean of R, G, B)."""
        return mean_of_rgb(block, 0, keepdims=True) if self.grey else block

    def open(self) -> Image:
        """The image, opened lazily."""
        return read_image(self.path, axes=self.axes)

    def spatial(self) -> tuple[int, ...]:
        """Spatial shape of the item."""
        image = self.open()
        return tuple(s for a, s in zip(image.axes, image.shape, strict=True)
                     if a in "ZYX")[-self.ndim:]


@dataclass
class Sink:
    """Where a worker writes some channels of its blocks (picklable).

    It names the temporary OME-Zarr of a writer held open by the client; the
    client's ``close`` publishes it once every block is written.
    """

    store: str
    perm: list[int] | None
    axes: str
    ndim: int
    index: dict[str, int]
    channels: list[int]
    normalizer: Normalizer | None = None

    @classmethod
    def of(cls, writer: ImageWriter, ndim: int, index: dict[str, int], channels: list[int],
           normalizer: Normalizer | None = None) -> Sink:
        """A sink writing into ``writer``'s output (axes as the writer's)."""
        store, perm = writer.zarr_store()
        return cls(str(store), perm, writer.axes, ndim, index, channels, normalizer)

    def put(self, region: tuple[slice, ...], block: np.ndarray) -> None:
        """Write the rows ``region`` of ``block`` (channels-first dense maps)."""
        import zarr

        data = block[self.channels]
        if self.normalizer is not None:
            data = self.normalizer.invert(data)
        key = write_key(self.axes, self.ndim, self.index, region)
        data = item_to_output(data, self.axes, self.ndim)
        array = zarr.open_array(self.store, path="0", mode="r+")
        if self.perm is not None:
            key, data = tuple(key[i] for i in self.perm), np.transpose(data, self.perm)
        array[key] = data.astype(array.dtype, copy=False)


def predict_rows(predictor: TiledPredictor, shape: tuple[int, ...],
                 read: Callable[[tuple[slice, ...]], np.ndarray], rows: tuple[int, int]
                 ) -> np.ndarray:
    """Dense output of rows ``[a, b)`` of an item, identical to a whole-item ``run``.

    Only the tiles of the whole item's grid that overlap the rows are predicted.
    """
    if predictor.scale != 1:
        raise MicrosightError("block prediction over workers supports networks whose output "
                              "has the input's grid; predict this model in one process")
    a, b = rows
    s = predictor.settings
    sizes = tuple(min(t, n) for t, n in zip(s.tile, shape, strict=True))
    overlaps = tuple(min(o, t // 2) for o, t in zip(s.overlap, sizes, strict=True))
    padded = pad_to_multiple(sizes, predictor.divisor)
    starts = [tile_starts(n, t, o) for n, t, o in zip(shape, sizes, overlaps, strict=True)]
    weight = blend_weights(sizes, overlaps)[None]
    acc = np.zeros((predictor.out_channels, b - a, *shape[1:]), np.float32)
    wsum = np.zeros((1, b - a, *shape[1:]), np.float32)
    crop = (slice(None),) + tuple(slice(0, t) for t in sizes)
    for s0 in starts[0]:
        lo, hi = max(s0, a), min(s0 + sizes[0], b)
        if lo >= hi:
            continue
        regions = [(slice(s0, s0 + sizes[0]),) + tuple(
            slice(p, p + t) for p, t in zip(other, sizes[1:], strict=True))
            for other in product(*starts[1:])]
        # The same batches, in the same order, as the whole-item run: same sums.
        for i in range(0, len(regions), s.batch_size):
            chunk = regions[i:i + s.batch_size]
            out = predictor._forward([_pad(read(r), padded) for r in chunk]).cpu().numpy()
            w = weight[:, lo - s0:hi - s0]
            for region, pred in zip(chunk, out, strict=True):
                local = (slice(None), slice(lo - a, hi - a)) + region[1:]
                acc[local] += pred[crop][:, lo - s0:hi - s0] * w
                wsum[local] += w
    return acc / wsum


def predict_block(bundle: str, source: Source, x_norm: Normalizer, settings: TileSettings,
                  rows: tuple[int, int], sinks: list[Sink]) -> int:
    """Predict rows ``[a, b)`` of a large image on a worker and write them; rows done."""
    model = cached_model(bundle)
    image = source.open()
    predictor = TiledPredictor(model.module, settings)
    spatial = source.spatial()

    read_raw = finite_region_reader(image.data, image.axes, source.ndim, source.index,
                                    Path(source.path).name)

    def read(region):
        return x_norm.apply(source.convert(read_raw(region)))

    dense = predict_rows(predictor, spatial, read, rows)
    region = (slice(*rows),) + tuple(slice(0, n) for n in spatial[1:])
    for sink in sinks:
        sink.put(region, dense)
    return rows[1] - rows[0]


def row_blocks(n: int, rows: int) -> list[tuple[int, int]]:
    """``[a, b)`` blocks of ``rows`` rows covering ``[0, n)``."""
    return [(a, min(a + rows, n)) for a in range(0, n, rows)]


def prepare(model: Model, image_path: str | Path, axes: str | None, rows: int | None
            ) -> tuple[Source, Image, int, Normalizer]:
    """Check a large image for block prediction: its one item, block rows, normalizer."""
    if image_format(image_path) is None:
        raise MicrosightError(f"{Path(image_path).name}: unsupported file type for "
                              "prediction over workers; use .ome.zarr or .tif")
    image = read_image(image_path, axes=axes)
    ndim = model.ndim
    name = Path(image_path).name
    if type(model.module).predict_item is not None:
        raise MicrosightError(f"method {model.method} predicts whole items; predict it in "
                              "one process (leave out --workers/--scheduler)")
    grey = type(model.module).makes_grey(model, image)
    if grey:
        warnings.warn(f"{name} is a colour image and the model takes one channel: it is "
                      "made grey (the mean of R, G and B) block by block", ColourWarning,
                      stacklevel=3)
    else:
        check_channels(image.axes, image.shape, model.module.in_channels, name)
    indices = item_indices(image.axes, image.shape, ndim, name)
    if len(indices) != 1:
        raise MicrosightError(f"{name} holds {len(indices)} items (time points or planes); "
                              "prediction over workers takes one large item: split it into "
                              "files and predict the folder")
    source = Source(str(image_path), image.axes, ndim, indices[0], grey)
    spatial = source.spatial()
    # The subsample a single process fits a per-image normalizer on.
    sample = item_sampler(image.data, image.axes, ndim, source.index, spatial)
    x_norm = input_normalizer(model.normalization, lambda: source.convert(sample()))
    n_rows = int(rows or DEFAULT_ROWS[ndim])
    return source, image, n_rows, x_norm


def chunks_for(axes: str, shape: tuple[int, ...], ndim: int, rows: int) -> tuple[int, ...]:
    """Zarr chunks whose first spatial edge is the block height (one writer per chunk)."""
    first = ("YX" if ndim == 2 else "ZYX")[0]
    return tuple(rows if a == first else min(s, 1024) if a in "ZYX" else 1
                 for a, s in zip(axes, shape, strict=True))


def run_blocks(client: Any, bundle: str, source: Source, x_norm: Normalizer,
               settings: TileSettings, blocks: list[tuple[int, int]], sinks: list[Sink],
               advance: Callable[[int], None], retries: int = 2) -> None:
    """Predict ``blocks`` over the cluster's workers; ``advance(rows)`` as each finishes."""
    distributed = require_dask()
    futures = [client.submit(predict_block, bundle, source, x_norm, settings, rows, sinks,
                             retries=retries, pure=False) for rows in blocks]
    for future in distributed.as_completed(futures):
        advance(future.result())


def predict_image_blocks(client: Any, model: Model, bundle: str, image_path: str | Path,
                         out: str | Path, *, axes: str | None, settings: TileSettings,
                         rows: int | None, advance: Callable[[int], None]) -> Path:
    """Predict an image-valued model over a large image into ``out`` (OME-Zarr)."""
    if image_format(out) != "zarr":
        raise MicrosightError(f"{Path(out).name}: prediction over workers writes OME-Zarr, "
                              "where each worker writes its own chunks; give --out NAME.ome.zarr")
    source, image, n_rows, x_norm = prepare(model, image_path, axes, rows)
    c_out = model.module.out_channels
    y_norm = output_normalizer(model.normalization, x_norm, c_out)
    axes_out = output_axes(image.axes, c_out)
    shape_out = output_shape(image.axes, image.shape, axes_out, c_out)
    spatial = source.spatial()
    writer = open_image_writer(out, shape_out, np.float32, axes_out, image.pixel_sizes,
                               chunks=chunks_for(axes_out, shape_out, model.ndim, n_rows))
    with writer:
        sink = Sink.of(writer, model.ndim, source.index, list(range(c_out)), y_norm)
        run_blocks(client, bundle, source, x_norm, settings, row_blocks(spatial[0], n_rows),
                   [sink], advance)
    return Path(out)
