"""Run BioImage Model Zoo packages that microsight did not make, tile by tile.

The package's own pre-processing runs first, on the whole image (its
per-image statistics, e.g. ``scale_range`` percentiles, are those of the
whole image as in any zoo consumer); its network then runs through
microsight's tiled prediction (:class:`~microsight.engine.predict.TiledPredictor`:
overlapping tiles blended, ``--tile``/``--overlap``/``--batch-size``,
progress and cancellation), each tile read with the package's halo of
neighbouring pixels (so that, for a package that declares its receptive field
as a halo, tiles give the whole image's result) and padded to a size the
package accepts; the package's post-processing runs last, on the whole
output. A package whose output is not an image on the input's grid (or an
integer multiple of it), or whose input has axes other than batch, channel
and space, runs untiled, as one piece.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from microsight.engine.predict import TiledPredictor, TileSettings
from microsight.engine.progress import Monitor
from microsight.errors import MicrosightError

_AXIS_LETTERS = {"batch": "B", "channel": "C", "z": "Z", "y": "Y", "x": "X", "time": "T"}


def _axis_letter(axis: Any) -> str:
    name = str(getattr(axis, "id", "") or axis.type)
    letter = _AXIS_LETTERS.get(name.lower())
    if letter is None:
        raise MicrosightError(f"the package's tensor has an axis {name!r} microsight cannot "
                              "fill from an image")
    return letter


def _letters(tensor: Any) -> str:
    return "".join(_axis_letter(a) for a in tensor.axes)


def to_bc(data: np.ndarray, letters: str, spatial: str) -> np.ndarray:
    """``data`` (axes ``letters``) as ``(B, C, *spatial)``, size-1 batch/channel added."""
    for letter in "CB":
        if letter not in letters:
            data, letters = data[None], letter + letters
    return np.transpose(data, [letters.index(a) for a in "BC" + spatial])


def from_bc(data: np.ndarray, letters: str, spatial: str) -> np.ndarray:
    """``(B, C, *spatial)`` back to axes ``letters`` (size-1 batch/channel dropped)."""
    kept = "BC" + spatial
    for letter in "BC":
        if letter not in letters:
            data, kept = data.take(0, axis=kept.index(letter)), kept.replace(letter, "")
    return np.transpose(data, [kept.index(a) for a in letters])


def _members(tensor: Any, descr: Any) -> np.ndarray:
    """A bioimageio.core tensor's data in the axis order of its description."""
    return np.asarray(tensor.data.transpose(*[a.id for a in descr.axes]))


def load_package(path: str | Path) -> Any:
    """The format 0.5 model description of a zoo package, or one clear error."""
    from microsight.engine.bioimageio import _spec

    _spec()
    from bioimageio.spec import load_description

    descr = load_description(str(path), perform_io_checks=False)
    if getattr(descr, "type", None) != "model" or not hasattr(descr, "inputs"):
        raise MicrosightError(f"{Path(path).name} is not a BioImage Model Zoo model package")
    if str(descr.format_version).startswith("0.4"):
        raise MicrosightError(f"{Path(path).name} uses zoo format 0.4; microsight runs format "
                              "0.5 packages (bioimageio update-format converts it)")
    return descr


@dataclass
class TilePlan:
    """How the package's first input and output are cut into tiles.

    ``sizes[i](n)`` is the smallest input size the package accepts along
    spatial axis ``i`` that is at least ``n`` (None: any larger size is
    refused); ``halo`` is the input halo per spatial axis; ``scale`` output
    pixels per input pixel; ``channels`` the output channels.
    """

    spatial: str
    sizes: list
    halo: tuple[int, ...]
    scale: int
    channels: int
    fixed: tuple[int | None, ...]


