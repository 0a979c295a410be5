"""Training and validation data: the automatic split, or validation images given apart.

The automatic split holds out whole groups of items (a field of view with
all its frames, see :mod:`microsight.data.groups`), so that validation
never scores the network on captures of what it trained on. With a single
group (one image, one movie, frames of one field of view) it holds out the
bottom rows of every item instead: a part of the field of view no training
patch comes from. Validation images given apart (``--val-input``) replace
the split: training keeps every training item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microsight.data.groups import DEFAULT_RULE, file_of, group_items
from microsight.errors import MicrosightError

__all__ = ["TrainingSet", "given_split", "load_and_split", "split_items"]

#: The fix for validation that repeats training data, quoted by every warning about it.
SPLIT_FIX = ("give validation images of other fields of view with --val-input/--val-target, "
             "or name the field of view in the file names with --group-pattern REGEX")

#: ``(input_path, target_path) -> (inputs, targets, summary)``: a method's reader of items.
Loader = Callable[[Any, Any], tuple[list[np.ndarray], list[np.ndarray] | None, dict]]


@dataclass
class TrainingSet:
    """Channels-first float32 items, split into training and validation."""

    train_inputs: list[np.ndarray]
    train_targets: list[np.ndarray] | None
    val_inputs: list[np.ndarray]
    val_targets: list[np.ndarray] | None
    summary: dict = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        return int(self.train_inputs[0].shape[0])

    @property
    def out_channels(self) -> int:
        src = self.train_targets if self.train_targets is not None else self.train_inputs
        return int(src[0].shape[0])


def check_size(items: list[np.ndarray], patch: list[int], what: str) -> None:
    """Refuse items smaller than a training patch."""
    for x in items:
        if any(s < p for s, p in zip(x.shape[1:], patch, strict=True)):
            size = "x".join(map(str, x.shape[1:]))
            raise MicrosightError(
                f"a {what} image is {size} pixels but patch_size is "
                f"{'x'.join(map(str, patch))}; use a smaller --patch-size"
            )


def _files(names: Sequence[str]) -> list[str]:
    """The distinct file names of item names, in order."""
    return list(dict.fromkeys(file_of(n)[0] for n in names))


def _listing(names: Sequence[str], limit: int = 6) -> str:
    files = _files(names)
    more = f" (+{len(files) - limit} more)" if len(files) > limit else ""
    return ", ".join(files[:limit]) + more


def _pick(seq: list[np.ndarray] | None, idx: Sequence[int]) -> list[np.ndarray] | None:
    return None if seq is None else [seq[i] for i in idx]


def _by_groups(groups: list[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Validation and training item indices: whole groups, in a seeded random order,
    as many as fit in the validation share (at least one group on each side)."""
    sizes = np.bincount(groups)
    order = [int(g) for g in np.random.default_rng(seed).permutation(len(sizes))]
    want = max(1, round(len(groups) * val_fraction))
    chosen: list[int] = []
    for g in order:
        if sizes[chosen].sum() + sizes[g] <= want:
            chosen.append(g)
    if not chosen:  # every group is larger than the share: the smallest one
        chosen = [min(order, key=lambda g: sizes[g])]
    if len(chosen) == len(sizes):
        chosen.pop()
    val = [i for i, g in enumerate(groups) if g in chosen]
    train = [i for i, g in enumerate(groups) if g not in chosen]
    return val, train


def _bands(inputs, targets, val_fraction: float, patch_rows: int) -> TrainingSet | None:
    """Top rows of every item for training, bottom rows for validation; None when an
    item is too short to keep a patch on both sides."""
    cuts = []
    for x in inputs:
        rows = x.shape[-2]
        n_val = max(patch_rows, int(round(rows * val_fraction)))
        if rows - n_val < patch_rows:
            return None
        cuts.append(rows - n_val)

    def part(seq, top: bool):
        if seq is None:
            return None
        return [x[..., :c, :].copy() if top else x[..., c:, :].copy()
                for x, c in zip(seq, cuts, strict=True)]

    data = TrainingSet(part(inputs, True), part(targets, True),
                       part(inputs, False), part(targets, False))
    if len(inputs) == 1:
        rows = inputs[0].shape[-2]
        data.summary["split"] = (f"one image: rows 0-{cuts[0] - 1} for training, rows "
                                 f"{cuts[0]}-{rows - 1} for validation")
    else:
        data.summary["split"] = (f"one field of view in {len(inputs)} items: the top rows of "
                                 f"each for training, its bottom {val_fraction:.0%} (at least "
                                 "one patch) for validation")
    return data


