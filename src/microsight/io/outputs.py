"""One check before any command writes: no output may destroy an input or unrelated data.

Every command that writes (predict, train, export, evaluate's report, simulate,
tune) calls :func:`check_output` on each path it will write, before any long
work. It refuses, with one line:

- an output that is one of the command's inputs, or a folder holding one;
- an existing path of another kind (a folder where a file goes, a folder that
  is not an OME-Zarr image where an image goes, a folder holding other files
  where a model goes);
- an existing output of the same kind, unless ``overwrite`` is given;
- a folder the user cannot write in.

The writers then still write under a temporary name and rename, so an output
is either complete or absent.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from microsight.errors import MicrosightError

#: Files that mark a folder as an OME-Zarr store (v3 and v2).
_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray")
#: Kinds of output, and what an existing path of that kind must look like.
KINDS = ("file", "image", "bundle")


def is_zarr_store(path: Path) -> bool:
    """Whether ``path`` is a folder written as a Zarr store (replaceable as an image)."""
    return path.is_dir() and any((path / m).is_file() for m in _ZARR_MARKERS)


def is_bundle(path: Path) -> bool:
    """Whether ``path`` is a microsight model folder."""
    return path.is_dir() and (path / "model.json").is_file()


def _writable(folder: Path) -> bool:
    """Whether new files can be created in ``folder`` (or the nearest existing parent)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def _same_or_inside(folder: Path, path: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it."""
    return path == folder or folder in path.parents


def _resolved(path: str | Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def check_output(path: str | Path, *, inputs: Iterable[str | Path | None] = (),
                 kind: str = "file", overwrite: bool = False, option: str = "--out") -> Path:
    """Refuse an output that would destroy an input or data it was not meant to replace.

    Parameters
    ----------
    path : str or Path
        The output the command will write.
    inputs : iterable of str or Path
        Every file or folder the command reads (``None`` entries are skipped).
    kind : {"file", "image", "bundle"}
        What the output is: a file, an image (a file, or an OME-Zarr folder) or a
        model folder (written into; an existing model is continued with
        ``--resume``, handled by training).
    overwrite : bool
        Replace an existing output of the same kind.
    option : str
        The option that named ``path``, for the message.

    Returns
    -------
    Path
        ``path``, unchanged.

    Raises
    ------
    MicrosightError
        With one line saying what is wrong and how to fix it.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    out = Path(path)
    target = _resolved(out)
    for item in inputs:
        if item is None or not isinstance(item, (str, Path)):
            continue
        source = _resolved(item)
        if _same_or_inside(target, source):
            what = "is" if source == target else "contains"
            raise MicrosightError(
                f"{option} {out} {what} an input of this command ({item}); writing there "
                "would destroy it: choose another output path")
    if not _writable(target.parent):
        raise MicrosightError(f"cannot write {out}: permission denied in {target.parent}; "
                              f"choose another {option} or fix the folder's permissions")
    if not out.exists() and not out.is_symlink():
        return out
    if kind == "bundle":
        if out.is_dir() and (is_bundle(out) or not any(out.iterdir())):
            return out  # an empty folder, or a model (training says: --resume)
        what = "a file" if not out.is_dir() else "a folder holding other files"
        raise MicrosightError(f"{option} {out} is {what}, not a model folder; choose a new "
                              "or empty folder")
    if out.is_dir() and not (kind == "image" and is_zarr_store(out)):
        raise MicrosightError(f"{option} {out} is an existing folder, not a previous output; "
                              "nothing was written: choose another path")
    if not overwrite:
        raise MicrosightError(f"{option} {out} already exists; pass --overwrite to replace it "
                              "or choose another path")
    return out
