"""Apply a model to arrays and image files, in memory or streamed to disk."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from microsight.data.layout import (
    item_indices,
    item_to_output,
    output_axes,
    output_shape,
    read_item,
    write_key,
)
from microsight.data.normalization import subsample
from microsight.engine.bundle import Model
from microsight.engine.predict import (
    TiledPredictor,
    TileSettings,
    input_normalizer,
    output_normalizer,
)
from microsight.errors import MicrosightError
from microsight.io import Image, open_image_writer


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total} tiles"), TimeRemainingColumn(),
                    disable=not enabled, transient=False)


def predict_item(model: Model, item: np.ndarray, settings: TileSettings | None = None
                 ) -> np.ndarray:
    """Predict one channels-first item held in memory.

    Parameters
    ----------
    model : Model
        Loaded model.
    item : numpy.ndarray
        ``(C, Y, X)`` or ``(C, Z, Y, X)`` in the input's intensity scale.
    settings : TileSettings, optional
        Tiling; defaults suit the model's dimensionality.

    Returns
    -------
    numpy.ndarray
        ``(C_out, ...)`` float32 prediction in the output intensity scale.
    """
    settings = settings or TileSettings.default(model.ndim)
    x_norm = input_normalizer(model.normalization, lambda: subsample(item))
    y_norm = output_normalizer(model.normalization, x_norm, model.module.out_channels)
    normalized = x_norm.apply(item)
    out = np.zeros((model.module.out_channels, *item.shape[1:]), np.float32)
    predictor = TiledPredictor(model.module, settings)

    def write(region, block):
        out[(slice(None),) + region] = block

    predictor.run(item.shape[1:], lambda r: normalized[(slice(None),) + r], write)
    return y_norm.invert(out)


def predict_image(
    model: Model,
    image: Image,
    out: str | Path | None = None,
    *,
    settings: TileSettings | None = None,
    progress: bool = False,
) -> np.ndarray | Path:
    """Predict every item of an image, streaming from and to disk when ``out`` is given.

    Parameters
    ----------
    model : Model
        Loaded model.
    image : Image
        Input (numpy or lazy array) with its axes.
    out : str or Path, optional
        Output file (``.tif``, ``.ome.zarr``...). Written atomically, tile band by
        tile band, so memory stays bounded by the tile size.
    settings : TileSettings, optional
        Tiling.
    progress : bool
        Show a progress bar.

    Returns
    -------
    numpy.ndarray or Path
        The prediction (axes as the input, channel axis resized) or the path written.
    """
    ndim = model.ndim
    settings = settings or TileSettings.default(ndim)
    name = image.path.name if image.path else "image"
    indices = item_indices(image.axes, image.shape, ndim, name)
    c_out = model.module.out_channels
    axes_out = output_axes(image.axes, c_out)
    shape_out = output_shape(image.axes, image.shape, axes_out, c_out)
    predictor = TiledPredictor(model.module, settings)
    spatial = tuple(s for a, s in zip(image.axes, image.shape, strict=True) if a in "ZYX")
    spatial = spatial[-ndim:]
    step = max(1, int(np.ceil((np.prod(spatial) / 4e6) ** (1 / ndim))))
    result = None if out is not None else np.zeros(shape_out, np.float32)
    writer = (open_image_writer(out, shape_out, np.float32, axes_out, image.pixel_sizes)
              if out is not None else None)
    with _progress(progress) as bar, (writer or nullcontext()) as sink:
        task = bar.add_task(f"predicting {name}", total=len(indices) * predictor.n_tiles(spatial))
        for index in indices:
            def read_raw(region, index=index):
                block = read_item(image.data, image.axes, ndim, index, region)
                if not np.isfinite(block).all():
                    raise MicrosightError(
                        f"{name} contains NaN or infinite values; replace them (e.g. with 0) "
                        "before predicting")
                return block

            x_norm = input_normalizer(
                model.normalization,
                lambda index=index: read_item(image.data, image.axes, ndim, index,
                                              (slice(None, None, step),) * ndim))
            y_norm = output_normalizer(model.normalization, x_norm, c_out)

            def write(region, block, index=index, y_norm=y_norm):
                data = item_to_output(y_norm.invert(block), axes_out, ndim)
                key = write_key(axes_out, ndim, index, region)
                if sink is not None:
                    sink.write(key, data)
                else:
                    result[key] = data

            predictor.run(spatial, lambda r, read_raw=read_raw, x_norm=x_norm:
                          x_norm.apply(read_raw(r)), write,
                          advance=lambda n: bar.advance(task, n))
    return Path(out) if out is not None else result
