"""Objects of one large image found over many Dask workers, stitched as in one process.

Three stages, each the single-process algorithm cut at its block borders:

1. dense maps (probabilities, distances): blocks of rows predicted by the
   workers (:mod:`microsight.engine.blocks`, equal to the whole-image tiled
   prediction) into a temporary OME-Zarr, the probability channels also into
   the ``<stem>_prob`` output;
2. objects: each stitching block (the rows it owns plus its margin of
   context on both sides, the same blocks as
   :meth:`SegmentationModule.run_item`) extracted by a worker, which keeps
   only the objects whose seed the block owns;
3. labels and table: the client paints the blocks' objects in block order
   with the same :class:`~microsight.data.stitching.BlockStitcher` (earlier
   blocks win disputed pixels, global ids follow block order) and writes the
   label image, the object table and polygons.

Workers do the costly parts (network, object extraction); the client only
paints labels, one block at a time, in bounded memory.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from microsight.data.layout import output_axes, write_key
from microsight.data.stitching import BlockStitcher, Objects
from microsight.engine.blocks import (
    Sink,
    chunks_for,
    prepare,
    row_blocks,
    run_blocks,
)
from microsight.engine.bundle import Model
from microsight.engine.distributed import cached_model, require_dask
from microsight.engine.predict import TileSettings
from microsight.errors import MicrosightError
from microsight.io import open_image_writer, read_image
from microsight.io.image import image_format
from microsight.io.shapes import write_geojson, write_table


def extract_block(bundle: str, dense_path: str, ndim: int, owned: tuple[int, int],
                  margin: int) -> Objects:
    """Objects whose seed lies in rows ``owned`` of the dense maps (runs on a worker)."""
    model = cached_model(bundle)
    dense = read_image(dense_path, axes="CYX" if ndim == 2 else "CZYX").data
    n0 = dense.shape[1]
    a, b = owned
    lo, hi = max(a - margin, 0), min(b + margin, n0)
    objects = type(model.module).extract(model.config, np.asarray(dense[:, lo:hi]))
    keep = (objects.seeds[:, 0] >= a - lo) & (objects.seeds[:, 0] < b - lo)
    # Only owned objects travel back; the client's stitcher keeps exactly these.
    lut = np.zeros(len(objects.scores) + 1, np.int32)
    lut[1:][keep] = np.arange(1, int(keep.sum()) + 1)
    return Objects(lut[objects.labels], objects.seeds[keep], objects.scores[keep],
                   None if objects.polygons is None else objects.polygons[keep])


def stitch_blocks(shape: tuple[int, ...], block: int, margin: int,
                  results: Callable[[int], Objects], put_labels: Callable) -> BlockStitcher:
    """Paint precomputed block objects with the single-process stitcher, block by block."""
    n0 = shape[0]
    stitcher = BlockStitcher(shape, lambda _: next(objects), block, margin, put_labels)
    objects = iter(results(i) for i in range(len(row_blocks(n0, stitcher.block))))
    # The stitcher asks for each block's objects in order; no dense maps are held here.
    stitcher.add((slice(0, n0),), np.zeros((0, n0, *shape[1:]), np.float32))
    return stitcher


def segment_blocks(client: Any, model: Model, bundle: str, image_path: str | Path,
                   out: str | Path, *, axes: str | None, settings: TileSettings,
                   rows: int | None, advance: Callable[[int], None]) -> Path:
    """Segment a large image over the cluster into ``out`` (OME-Zarr) and its side files.

    Writes ``out`` (labels), ``<stem>_prob.ome.zarr`` and the object table
    (and polygons) next to it, as the single-process prediction does.
    """
    distributed = require_dask()
    out = Path(out)
    if image_format(out) != "zarr":
        raise MicrosightError(f"{out.name}: segmentation over workers writes OME-Zarr; give "
                              "--out NAME.ome.zarr")
    cls = type(model.module)
    source, image, n_rows, x_norm = prepare(model, image_path, axes, rows)
    spatial, ndim, cfg = source.spatial(), model.ndim, model.config
    stem = out.name[: -len(".ome.zarr")] if out.name.endswith(".ome.zarr") else out.stem
    lab_axes = "".join(a for a in image.axes if a != "C")
    lab_shape = tuple(s for a, s in zip(image.axes, image.shape, strict=True) if a != "C")
    channels = list(cls.prob_channels(cfg))
    prob_axes = output_axes(lab_axes, len(channels))
    sizes = dict(zip(lab_axes, lab_shape, strict=True))
    prob_shape = tuple(len(channels) if a == "C" else sizes[a] for a in prob_axes)
    pixel = {a: v for a, v in image.pixel_sizes.items() if a in lab_axes}
    dense_axes = "C" + ("YX" if ndim == 2 else "ZYX")
    n_dense = model.module.out_channels
    dense_path = out.parent / f".{stem}.dense-{secrets.token_hex(4)}.ome.zarr"
    blocks = row_blocks(spatial[0], n_rows)
    prob = open_image_writer(out.parent / f"{stem}_prob.ome.zarr", prob_shape, np.float32,
                             prob_axes, pixel, chunks_for(prob_axes, prob_shape, ndim, n_rows))
    labels = open_image_writer(out, lab_shape, np.uint32, lab_axes, pixel)
    try:
        with open_image_writer(dense_path, (n_dense, *spatial), np.float32, dense_axes,
                               chunks=chunks_for(dense_axes, (n_dense, *spatial), ndim,
                                                 n_rows)) as dense:
            sinks = [Sink.of(dense, ndim, {}, list(range(n_dense))),
                     Sink.of(prob, ndim, source.index, channels)]
            run_blocks(client, bundle, source, x_norm, settings, blocks, sinks, advance)
        m = cfg.method
        block = max(m.block_pixels // max(int(np.prod(spatial[1:])), 1), m.block_margin)
        futures = [client.submit(extract_block, bundle, str(dense_path), ndim, owned,
                                 m.block_margin, retries=2, pure=False)
                   for owned in row_blocks(spatial[0], block)]

        def put_labels(region, data):
            key = write_key(lab_axes, ndim, source.index, region)
            labels.write(key, data.reshape([k.stop - k.start for k in key]))

        stitcher = stitch_blocks(spatial, block, m.block_margin,
                                 lambda i: futures[i].result(), put_labels)
        distributed.wait(futures)
    except BaseException:
        prob.abort()
        labels.abort()
        raise
    finally:
        shutil.rmtree(dense_path, ignore_errors=True)
    prob.close()
    labels.close()
    write_table(out.parent / f"{stem}{cls.table_suffix}", stitcher.table())
    if stitcher.polygons:
        write_geojson(out.parent / f"{stem}_polygons.geojson", stitcher.polygons)
    return out
