"""Localization tables of single-molecule localization microscopy (SMLM).

A localization table is a numpy structured array (:data:`LOC_DTYPE`), one
row per emitter and frame. Coordinates are in nanometres with the origin at
the top-left *corner* of the image (the centre of pixel ``(i, j)`` lies at
``((j + 0.5) * pixel, (i + 0.5) * pixel)``), as ThunderSTORM and the SMLM
challenges use. ``frame`` is 0-based in memory; ThunderSTORM files number
frames from 1 and are converted on reading and writing.

Two CSV flavours are read and written:

- native: a header of the field names of :data:`LOC_DTYPE`;
- ThunderSTORM: ``"id","frame","x [nm]","y [nm]","z [nm]","intensity
  [photon]","offset [photon]","uncertainty_xy [nm]",...`` (quoted headers,
  1-based frames).

Reading recognises either header (and a few common aliases such as
``x_nm``), so tables from ThunderSTORM, the challenges and microsight mix.
"""

from __future__ import annotations

import csv
import os
import uuid
from pathlib import Path

import numpy as np

from microsight.errors import MicrosightError

#: Fields of a localization table (nm, photons, 0-based frames).
LOC_DTYPE = np.dtype([
    ("frame", "i8"), ("x", "f8"), ("y", "f8"), ("z", "f8"),
    ("photons", "f8"), ("background", "f8"),
    ("sigma_x", "f8"), ("sigma_y", "f8"), ("sigma_z", "f8"), ("sigma_photons", "f8"),
    ("score", "f8"),
])

# ThunderSTORM column -> native field.
_THUNDERSTORM = {
    "frame": "frame", "x [nm]": "x", "y [nm]": "y", "z [nm]": "z",
    "intensity [photon]": "photons", "offset [photon]": "background",
    "uncertainty_xy [nm]": "sigma_x", "uncertainty_z [nm]": "sigma_z",
}
# Lower-case header aliases seen in challenge and simulator files -> native field.
_ALIASES = {
    "x_nm": "x", "y_nm": "y", "z_nm": "z", "xnano": "x", "ynano": "y", "znano": "z",
    "intensity": "photons", "intensity [photon]": "photons", "offset [photon]": "background",
    "uncertainty [nm]": "sigma_x", "uncertainty_xy [nm]": "sigma_x",
    "uncertainty_z [nm]": "sigma_z", "x [nm]": "x", "y [nm]": "y", "z [nm]": "z",
}


def make_table(n: int = 0, **columns: np.ndarray | float) -> np.ndarray:
    """Build a localization table of ``n`` rows (or the length of the columns given).

    Missing columns are 0, except ``sigma_*`` (NaN: unknown) and ``score`` (1).

    Parameters
    ----------
    n : int
        Number of rows when no column is given as an array.
    **columns
        Field values (arrays or scalars), e.g. ``frame=..., x=..., y=...``.

    Returns
    -------
    numpy.ndarray
        Structured array of dtype :data:`LOC_DTYPE`.
    """
    for value in columns.values():
        if np.ndim(value) > 0:
            n = len(value)
            break
    out = np.zeros(n, LOC_DTYPE)
    for name in ("sigma_x", "sigma_y", "sigma_z", "sigma_photons"):
        out[name] = np.nan
    out["score"] = 1.0
    for name, value in columns.items():
        if name not in LOC_DTYPE.names:
            raise ValueError(f"unknown localization field {name!r}")
        out[name] = value
    return out


def concat_tables(tables: list[np.ndarray]) -> np.ndarray:
    """Concatenate localization tables (an empty list gives an empty table)."""
    return np.concatenate(tables) if tables else make_table(0)


def frame_groups(table: np.ndarray, n_frames: int | None = None) -> list[np.ndarray]:
    """Split a table into one table per frame (``0 .. n_frames-1``)."""
    n_frames = int(table["frame"].max()) + 1 if n_frames is None and len(table) else (
        n_frames or 0)
    order = np.argsort(table["frame"], kind="stable")
    sorted_table = table[order]
    bounds = np.searchsorted(sorted_table["frame"], np.arange(n_frames + 1))
    return [sorted_table[bounds[i]:bounds[i + 1]] for i in range(n_frames)]