def split_items(
    inputs: list[np.ndarray],
    targets: list[np.ndarray] | None,
    *,
    val_fraction: float,
    patch_size: list[int],
    seed: int = 0,
    names: Sequence[str] | None = None,
    group_pattern: str | None = None,
) -> TrainingSet:
    """Hold out validation data: whole groups of items, else a band of rows of each.

    Parameters
    ----------
    inputs, targets : list of array
        Channels-first items (``targets`` may be ``None`` for self-supervised methods).
    val_fraction : float
        Share of the data to hold out.
    patch_size : list of int
        Training patch size; both parts must hold at least one patch.
    seed : int
        Seed of the group shuffle.
    names : sequence of str, optional
        Item names (file names, ``movie.tif[T=3]`` for items of one file) from
        which groups are made; without them every item is its own group.
    group_pattern : str, optional
        Regular expression naming the group in each file name (see
        :func:`microsight.data.groups.group_name`).

    Returns
    -------
    TrainingSet
        Its ``summary`` says how the split was made (``split``, ``split_rule``:
        ``groups``, ``rows`` or ``images``), which items were held out
        (``val_items``, ``val_names``) and, in ``split_warnings``, what to do
        when the split could not keep fields of view apart.
    """
    check_size(inputs, patch_size, "training")
    if names is None or len(names) != len(inputs):
        names, group_pattern, rule = [f"#{i}" for i in range(len(inputs))], None, "each item"
    else:
        rule = f"pattern {group_pattern!r}" if group_pattern else DEFAULT_RULE
    groups = group_items(names, targets, group_pattern)
    n_groups = max(groups) + 1
    info: dict[str, Any] = {"groups": n_groups, "group_rule": rule}
    if n_groups >= 2:
        val_idx, train_idx = _by_groups(groups, val_fraction, seed)
        n_val_groups = len({groups[i] for i in val_idx})
        data = TrainingSet(_pick(inputs, train_idx), _pick(targets, train_idx),
                           _pick(inputs, val_idx), _pick(targets, val_idx))
        data.summary = {
            "split": f"{len(train_idx)} item(s) for training, {len(val_idx)} for validation "
                     f"(whole groups: {n_groups - n_val_groups} and {n_val_groups} of "
                     f"{n_groups}, grouped by {rule})",
            "split_rule": "groups", "val_items": [int(i) for i in val_idx],
            "val_names": [names[i] for i in val_idx], **info}
        return data
    data = _bands(inputs, targets, val_fraction, patch_size[-2])
    if data is not None:
        data.summary.update({"split_rule": "rows", "val_names": list(names), **info})
        if len(inputs) > 1:
            data.summary["split_warnings"] = [_one_group_warning(len(inputs), rule, True)]
        return data
    if len(inputs) == 1:
        rows = inputs[0].shape[-2]
        n_val = max(patch_size[-2], int(round(rows * val_fraction)))
        raise MicrosightError(
            f"the single training image has {rows} rows: too few to hold out {n_val} rows "
            "for validation and keep a patch for training; give more images or a smaller "
            "patch")
    order = np.random.default_rng(seed).permutation(len(inputs))
    n_val = max(1, round(len(inputs) * val_fraction))
    val_idx, train_idx = sorted(order[:n_val]), sorted(order[n_val:])
    data = TrainingSet(_pick(inputs, train_idx), _pick(targets, train_idx),
                       _pick(inputs, val_idx), _pick(targets, val_idx))
    data.summary = {
        "split": f"{len(train_idx)} item(s) for training, {len(val_idx)} for validation "
                 "(random items: they could not be grouped)",
        "split_rule": "images", "val_items": [int(i) for i in val_idx],
        "val_names": [names[i] for i in val_idx], **info,
        "split_warnings": [_one_group_warning(len(inputs), rule, False)]}
    return data


def _one_group_warning(n: int, rule: str, bands: bool) -> str:
    how = ("validation is the bottom rows of every image instead, a part of the field of "
           "view never trained on" if bands else
           "the images are too small to hold out rows, so validation is random images, which "
           "may repeat training data")
    return (f"all {n} training images form one group ({rule}): no field of view can be held "
            f"out whole; {how}. To validate on other fields of view give "
            "--val-input/--val-target; if the files are different fields of view, give "
            "--group-pattern REGEX naming each (--group-pattern '.+' keeps every file apart).")


