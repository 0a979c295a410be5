"""The app's data folder: uploaded data sets, models, results and jobs, all on disk.

Layout (everything the app reads or writes stays under the data folder)::

    datasets/<id>/dataset.json   name, axes given by the user, when made
    datasets/<id>/files/...      the images (TIFF, PNG, OME-Zarr folders)
    models/<name>/               model bundles (resumable while training)
    results/<job>/               predictions with their .qc.json records
    jobs/<job>.json              every job's state, so a restart finds it
    exports/                     zipped bundles for download
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from microsight.web.security import UnsafeName, inside, safe_name

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".zarr")
MAX_ZIP_MEMBERS = 20000
# Inside an OME-Zarr folder names may start with a dot (.zattrs, .zarray).
_MEMBER = re.compile(r"^[A-Za-z0-9._-]{1,120}$")


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON record written by :func:`write_json`."""
    return json.loads(path.read_text())


class Store:
    """Paths and records inside one data folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        for sub in ("datasets", "models", "results", "jobs", "exports"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def path(self, *parts: str) -> Path:
        """A path under the data folder from checked names (raises UnsafeName)."""
        return inside(self.root, *parts)

    # --- data sets -------------------------------------------------------------
    def new_dataset(self, name: str, *, note: str = "") -> dict[str, Any]:
        """Create an empty data set named after ``name`` (sanitized) and return its record."""
        label = re.sub(r"[^A-Za-z0-9_]+", "-", name)[:40].strip("-_")
        ident = f"{label or 'data'}-{secrets.token_hex(3)}"
        folder = self.path("datasets", ident)
        (folder / "files").mkdir(parents=True)
        record = {"id": ident, "name": name[:80], "axes": None, "note": note,
                  "created": time.time()}
        write_json(folder / "dataset.json", record)
        return record

    def dataset(self, ident: str) -> dict[str, Any]:
        """The record of data set ``ident`` (KeyError when there is none)."""
        path = self.path("datasets", ident, "dataset.json")
        if not path.is_file():
            raise KeyError(ident)
        return read_json(path)

    def remove_dataset(self, ident: str) -> None:
        """Delete a data set the app itself just created (a refused upload)."""
        shutil.rmtree(self.path("datasets", ident))

    def save_dataset(self, record: dict[str, Any]) -> None:
        """Store a changed data-set record."""
        write_json(self.path("datasets", record["id"], "dataset.json"), record)

    def datasets(self) -> list[dict[str, Any]]:
        """All data sets, newest first."""
        found = []
        for folder in (self.root / "datasets").iterdir():
            if (folder / "dataset.json").is_file():
                record = read_json(folder / "dataset.json")
                record["images"] = self.images(record["id"])
                found.append(record)
        return sorted(found, key=lambda r: -r["created"])

    def files_dir(self, ident: str) -> Path:
        """The folder holding a data set's images (what the API reads)."""
        return self.path("datasets", ident, "files")

    def images(self, ident: str) -> list[str]:
        """Names of the images of a data set (files and OME-Zarr folders)."""
        folder = self.files_dir(ident)
        return sorted(p.name for p in folder.iterdir()
                      if p.name.lower().endswith(IMAGE_SUFFIXES) and not p.name.startswith("."))

    def image_path(self, ident: str, name: str) -> Path:
        """Checked path of one image of a data set (KeyError when absent)."""
        self.dataset(ident)
        path = self.path("datasets", ident, "files", name)
        if not path.exists():
            raise KeyError(name)
        return path

    def add_upload(self, ident: str, filename: str, chunks) -> list[str]:
        """Store one uploaded file (a zip is unpacked); return the names added.

        Raises
        ------
        UnsafeName
            For a file name (or zip member) that could leave the folder.
        """
        name = safe_name(filename)
        folder = self.files_dir(ident)
        target = inside(folder, name)
        tmp = folder / f".{name}.{secrets.token_hex(4)}.part"
        with open(tmp, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
        if name.lower().endswith(".zip"):
            try:
                return unpack_zip(tmp, folder)
            finally:
                tmp.unlink(missing_ok=True)
        if target.exists():
            tmp.unlink()
            raise UnsafeName(f"{name} is already in this data set")
        os.replace(tmp, target)
        return [name]

    # --- models, results ------------------------------------------------------
    def models(self) -> list[str]:
        """Names of model folders (finished or still training)."""
        return sorted(p.name for p in (self.root / "models").iterdir()
                      if (p / "config.yaml").is_file())


def unpack_zip(archive: Path, folder: Path, max_bytes: int = 8 * 2**30) -> list[str]:
    """Unpack a zip (e.g. of OME-Zarr folders) into ``folder``, refusing unsafe members.

    Returns the top-level names added. Raises :class:`UnsafeName` for a member
    that is absolute or climbs with ``..``, for too many members or too many bytes.
    """
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise UnsafeName("not a valid zip file") from None
    with zf:
        members = [m for m in zf.infolist() if not m.filename.startswith("__MACOSX/")]
        if len(members) > MAX_ZIP_MEMBERS or sum(m.file_size for m in members) > max_bytes:
            raise UnsafeName("zip too large to unpack")
        tops = set()
        for member in members:
            parts = [p for p in member.filename.replace("\\", "/").split("/") if p]
            if member.filename.startswith(("/", "\\")) or not parts:
                raise UnsafeName(f"unsafe zip member {member.filename!r}")
            safe_name(parts[0])
            if any(not _MEMBER.match(p) or p in (".", "..") for p in parts[1:]):
                raise UnsafeName(f"unsafe zip member {member.filename!r}")
            if _below(folder, parts).exists():
                raise UnsafeName(f"{'/'.join(parts)} is already in this data set")
            tops.add(parts[0])
        for member in members:
            parts = [p for p in member.filename.replace("\\", "/").split("/") if p]
            dest = _below(folder, parts)
            if member.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(dest, "wb") as out:
                while block := src.read(2**20):
                    out.write(block)
        return sorted(tops)


def _below(folder: Path, parts: list[str]) -> Path:
    base = folder.resolve()
    path = base.joinpath(*parts).resolve()
    if not path.is_relative_to(base):
        raise UnsafeName("zip member leaves the folder")
    return path
