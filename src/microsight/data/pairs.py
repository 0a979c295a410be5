"""Training images: load, pair and check (the split is in :mod:`microsight.data.split`).

Everything a user can get wrong about training data is caught here, with
one line naming the file and the fix: missing partners, mismatched shapes,
NaN/Inf, images smaller than a patch, empty folders.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from microsight.data.layout import item_indices, read_item
from microsight.data.split import TrainingSet, split_items
from microsight.errors import ColourWarning, MicrosightError
from microsight.io import Image, read_images
from microsight.io.image import colour_to_grey

# TrainingSet and split_items live in data.split; importable from here as before.
__all__ = ["TrainingSet", "check_complex", "load_items", "split_items"]


def _grey(images: list[Image]) -> list[Image]:
    """Colour images made grey (as prediction does for one-channel models), said once."""
    out = [colour_to_grey(im) or im for im in images]
    made = sum(a is not b for a, b in zip(images, out, strict=True))
    if made:
        warnings.warn(f"{made} of {len(images)} input image(s) are colour and the model takes "
                      "one channel: they were made grey (the mean of R, G and B)",
                      ColourWarning, stacklevel=3)
    return out


def check_complex(image: Image) -> None:
    """Refuse complex pixels: dropping the imaginary part silently would change the data."""
    if np.dtype(image.data.dtype).kind == "c":
        name = image.path.name if image.path else "the image"
        raise MicrosightError(f"{name} has complex pixels; save the magnitude (or real and "
                              "imaginary parts as channels) as a real-valued image first")


def _item_names(image: Image, ndim: int) -> list[str]:
    name = image.path.name if image.path else "image"
    indices = item_indices(image.axes, image.shape, ndim, name)
    if len(indices) == 1:
        return [name]
    return [name + "[" + ",".join(f"{a}={i}" for a, i in ix.items()) + "]" for ix in indices]


def _items(image: Image, ndim: int) -> list[np.ndarray]:
    name = image.path.name if image.path else "image"
    out = []
    for index in item_indices(image.axes, image.shape, ndim, name):
        item = read_item(image.data, image.axes, ndim, index)
        if not np.isfinite(item).all():
            raise MicrosightError(
                f"{name} contains NaN or infinite values; replace them (e.g. with 0) first"
            )
        out.append(item)
    return out


def _pair_images(inputs: list[Image], targets: list[Image], notes: list[str]
                 ) -> list[tuple[Image, Image]]:
    if len(inputs) == 1 and len(targets) == 1:
        a, b = inputs[0].path, targets[0].path
        if a and b and a.name != b.name:
            notes.append(f"input {a.name} and target {b.name} have different names; they are "
                         "used as a pair because each is a single file")
        return [(inputs[0], targets[0])]
    by_name = {t.path.name: t for t in targets if t.path}
    pairs = []
    for im in inputs:
        partner = by_name.get(im.path.name if im.path else "")
        if partner is None:
            folder = targets[0].path.parent if targets[0].path else "target"
            raise MicrosightError(
                f"{im.path.name if im.path else 'an input'} has no target with the same "
                f"file name in {folder}; inputs and targets are paired by file name"
            )
        pairs.append((im, partner))
    if len(pairs) != len(targets):
        extra = sorted(set(by_name) - {i.path.name for i in inputs if i.path})
        raise MicrosightError(f"target(s) without an input of the same name: {', '.join(extra)}")
    return pairs


def load_items(
    input_path: str | Path,
    target_path: str | Path | None,
    *,
    ndim: int,
    axes: str | None = None,
    target_scale: int = 1,
    grey_colour: bool = False,
) -> tuple[list[np.ndarray], list[np.ndarray] | None, dict]:
    """Read training inputs (and targets) as channels-first float32 items.

    Parameters
    ----------
    input_path, target_path : str or Path
        A file or a folder each; folders are paired by file name.
    ndim : int
        Spatial dimensions of the model (2 or 3).
    axes : str, optional
        Axes override for every file.
    target_scale : int
        Targets are this many times larger than inputs along Y and X
        (super-resolution); 1 otherwise.
    grey_colour : bool
        Make 8-bit colour (RGB) inputs grey, the mean of R, G and B, with one
        :class:`~microsight.errors.ColourWarning`: for a model that takes one channel.

    Returns
    -------
    inputs, targets, summary
        Lists of items (``targets`` is ``None`` without ``target_path``) and a
        plain-JSON summary of what was read; its ``warnings`` say what would make
        a model trained on them meaningless (constant images, targets equal to
        inputs...), shown by training once every check has passed.
    """
    in_images = read_images(input_path, axes=axes)
    for im in in_images:
        check_complex(im)
    if grey_colour:
        in_images = _grey(in_images)
    summary: dict = {
        "input": str(input_path),
        "files": len(in_images),
        "axes": sorted({im.axes for im in in_images}),
        "shapes": sorted({"x".join(map(str, im.shape)) for im in in_images}),
        "pixel_sizes_um": in_images[0].pixel_sizes,
    }
    if target_path is None:
        inputs = [it for im in in_images for it in _items(im, ndim)]
        summary["warnings"] = _constant(inputs, "input")
        summary["items"] = len(inputs)
        summary["item_names"] = [n for im in in_images for n in _item_names(im, ndim)]
        return inputs, None, summary
    notes: list[str] = []
    if Path(input_path).resolve() == Path(target_path).resolve():
        notes.append(f"--target {target_path} is the same as --input: the model learns to "
                     "copy its input and its validation loss means nothing")
    tg_images = read_images(target_path, axes=axes)
    for im in tg_images:
        check_complex(im)
    summary["target"] = str(target_path)
    inputs, targets, names = [], [], []
    for im, tg in _pair_images(in_images, tg_images, notes):
        names += _item_names(im, ndim)
        xs, ys = _items(im, ndim), _items(tg, ndim)
        want = xs[0].shape[1:-2] + tuple(n * target_scale for n in xs[0].shape[-2:])
        if len(xs) != len(ys) or ys[0].shape[1:] != want:
            raise MicrosightError(
                f"{im.path.name if im.path else 'input'} has shape {im.shape} ({im.axes}) but "
                f"its target has shape {tg.shape} ({tg.axes}); input and target must match"
            )
        inputs += xs
        targets += ys
    for name, group in (("input", inputs), ("target", targets)):
        if len({x.shape[0] for x in group}) > 1:
            raise MicrosightError(f"all {name} images must have the same number of channels")
    notes += _constant(inputs, "input") + _constant(targets, "target")
    if not notes and any(x.shape == y.shape and np.array_equal(x, y)
                         for x, y in zip(inputs, targets, strict=True)):
        notes.append("some targets are identical to their inputs: the model learns to copy "
                     "them and its validation loss means nothing")
    summary["warnings"] = notes
    summary["items"] = len(inputs)
    summary["item_names"] = names
    return inputs, targets, summary


def _constant(items: list[np.ndarray], what: str) -> list[str]:
    """A note about constant items (all zero: e.g. label images with no objects)."""
    flat = [i for i, x in enumerate(items) if x.size and x.min() == x.max()]
    if not flat:
        return []
    value = float(items[flat[0]].flat[0])
    kind = "all zero (label images with no objects?)" if value == 0 else f"constant ({value:g})"
    share = "every" if len(flat) == len(items) else f"{len(flat)} of {len(items)}"
    return [f"{share} {what} image(s) are {kind}: there is nothing to learn from them"]