def _valid_size(size: Any) -> tuple[Any, int | None]:
    """``(smallest accepted size >= n, fixed size or None)`` for one input axis size."""
    if isinstance(size, int):
        return (lambda n, s=size: s if n <= s else None), size
    if hasattr(size, "min") and hasattr(size, "step"):
        lo, step = int(size.min), int(size.step)
        if step == 0:
            return (lambda n, s=lo: s if n <= s else None), lo
        return (lambda n: lo if n <= lo else lo + -(-(n - lo) // step) * step), None
    raise ValueError("data-dependent or referenced input size")


def tile_plan(descr: Any) -> TilePlan | None:
    """How to tile the package, or None when it must run untiled (see the module note)."""
    from bioimageio.core.digest_spec import get_input_halo

    inp, outp = descr.inputs[0], descr.outputs[0]
    want, got = _letters(inp), _letters(outp)
    spatial = "".join(a for a in want if a in "ZYX")
    if (len(descr.inputs) != 1 or set(want) - set("BCZYX") or not spatial
            or "".join(a for a in got if a in "ZYX") != spatial or set(got) - set("BCZYX")):
        return None
    in_axes = {_axis_letter(a): a for a in inp.axes}
    out_axes = {_axis_letter(a): a for a in outp.axes}
    scales = set()
    for letter in spatial:
        size = out_axes[letter].size
        if (not hasattr(size, "tensor_id") or size.tensor_id != inp.id
                or _AXIS_LETTERS.get(str(size.axis_id).lower()) != letter
                or getattr(size, "offset", 0)):
            return None
        ratio = float(in_axes[letter].scale) / float(out_axes[letter].scale)
        if ratio < 1 or ratio != int(ratio):
            return None
        scales.add(int(ratio))
    if len(scales) != 1:
        return None
    try:
        valid = [_valid_size(in_axes[a].size) for a in spatial]
        halos = get_input_halo(descr).get(inp.id, {})
    except (ValueError, AssertionError):
        return None
    halo = []
    for a in spatial:
        h = halos.get(in_axes[a].id)
        halo.append(max(h.left, h.right) if h is not None else 0)
    channels = len(out_axes["C"].channel_names) if "C" in out_axes else 1
    return TilePlan(spatial, [v[0] for v in valid], tuple(halo), scales.pop(), channels,
                    tuple(v[1] for v in valid))


class PackageNetwork:
    """A package's network as :class:`TiledPredictor` runs a module: tiles in, tiles out.

    Each tile batch ``(N, C, *S)`` (pre-processed, with the halo the tiled
    prediction reads around each tile) is padded up to a size the package
    accepts, run by bioimageio.core's model adapter (no pre- or post-processing)
    and cropped back to ``S`` times the scale.
    """

    divisor = 1

    def __init__(self, pipeline: Any, descr: Any, plan: TilePlan):
        self.pipeline, self.plan = pipeline, plan
        self.inp, self.outp = descr.inputs[0], descr.outputs[0]
        self.output_scale = plan.scale
        self.prediction_channels = plan.channels
        self.calls = 0

    def _padded(self, x: np.ndarray) -> np.ndarray:
        """Tiles (with their halo) padded at the end up to a size the package accepts."""
        widths = [(0, 0), (0, 0)]
        for n, size, fixed in zip(x.shape[2:], self.plan.sizes, self.plan.fixed, strict=True):
            full = size(n)
            if full is None:
                raise MicrosightError(f"the package takes tiles of {fixed} pixels, "
                                      f"halo included; got {n}")
            widths.append((0, full - n))
        if not any(w[1] for w in widths):
            return x
        mode = "reflect" if all(w[1] < s for w, s in zip(widths[2:], x.shape[2:],
                                                         strict=True)) else "symmetric"
        return np.pad(x, widths, mode=mode)

    def predict_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-processed tiles ``(N, C, *S)`` -> network output tiles ``(N, C_out, *kS)``."""
        from bioimageio.core import Sample, Tensor

        tiles = self._padded(np.ascontiguousarray(x.cpu().numpy(), np.float32))
        spatial = self.plan.spatial
        data = from_bc(tiles, _letters(self.inp), spatial)
        sample = Sample(members={self.inp.id: Tensor.from_numpy(
            data, dims=[a.id for a in self.inp.axes])}, stat={}, id="tile")
        result = self.pipeline.predict_sample_without_blocking(
            sample, skip_preprocessing=True, skip_postprocessing=True,
            skip_input_padding=True, skip_output_cropping=True)
        self.calls += 1
        out = to_bc(_members(result.members[self.outp.id], self.outp), _letters(self.outp),
                    spatial)
        k = self.plan.scale
        crop = (slice(None), slice(None)) + tuple(slice(0, n * k) for n in x.shape[2:])
        return torch.from_numpy(np.ascontiguousarray(out[crop], np.float32))


def _arranged(image: Any, want: str) -> np.ndarray:
    """The image's pixels in the package's input axis order (batch, channel added)."""
    data, axes = np.asarray(image.numpy(), np.float32), image.axes
    for letter in "CB":
        if letter in want and letter not in axes:
            data, axes = data[None], letter + axes
    if sorted(axes) != sorted(want):
        raise MicrosightError(f"the package wants an image with axes {want.replace('B', '')} "
                              f"but this image has {image.axes}; pass --axes or reorder it")
    return np.transpose(data, [axes.index(a) for a in want])


def _tiled(pipeline: Any, descr: Any, plan: TilePlan, sample: Any, settings: TileSettings,
           progress: bool) -> np.ndarray:
    """Pre-process the whole sample, predict it tile by tile; output in the output's axes."""
    from rich.progress import Progress

    inp, outp = descr.inputs[0], descr.outputs[0]
    want, got = _letters(inp), _letters(outp)
    pipeline.apply_preprocessing(sample)
    x = to_bc(np.asarray(_members(sample.members[inp.id], inp), np.float32), want,
              plan.spatial)
    network = PackageNetwork(pipeline, descr, plan)
    if any(f is not None for f in plan.fixed):
        tile = tuple(f - 2 * h if f is not None else t for f, h, t in
                     zip(plan.fixed, plan.halo, settings.tile, strict=True))
        settings = TileSettings(tile, tuple(min(o, t // 4) for o, t in
                                            zip(settings.overlap, tile, strict=True)),
                                settings.batch_size, monitor=settings.monitor)
    if "B" not in want:
        settings = TileSettings(settings.tile, settings.overlap, 1, settings.output_sized,
                                settings.monitor)
    predictor = TiledPredictor(network, settings, torch.device("cpu"), halo=plan.halo)
    spatial = x.shape[2:]
    result = np.zeros((x.shape[0], plan.channels, *[s * plan.scale for s in spatial]),
                      np.float32)
    with Progress(disable=not progress, transient=False) as bar:
        for b in range(x.shape[0]):
            task = bar.add_task("predicting", total=predictor.n_tiles(spatial))

            def write(region, block, b=b):
                result[(b, slice(None)) + region] = block

            predictor.run(spatial, lambda r, b=b: x[(b, slice(None)) + r], write,
                          advance=lambda n, task=task: bar.advance(task, n))
    return from_bc(result, got, plan.spatial)


def predict_package(path: str | Path, image: Any, out: str | Path | None = None, *,
                    tile: int | None = None, overlap: int | None = None,
                    batch_size: int | None = None, progress: bool = False,
                    monitor: Monitor | None = None) -> Any:
    """Run a zoo package that is not a microsight model, with its own processing.

    The package's first input is filled from ``image`` (a
    :class:`~microsight.io.Image`; batch and channel axes added when the image
    lacks them) and its first output is returned in microsight's axes, or
    written to ``out``. bioimageio.core runs the weights (PyTorch state dict,
    TorchScript or ONNX) and the pre/post-processing; the network runs tile by
    tile (see the module note).

    Parameters
    ----------
    path : str or Path
        The package (``.zip``).
    image : Image
        The input.
    out : str or Path, optional
        Where to write the output.
    tile, overlap, batch_size : int, optional
        Tiling, as for microsight's own models.
    progress : bool
        Show a progress bar.
    monitor : Monitor, optional
        Progress callback and cancellation.

    Returns
    -------
    numpy.ndarray or Path
    """
    from bioimageio.core import Sample, Tensor, create_prediction_pipeline

    from microsight.axes import validate_axes

    descr = load_package(path)
    inp, outp = descr.inputs[0], descr.outputs[0]
    want = _letters(inp)
    data = _arranged(image, want)
    sample = Sample(members={inp.id: Tensor.from_numpy(data, dims=[a.id for a in inp.axes])},
                    stat={}, id="image")
    plan = tile_plan(descr)
    with create_prediction_pipeline(descr) as pipeline:
        if plan is None:
            output = pipeline.predict_sample_without_blocking(sample)
        else:
            settings = TileSettings.default(len(plan.spatial), tile, overlap, batch_size,
                                            monitor)
            result = _tiled(pipeline, descr, plan, sample, settings, progress)
            output = Sample(members={outp.id: Tensor.from_numpy(
                result, dims=[a.id for a in outp.axes])}, stat=sample.stat, id="image")
            pipeline.apply_postprocessing(output)
        result = _members(output.members[outp.id], outp)
    got = _letters(outp)
    if "B" in got:
        result, got = result.take(0, axis=got.index("B")), got.replace("B", "")
    if "C" in got and result.shape[got.index("C")] == 1 and "C" not in image.axes:
        result, got = result.take(0, axis=got.index("C")), got.replace("C", "")
    got = validate_axes(got, result.ndim)
    if out is None:
        return result
    from microsight.io import write_image

    sizes = {a: v for a, v in image.pixel_sizes.items() if a in got}
    return write_image(out, result, got, sizes)
