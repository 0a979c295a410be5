"""Axes strings: the one convention for dimension names.

Every array in microsight travels with an axes string made of letters from
``STCZYX`` (sample, time, channel, depth, height, width), each at most once,
in that order or any other. Functions here validate and reorder them; they
never guess.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from microsight.errors import MicrosightError

VALID_AXES = "STCZYX"


def validate_axes(axes: str, ndim: int | None = None, *, name: str = "image") -> str:
    """Check an axes string and return it upper-cased.

    Parameters
    ----------
    axes : str
        Axes letters, e.g. ``"YX"`` or ``"tzyx"``.
    ndim : int, optional
        Number of array dimensions the string must describe.
    name : str
        What the axes belong to, used in the error message.

    Returns
    -------
    str
        The upper-cased axes string.

    Raises
    ------
    MicrosightError
        If a letter is unknown or repeated, ``Y``/``X`` are missing, or the
        length does not match ``ndim``.
    """
    up = axes.upper()
    bad = sorted(set(up) - set(VALID_AXES))
    if bad:
        raise MicrosightError(
            f"{name}: axes '{axes}' contain unknown letter(s) {''.join(bad)}; "
            f"use letters from {VALID_AXES}"
        )
    if len(set(up)) != len(up):
        raise MicrosightError(f"{name}: axes '{axes}' repeat a letter")
    if "Y" not in up or "X" not in up:
        raise MicrosightError(f"{name}: axes '{axes}' must contain Y and X")
    if ndim is not None and len(up) != ndim:
        raise MicrosightError(
            f"{name}: axes '{axes}' name {len(up)} dimension(s) but the image has "
            f"{ndim}; pass --axes with {ndim} letters from {VALID_AXES}"
        )
    return up


def transpose_to(data: np.ndarray, axes: str, target: str) -> np.ndarray:
    """Reorder ``data`` from ``axes`` to ``target``, adding size-1 axes as needed.

    Parameters
    ----------
    data : numpy.ndarray
        Array whose dimensions are named by ``axes``.
    axes : str
        Current axes string.
    target : str
        Wanted axes string. Letters of ``axes`` missing from ``target`` must
        have size 1 (they are dropped); letters of ``target`` missing from
        ``axes`` are inserted with size 1.

    Returns
    -------
    numpy.ndarray
        A view (or copy) of ``data`` with axes ``target``.
    """
    axes, target = axes.upper(), target.upper()
    for i, a in enumerate(axes):
        if a not in target:
            if data.shape[i] != 1:
                raise MicrosightError(
                    f"cannot drop axis {a} of size {data.shape[i]} to get axes {target}"
                )
    keep = [a for a in axes if a in target]
    squeezed = data.reshape([s for a, s in zip(axes, data.shape, strict=True) if a in target])
    order = [keep.index(a) for a in target if a in keep]
    out = np.transpose(squeezed, order)
    present = [a for a in target if a in keep]
    for i, a in enumerate(target):
        if a not in present:
            out = np.expand_dims(out, i)
    return out


def spatial_axes(axes: str) -> str:
    """Return the spatial letters (``ZYX`` subset) of ``axes`` in order."""
    return "".join(a for a in axes.upper() if a in "ZYX")


def axis_sizes(axes: str, shape: Sequence[int]) -> dict[str, int]:
    """Map each axis letter to its size."""
    return dict(zip(axes.upper(), (int(s) for s in shape), strict=True))
