"""Label-free training data: transmitted-light inputs, fluorescence targets, alignment.

Inputs and targets usually come from different files with different axes: a
phase-contrast z-stack (``ZYX``, its planes used as channels by a 2D model)
and one or more fluorescence planes (``YX`` or ``CYX``). The input axes are
therefore given separately (``input_axes``) and never applied to targets.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from microsight.data.layout import item_indices, read_item
from microsight.data.registration import check_registration
from microsight.errors import MicrosightError
from microsight.io import Image, read_images
from microsight.methods.labelfree.config import LabelfreeConfig


def as_channels(image: Image, z_as_channels: bool) -> Image:
    """Relabel the Z axis of ``image`` as channels when ``z_as_channels`` asks for it.

    Raises
    ------
    MicrosightError
        When the image has both a C and a Z axis (which one would be the channels?).
    """
    if not z_as_channels or "Z" not in image.axes:
        return image
    name = image.path.name if image.path else "image"
    if "C" in image.axes:
        raise MicrosightError(
            f"{name} has axes {image.axes}: both C and Z; z_as_channels needs a single "
            "stack (pass --axes to name the planes, or split the channels)")
    sizes = {k: v for k, v in image.pixel_sizes.items() if k != "Z"}
    return Image(image.data, image.axes.replace("Z", "C"), sizes, image.path)


def _items(image: Image, ndim: int) -> list[np.ndarray]:
    name = image.path.name if image.path else "image"
    items = [read_item(image.data, image.axes, ndim, ix)
             for ix in item_indices(image.axes, image.shape, ndim, name)]
    if not all(np.isfinite(x).all() for x in items):
        raise MicrosightError(
            f"{name} contains NaN or infinite values; replace them (e.g. with 0) first")
    return items


def _pairs(inputs: list[Image], targets: list[Image]) -> list[tuple[Image, Image]]:
    if len(inputs) == 1 and len(targets) == 1:
        return [(inputs[0], targets[0])]
    by_name = {t.path.name: t for t in targets if t.path}
    pairs = []
    for im in inputs:
        partner = by_name.get(im.path.name if im.path else "")
        if partner is None:
            raise MicrosightError(
                f"{im.path.name if im.path else 'an input'} has no target with the same file "
                "name; inputs and targets are paired by file name")
        pairs.append((im, partner))
    if len(pairs) != len(targets):
        raise MicrosightError("some targets have no input of the same file name")
    return pairs


def load_pairs(method: LabelfreeConfig, input_path: str | Path, target_path: str | Path, *,
               ndim: int, axes: str | None = None
               ) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """Read input/target pairs as channels-first float32 items.

    Parameters
    ----------
    method : LabelfreeConfig
        Supplies ``input_axes`` and ``z_as_channels``.
    input_path, target_path : str or Path
        Files or folders (paired by file name).
    ndim : int
        Spatial dimensions of the model.
    axes : str, optional
        Axes of the input files (overrides ``method.input_axes``); targets
        always use their own metadata.

    Returns
    -------
    inputs, targets, summary
    """
    ins = [as_channels(im, method.z_as_channels)
           for im in read_images(input_path, axes=axes or method.input_axes)]
    tgs = read_images(target_path)
    inputs, targets, names = [], [], []
    for im, tg in _pairs(ins, tgs):
        xs, ys = _items(im, ndim), _items(tg, ndim)
        if len(xs) != len(ys) or xs[0].shape[1:] != ys[0].shape[1:]:
            raise MicrosightError(
                f"{im.path.name if im.path else 'input'} ({im.axes} {im.shape}) and its target "
                f"({tg.axes} {tg.shape}) differ in size; they must cover the same pixels")
        n = len(xs)
        base = im.path.name if im.path else "image"
        names += [base] if n == 1 else [f"{base}[{i}]" for i in range(n)]
        inputs += xs
        targets += ys
    for what, group in (("input", inputs), ("target", targets)):
        if len({x.shape[0] for x in group}) > 1:
            raise MicrosightError(f"all {what} images must have the same number of channels")
    summary = {"input": str(input_path), "target": str(target_path), "files": len(ins),
               "axes": sorted({im.axes for im in ins}),
               "target_axes": sorted({t.axes for t in tgs}),
               "shapes": sorted({"x".join(map(str, im.shape)) for im in ins}),
               "pixel_sizes_um": ins[0].pixel_sizes, "items": len(inputs),
               "item_names": names}
    return inputs, targets, summary


def target_names(method: LabelfreeConfig, n_targets: int) -> list[str]:
    """Report names of the target channels (configured, or ``target0``, ``target1``...)."""
    names = method.target_names
    if names is None:
        return [f"target{c}" for c in range(n_targets)]
    if len(names) != n_targets:
        raise MicrosightError(
            f"method.target_names has {len(names)} names but the targets have {n_targets} "
            "channels; give one name per channel")
    return list(names)


def registration_report(inputs: list[np.ndarray], targets: list[np.ndarray],
                        method: LabelfreeConfig, item_names: list[str]) -> list[dict]:
    """Check every pair's alignment; warn (with the shift in pixels) when it is off.

    Returns
    -------
    list of dict
        One row per item and target channel: ``item``, ``target``, ``shift_px``
        (the shift that would register the target onto the input), ``reliable``
        (both halves of the image agree) and ``misaligned``.
    """
    names = target_names(method, targets[0].shape[0])
    rows = []
    for item, x, y in zip(item_names, inputs, targets, strict=True):
        for check in check_registration(x, y, tolerance=method.registration_tolerance):
            shift = [round(s, 2) for s in check.shift]
            rows.append({"item": item, "target": names[check.channel], "shift_px": shift,
                         "reliable": check.reliable, "misaligned": check.misaligned})
            if check.misaligned:
                warnings.warn(
                    f"{item}: target {names[check.channel]} looks shifted from the input by "
                    f"{[-s for s in shift]} pixels (axes {'YX' if len(shift) == 2 else 'ZYX'}); "
                    "register the images before training (the network would learn a blur)",
                    stacklevel=2)
    return rows
