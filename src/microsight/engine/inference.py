"""Apply a model to arrays and image files, in memory or streamed to disk.

Two extension points let methods whose output grid differs from the input's
use the same entry points:

- ``module.output_scale`` (integer, default 1): the network's output is that
  many times larger along every spatial axis (super-resolution). Tiled
  prediction, output shapes and pixel sizes follow it.
- a ``predict_item(model, item, settings)`` classmethod on the module class
  replaces tiled prediction for one channels-first item (e.g. care-iso,
  which resamples Z and runs a 2D network over XZ and YZ slices). Such
  items have ``config.method.item_ndim`` spatial axes when the method
  declares it (``CZYX`` items for a 2D network), else the model's ``ndim``.
  The whole item is held in memory, and the output's spatial shape (hence
  its pixel sizes) is whatever the hook returns.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from pathlib import Path

import numpy as np

from microsight.data.layout import (
    check_channels,
    finite_region_reader,
    item_indices,
    item_sampler,
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
    output_scale,
)
from microsight.engine.progress import progress_bar
from microsight.errors import MicrosightError
from microsight.io import Image, open_image_writer

# A method's own ``predict_item(model, item, settings) -> prediction``.
ItemHook = Callable[..., np.ndarray]


def item_ndim(model: Model) -> int:
    """Spatial axes of the items a model consumes (``method.item_ndim`` or the model's ndim)."""
    return int(getattr(model.config.method, "item_ndim", None) or model.ndim)


def _item_hook(model: Model) -> ItemHook | None:
    """The method's own ``predict_item(model, item, settings)``, if its module class has one."""
    return type(model.module).predict_item


def _spatial_axes(ndim: int) -> str:
    return "YX" if ndim == 2 else "ZYX"


def _resized(axes: str, shape: tuple[int, ...], ndim: int, spatial: tuple[int, ...]
             ) -> tuple[int, ...]:
    """``shape`` (with ``axes``) with its last ``ndim`` spatial sizes replaced by ``spatial``."""
    new = dict(zip(_spatial_axes(ndim), spatial, strict=True))
    return tuple(new.get(a, s) for a, s in zip(axes, shape, strict=True))


def _resized_pixel_sizes(pixel_sizes: dict[str, float], ndim: int, before: tuple[int, ...],
                         after: tuple[int, ...]) -> dict[str, float]:
    """Pixel sizes after resampling the spatial axes from ``before`` to ``after`` pixels."""
    sizes = dict(pixel_sizes)
    for a, n0, n1 in zip(_spatial_axes(ndim), before, after, strict=True):
        if a in sizes and n1 != n0:
            sizes[a] = sizes[a] * n0 / n1
    return sizes


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
        ``(C_out, ...)`` float32 prediction in the output intensity scale, its
        spatial sizes ``output_scale`` times the input's (or as the method's
        own ``predict_item`` hook returns them).
    """
    settings = settings or TileSettings.default(model.ndim)
    hook = _item_hook(model)
    if hook is not None:
        return hook(model, item, settings)
    x_norm = input_normalizer(model.normalization, lambda: subsample(item))
    y_norm = output_normalizer(model.normalization, x_norm, model.module.out_channels)
    normalized = x_norm.apply(item)
    k = output_scale(model.module)
    out = np.zeros((model.module.out_channels, *(s * k for s in item.shape[1:])), np.float32)
    predictor = TiledPredictor(model.module, settings)

    def write(region, block):
        out[(slice(None),) + region] = block

    predictor.run(item.shape[1:], lambda r: normalized[(slice(None),) + r], write)
    return y_norm.invert(out)


class _Uncertainty:
    """Switch a module to also return its uncertainty map, for one prediction."""

    def __init__(self, model: Model, wanted: bool):
        self.module, self.wanted = model.module, wanted
        if wanted and not self.module.has_uncertainty:
            raise MicrosightError(
                f"model {model.config.name} has no uncertainty output; train it with "
                "method.probabilistic: true")

    def __enter__(self) -> None:
        self.module.predict_uncertainty = self.wanted

    def __exit__(self, *exc) -> None:
        self.module.predict_uncertainty = False


def predict_image(
    model: Model,
    image: Image,
    out: str | Path | None = None,
    *,
    settings: TileSettings | None = None,
    progress: bool = False,
    uncertainty: str | Path | bool | None = None,
) -> np.ndarray | Path | tuple:
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
    uncertainty : str, Path or bool, optional
        Also compute the per-pixel uncertainty (Laplace scale, in output
        intensity units) of a probabilistic model: a path writes it there, ``True``
        returns it next to the prediction.

    Returns
    -------
    numpy.ndarray or Path, or a pair of them
        The prediction (axes as the input, channel axis resized, spatial axes
        scaled by the module's ``output_scale``) or the path written; with
        ``uncertainty``, ``(prediction, uncertainty)``.
    """
    ndim = model.ndim
    settings = settings or TileSettings.default(ndim)
    check_channels(image.axes, image.shape, model.module.in_channels,
                   image.path.name if image.path else "the image")
    hook = _item_hook(model)
    if hook is not None:
        if uncertainty:
            raise MicrosightError(f"method {model.method} has no uncertainty output")
        return _predict_image_by_item(model, image, out, hook, settings, progress)
    name = image.path.name if image.path else "image"
    indices = item_indices(image.axes, image.shape, ndim, name)
    c_out = model.module.out_channels
    axes_out = output_axes(image.axes, c_out)
    predictor = TiledPredictor(model.module, settings)
    spatial = tuple(s for a, s in zip(image.axes, image.shape, strict=True) if a in "ZYX")
    spatial = spatial[-ndim:]
    k = predictor.scale
    spatial_out = tuple(s * k for s in spatial)
    shape_out = _resized(axes_out, output_shape(image.axes, image.shape, axes_out, c_out), ndim,
                         spatial_out)
    pixel_sizes = _resized_pixel_sizes(image.pixel_sizes, ndim, spatial, spatial_out)
    result = None if out is not None else np.zeros(shape_out, np.float32)
    spread = np.zeros(shape_out, np.float32) if uncertainty is True else None
    writer = (open_image_writer(out, shape_out, np.float32, axes_out, pixel_sizes)
              if out is not None else None)
    spread_writer = (open_image_writer(uncertainty, shape_out, np.float32, axes_out,
                                       pixel_sizes)
                     if isinstance(uncertainty, (str, Path)) else None)
    with (progress_bar(progress) as bar, (writer or nullcontext()) as sink,
          (spread_writer or nullcontext()) as spread_sink, _Uncertainty(model, bool(uncertainty))):
        task = bar.add_task(f"predicting {name}", total=len(indices) * predictor.n_tiles(spatial))
        for index in indices:
            read_raw = finite_region_reader(image.data, image.axes, ndim, index, name)
            x_norm = input_normalizer(model.normalization, item_sampler(
                image.data, image.axes, ndim, index, spatial))
            y_norm = output_normalizer(model.normalization, x_norm, c_out)

            def write(region, block, index=index, y_norm=y_norm):
                key = write_key(axes_out, ndim, index, region)
                data = item_to_output(y_norm.invert(block[:c_out]), axes_out, ndim)
                if sink is not None:
                    sink.write(key, data)
                else:
                    result[key] = data
                if uncertainty:
                    scale = item_to_output(y_norm.invert_spread(block[c_out:]), axes_out, ndim)
                    if spread_sink is not None:
                        spread_sink.write(key, scale)
                    else:
                        spread[key] = scale

            predictor.run(spatial, lambda r, read_raw=read_raw, x_norm=x_norm:
                          x_norm.apply(read_raw(r)), write,
                          advance=lambda n: bar.advance(task, n))
    prediction = Path(out) if out is not None else result
    if uncertainty:
        return prediction, (Path(uncertainty) if spread is None else spread)
    return prediction


