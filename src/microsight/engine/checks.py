"""Checks of a command's inputs made before any long work, each failing with one line."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from microsight.engine.bundle import Model
from microsight.errors import MicrosightError
from microsight.io import Image, read_images


def check_counts(**counts: int | None) -> None:
    """Refuse counts below 1 (epochs, steps, batch size), named as the CLI options."""
    for name, value in counts.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise MicrosightError(f"--{name.replace('_', '-')} must be a whole number >= 1, "
                                  f"got {value!r}")


def check_tiling(tile: int | None, overlap: int | None, batch_size: int | None) -> None:
    """Refuse tile sizes, overlaps and batch sizes that cannot work, before any work."""
    check_counts(batch_size=batch_size)
    if tile is not None and (not isinstance(tile, int) or tile < 8):
        raise MicrosightError(f"--tile must be a whole number of pixels >= 8 (e.g. 256), "
                              f"got {tile!r}")
    if overlap is not None:
        if not isinstance(overlap, int) or overlap < 0:
            raise MicrosightError(f"--overlap must be a whole number of pixels >= 0, "
                                  f"got {overlap!r}")
        if tile is not None and 2 * overlap >= tile:
            raise MicrosightError(f"--overlap {overlap} must be less than half of --tile "
                                  f"{tile}; use a smaller overlap or a larger tile")


def check_image_size(image: Image) -> None:
    """Refuse images too small to hold anything a network could see (1x1, 3x3...)."""
    small = {a: n for a, n in zip(image.axes, image.shape, strict=True) if a in "YX" and n < 4}
    if small:
        name = image.path.name if image.path else "the image"
        raise MicrosightError(f"{name} is only {'x'.join(map(str, image.shape))} pixels "
                              f"({image.axes}); give an image of at least 4x4 pixels")


def require_label_images(target: str | Path, axes: str | None) -> None:
    """Refuse segmentation targets that are intensities, not label images."""
    for im in read_images(target, axes=axes):
        data = np.asarray(im.data)
        if (data.dtype.kind == "f" and not (np.isfinite(data).all() and
                                           np.array_equal(data, np.round(data)))) or (
                data.dtype.kind not in "uifb") or (data.size and data.min() < 0):
            raise MicrosightError(
                f"{im.path.name if im.path else 'a target'} is not a label image (whole "
                "numbers >= 0, one per object); give the annotations as --target, not the "
                "intensity images")


def warn_if_incomplete(models: list[Model]) -> None:
    """Warn when a bundle's training stopped before its last steps (thresholds, report)."""
    for m in models:
        if m.qc.get("complete") is False:
            warnings.warn(f"{m.path or m.config.name} is an unfinished training run (its "
                          "after-training steps did not complete); finish it with "
                          "'microsight train ... --resume'", IncompleteModelWarning,
                          stacklevel=3)


class IncompleteModelWarning(UserWarning):
    """A bundle whose training was interrupted before its final steps."""


def check_checkpoint(path: Path) -> None:
    """Refuse a checkpoint that holds anything but tensors and plain values.

    ``torch.load(weights_only=True)`` never runs code from the file: a checkpoint
    crafted to execute something when unpickled fails here, before training
    starts, with one line.
    """
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError...
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
        raise MicrosightError(
            f"{path} is not a plain training checkpoint ({type(exc).__name__}: {first}); "
            "refusing to load it: delete the checkpoints folder and train again") from None