def given_split(inputs: list[np.ndarray], targets: list[np.ndarray] | None,
                val_inputs: list[np.ndarray], val_targets: list[np.ndarray] | None, *,
                patch_size: list[int], val_names: Sequence[str] = (),
                axes: tuple[Sequence[str], Sequence[str]] = ((), ())) -> TrainingSet:
    """Train on every training item and validate on the items given apart.

    Parameters
    ----------
    inputs, targets : list of array
        Training items (``targets`` None for self-supervised methods).
    val_inputs, val_targets : list of array
        Validation items, read like the training items.
    patch_size : list of int
        Training patch size (training items must hold one).
    val_names : sequence of str
        Names of the validation items (recorded in the summary).
    axes : tuple
        Axes strings of the training and validation files, for the error messages.

    Returns
    -------
    TrainingSet
    """
    check_size(inputs, patch_size, "training")
    if not val_inputs:
        raise MicrosightError("--val-input holds no images; give a file or a folder of images")
    if (targets is None) != (val_targets is None):
        which = "--val-target" if targets is not None else "--target"
        raise MicrosightError(f"validation needs targets exactly when training has them: "
                              f"give both --target and --val-target, or neither ({which})")
    parts = [("input", inputs, val_inputs)]
    if targets is not None:
        parts.append(("target", targets, val_targets))
    for what, train, val in parts:
        have, got = {x.shape[0] for x in train}, {x.shape[0] for x in val}
        if got != have:
            ax = (f" (axes {', '.join(axes[1])} vs {', '.join(axes[0])})"
                  if axes[0] and axes[1] else "")
            raise MicrosightError(
                f"--val-{what} images have {'/'.join(map(str, sorted(got)))} channel(s) but "
                f"the training {what}s have {'/'.join(map(str, sorted(have)))}{ax}; give "
                "validation images with the same axes and channels as the training images")
    summary = {
        "split": f"all {len(inputs)} training item(s) for training; {len(val_inputs)} "
                 f"validation item(s) given apart (--val-input)",
        "split_rule": "given", "val_names": list(val_names),
    }
    return TrainingSet(list(inputs), None if targets is None else list(targets),
                       list(val_inputs), None if val_targets is None else list(val_targets),
                       summary)


def load_and_split(config: Any, load: Loader, input_path: str | Path,
                   target_path: str | Path | None) -> TrainingSet:
    """Read training items with ``load`` and split them, or read the validation items
    given in ``config.data.val_input``/``val_target`` with the same ``load``.

    Parameters
    ----------
    config : Configuration
        Supplies ``data`` (``val_input``, ``val_target``, ``group_pattern``,
        ``val_fraction``, ``patch_size``) and ``training.seed``.
    load : callable
        ``(input_path, target_path) -> (inputs, targets, summary)``; the summary's
        ``item_names`` (or ``split_names``, when items are not one per file item)
        name the items for grouping.
    input_path, target_path : str or Path
        Training data.

    Returns
    -------
    TrainingSet
        Not normalized; its summary merges the loader's and the split's.
    """
    d = config.data
    inputs, targets, summary = load(input_path, target_path)
    names = summary.pop("split_names", None) or summary.get("item_names")
    if d.val_input:
        vx, vy, vsum = load(d.val_input, d.val_target)
        vnames = vsum.pop("split_names", None) or vsum.get("item_names") or []
        data = given_split(inputs, targets, vx, vy, patch_size=d.patch_size,
                           val_names=vnames,
                           axes=(summary.get("axes", ()), vsum.get("axes", ())))
        data.summary["split_warnings"] = [f"validation images: {w}"
                                          for w in vsum.get("warnings", [])]
        data.summary["validation"] = {k: vsum[k] for k in ("input", "target", "files", "items")
                                      if k in vsum}
    else:
        data = split_items(inputs, targets, val_fraction=d.val_fraction,
                           patch_size=d.patch_size, seed=config.training.seed,
                           names=names, group_pattern=d.group_pattern)
    data.summary["validation_files"] = _listing(data.summary.get("val_names", []))
    data.summary = {**summary, **data.summary}
    return data