def _predict_image_by_item(model: Model, image: Image, out: str | Path | None, hook: ItemHook,
                           settings: TileSettings, progress: bool) -> np.ndarray | Path:
    """Predict every item with the method's own hook, whole items at a time."""
    ndim = item_ndim(model)
    name = image.path.name if image.path else "image"
    indices = item_indices(image.axes, image.shape, ndim, name)
    c_out = model.module.out_channels
    axes_out = output_axes(image.axes, c_out)
    spatial = tuple(s for a, s in zip(image.axes, image.shape, strict=True) if a in "ZYX")
    spatial = spatial[-ndim:]
    result = sink = None
    with progress_bar(progress, "items") as bar, ExitStack() as stack:
        task = bar.add_task(f"predicting {name}", total=len(indices))
        for index in indices:
            item = read_item(image.data, image.axes, ndim, index)
            if not np.isfinite(item).all():
                raise MicrosightError(
                    f"{name} contains NaN or infinite values; replace them (e.g. with 0) "
                    "before predicting")
            pred = np.asarray(hook(model, item, settings), np.float32)
            spatial_out = tuple(pred.shape[1:])
            if result is None and sink is None:
                shape_out = _resized(axes_out, output_shape(image.axes, image.shape, axes_out,
                                                            c_out), ndim, spatial_out)
                if out is None:
                    result = np.zeros(shape_out, np.float32)
                else:
                    sink = stack.enter_context(open_image_writer(
                        out, shape_out, np.float32, axes_out,
                        _resized_pixel_sizes(image.pixel_sizes, ndim, spatial, spatial_out)))
            key = write_key(axes_out, ndim, index, tuple(slice(0, s) for s in spatial_out))
            data = item_to_output(pred, axes_out, ndim)
            if sink is not None:
                sink.write(key, data)
            else:
                result[key] = data
            bar.advance(task, 1)
    return Path(out) if out is not None else result