def _header_map(fields: list[str]) -> tuple[dict[str, str], bool]:
    """Map each file column to a native field; tell whether frames are 1-based."""
    lower = {f.strip().lower(): f for f in fields}
    thunder = any(k in lower for k in ("x [nm]", "intensity [photon]"))
    mapping: dict[str, str] = {}
    for low, orig in lower.items():
        field = _ALIASES.get(low, low if low in LOC_DTYPE.names else None)
        if field is not None and field not in mapping.values():
            mapping[orig] = field
    # ThunderSTORM and the challenge tables (x_nm, ...) number frames from 1.
    one_based = thunder or "x_nm" in lower or "xnano" in lower
    return mapping, one_based


def read_localizations(path: str | Path) -> np.ndarray:
    """Read a localization CSV (native, ThunderSTORM or challenge columns).

    Parameters
    ----------
    path : str or Path
        CSV file with a header row; ``x`` and ``y`` (nm) are required, other
        columns are optional and unknown ones are ignored.

    Returns
    -------
    numpy.ndarray
        Table of dtype :data:`LOC_DTYPE` with 0-based frames.
    """
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            rows = [r for r in reader if r]
    except OSError as exc:
        raise MicrosightError(f"cannot read {path}: {exc.strerror}") from None
    if not header:
        raise MicrosightError(f"{path.name} is empty; a localization table needs a header row")
    mapping, one_based = _header_map(header)
    if "x" not in mapping.values() or "y" not in mapping.values():
        raise MicrosightError(
            f"{path.name}: a localization table needs columns x and y in nm (native x,y or "
            f"ThunderSTORM \"x [nm]\",\"y [nm]\"); found {', '.join(header)}")
    index = {field: header.index(col) for col, field in mapping.items()}
    try:
        values = np.array([[float(r[i]) if r[i].strip() else np.nan
                            for i in index.values()] for r in rows], np.float64)
    except (ValueError, IndexError):
        raise MicrosightError(
            f"{path.name}: every row needs a number in each of the columns "
            f"{', '.join(mapping)}") from None
    values = values.reshape(len(rows), len(index))
    table = make_table(len(rows))
    for k, field in enumerate(index):
        table[field] = values[:, k]
    if "frame" in index and one_based and len(table):
        table["frame"] -= 1
    if len(table) and table["frame"].min() < 0:
        raise MicrosightError(f"{path.name}: frame numbers must be >= 0 (native) or >= 1 "
                              "(ThunderSTORM)")
    return table


def write_localizations(path: str | Path, table: np.ndarray, *,
                        format: str = "native") -> Path:
    """Write a localization table as CSV, atomically.

    Parameters
    ----------
    path : str or Path
        Output ``.csv`` file.
    table : numpy.ndarray
        Table of dtype :data:`LOC_DTYPE`.
    format : {"native", "thunderstorm"}
        Column names: native fields, or ThunderSTORM's quoted headers with
        1-based frames.

    Returns
    -------
    Path
        The file written.
    """
    if format not in ("native", "thunderstorm"):
        raise MicrosightError(f"unknown table format {format!r}; use native or thunderstorm")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", newline="") as fh:
            if format == "native":
                writer = csv.writer(fh)
                writer.writerow(LOC_DTYPE.names)
                for row in table:
                    writer.writerow([int(row["frame"])] + [f"{row[f]:.6g}"
                                                           for f in LOC_DTYPE.names[1:]])
            else:
                writer = csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC)
                cols = list(_THUNDERSTORM)
                writer.writerow(["id"] + cols)
                for i, row in enumerate(table):
                    writer.writerow([i + 1, int(row["frame"]) + 1]
                                    + [round(float(row[_THUNDERSTORM[c]]), 5)
                                       for c in cols[1:]])
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
