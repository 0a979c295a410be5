"""Groups of training items that must stay on one side of the validation split.

Frames of one field of view (50 noisy captures of one sample, the frames of a
time-lapse, tiles cut from one large image) look alike: if some are trained on
and others validated on, the validation score measures memory, not skill.
Items are therefore grouped before the split:

* items of one file share a group (its frames, planes or tiles), except
  different scenes/positions (``S``);
* file names that differ only by a trailing frame or tile number share a
  group: ``fov3_01.tif``, ``fov3-02.tif``, ``fov3_t03.tif``, ``fov3_z04.tif``,
  ``fov3_frame05.tif`` and ``fov3frame06.tif`` all belong to ``fov3``
  (``im0.tif`` and ``im1.tif``, numbers without a separator, stay apart);
* items whose targets are identical share a group (several noisy captures
  trained against one averaged ground truth).

A user's regular expression (``data.group_pattern``, ``--group-pattern``)
replaces the file-name rule: it is searched in each file name and its first
capture group (or, without one, the whole match) names the group.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from microsight.errors import MicrosightError

__all__ = ["DEFAULT_RULE", "check_pattern", "file_of", "group_items", "group_name"]

#: How file names are grouped without a pattern, in words (for summaries and docs).
DEFAULT_RULE = ("file names that differ only by a trailing frame/tile number "
                "(_12, -12, _t12, _z12, _frame12, frame12)")

_EXTENSION = re.compile(r"(\.ome)?\.[A-Za-z0-9]+$", re.IGNORECASE)
_FRAME_NUMBER = re.compile(r"(?:[_-](?:t|z|f|frame|tile)?|frame|tile)\d+$", re.IGNORECASE)
_ITEM_INDEX = re.compile(r"^(?P<file>.*)\[(?P<index>[A-Z]=\d+(?:,[A-Z]=\d+)*)\]$")


def check_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a group pattern, or raise one clear line.

    Parameters
    ----------
    pattern : str
        Regular expression (Python syntax).

    Returns
    -------
    re.Pattern
    """
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise MicrosightError(f"--group-pattern {pattern!r} is not a valid regular "
                              f"expression ({exc})") from None


def file_of(item_name: str) -> tuple[str, str]:
    """The file name of an item name and its scene, e.g. ``('a.tif', 'S=1')``.

    Item names are file names, followed for files with several items by their
    loop indices in brackets (``movie.tif[T=3]``, ``plate.tif[S=1,T=0]``).
    """
    match = _ITEM_INDEX.match(item_name)
    if match is None:
        return item_name, ""
    scenes = [part for part in match["index"].split(",") if part.startswith("S=")]
    return match["file"], ",".join(scenes)


def group_name(file_name: str, pattern: re.Pattern[str] | None = None) -> str:
    """The group a file belongs to.

    Parameters
    ----------
    file_name : str
        File name with its extension.
    pattern : re.Pattern, optional
        Searched in the file name; its first capture group (or the whole match)
        names the group. Without it, a trailing frame/tile number is dropped.

    Returns
    -------
    str
    """
    if pattern is None:
        stem = _EXTENSION.sub("", file_name) or file_name
        return _FRAME_NUMBER.sub("", stem)
    match = pattern.search(file_name)
    if match is None:
        raise MicrosightError(f"--group-pattern {pattern.pattern!r} does not match the file "
                              f"name {file_name}; it must match every file name")
    return match.group(1) if pattern.groups and match.group(1) is not None else match.group(0)


def _target_key(target: np.ndarray) -> bytes | None:
    """A hash of a target's pixels; None for constant targets (empty label images
    are alike without sharing a field of view)."""
    if target.size == 0 or target.min() == target.max():
        return None
    data = np.ascontiguousarray(target, dtype=np.float32).tobytes()
    return hashlib.blake2b(data, digest_size=16).digest() + str(target.shape).encode()


def group_items(names: Sequence[str], targets: Sequence[np.ndarray] | None = None,
                pattern: str | None = None) -> list[int]:
    """Group ids of items: items of one group must stay on one side of the split.

    Parameters
    ----------
    names : sequence of str
        Item names (file names, with ``[T=3]``-style indices for items of one file).
    targets : sequence of numpy.ndarray, optional
        The items' targets: identical (non-constant) targets join their items.
    pattern : str, optional
        Regular expression naming the group in each file name (see
        :func:`group_name`); default :data:`DEFAULT_RULE`.

    Returns
    -------
    list of int
        One id per item, numbered from 0 in order of first appearance.
    """
    regex = check_pattern(pattern) if pattern else None
    parent = list(range(len(names)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(keys: Sequence[object]) -> None:
        first: dict[object, int] = {}
        for i, key in enumerate(keys):
            if key is None:
                continue
            if key in first:
                parent[root(i)] = root(first[key])
            else:
                first[key] = i

    files = [file_of(n) for n in names]
    join([(group_name(f, regex), scene) for f, scene in files])
    if targets is not None:
        join([_target_key(np.asarray(t)) for t in targets])
    ids: dict[int, int] = {}
    return [ids.setdefault(root(i), len(ids)) for i in range(len(names))]
