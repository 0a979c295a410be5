"""Object tables (CSV) and polygons (GeoJSON FeatureCollection, as QuPath reads them).

Tables are plain columns (dict of name -> 1D array), one row per object.
Polygons are ``(n, 2)`` arrays of ``(y, x)`` pixel coordinates; GeoJSON stores
them as closed rings of ``[x, y]`` pairs, which is what QuPath imports
(File > Import objects). Writers are atomic.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from microsight.errors import MicrosightError


def _atomic_text(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_table(path: str | Path, table: dict[str, np.ndarray]) -> Path:
    """Write columns of equal length as a CSV file (header = column names).

    Parameters
    ----------
    path : str or Path
        Output ``.csv``.
    table : dict of str to array
        Columns, e.g. from :func:`microsight.data.shapes.object_table`.

    Returns
    -------
    Path
    """
    path = Path(path)
    lengths = {len(v) for v in table.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns differ in length: {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(list(table))
    cols = [np.asarray(v) for v in table.values()]
    for i in range(n):
        w.writerow([_fmt(c[i]) for c in cols])
    return _atomic_text(path, buf.getvalue())


def _fmt(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.6g}"
    return str(value)


def read_table(path: str | Path) -> dict[str, np.ndarray]:
    """Read a CSV table written by :func:`write_table` (numeric columns become arrays)."""
    path = Path(path)
    if not path.is_file():
        raise MicrosightError(f"table {path} not found")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise MicrosightError(f"{path.name} is empty; expected a header row")
    header, body = rows[0], rows[1:]
    out: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        values = [r[j] if j < len(r) else "" for r in body]
        try:
            nums = np.array([float(v) if v != "" else np.nan for v in values], np.float64)
            whole = np.isfinite(nums).all() and np.all(nums == np.round(nums))
            out[name] = nums.astype(np.int64) if whole and len(nums) else nums
        except ValueError:
            out[name] = np.array(values, dtype=object)
    return out


def polygons_to_geojson(polygons: dict[int, np.ndarray] | list[np.ndarray], *,
                        properties: dict[int, dict[str, Any]] | None = None,
                        object_type: str = "detection", class_name: str | None = None
                        ) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of polygons (QuPath-compatible).

    Parameters
    ----------
    polygons : dict of int to array, or list of arrays
        Object id -> ``(n, 2)`` vertices ``(y, x)``; a list is numbered from 1.
    properties : dict, optional
        Object id -> extra values (stored as QuPath ``measurements``).
    object_type : {"detection", "annotation"}
        QuPath object type.
    class_name : str, optional
        QuPath classification of every object.

    Returns
    -------
    dict
        The FeatureCollection (``json.dump`` it).
    """
    return {"type": "FeatureCollection",
            "features": list(_features(polygons, properties, object_type, class_name))}


def _features(polygons: dict[int, np.ndarray] | list[np.ndarray],
              properties: dict[int, dict[str, Any]] | None, object_type: str,
              class_name: str | None) -> Iterator[dict[str, Any]]:
    """One GeoJSON Feature per polygon, built lazily (big images hold 10^5+ objects)."""
    if not isinstance(polygons, dict):
        polygons = {i + 1: p for i, p in enumerate(polygons)}
    for oid, verts in polygons.items():
        v = np.asarray(verts, np.float64)
        ring = [[round(float(x), 3), round(float(y), 3)] for y, x in v]
        if ring and ring[0] != ring[-1]:
            ring.append(ring[0])
        props: dict[str, Any] = {"objectType": object_type, "label": int(oid)}
        if class_name:
            props["classification"] = {"name": class_name}
        extra = (properties or {}).get(oid)
        if extra:
            props["measurements"] = {k: _plain(val) for k, val in extra.items()}
        yield {"type": "Feature", "id": str(oid),
               "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": props}


def write_geojson(path: str | Path, polygons: dict[int, np.ndarray] | list[np.ndarray], *,
                  properties: dict[int, dict[str, Any]] | None = None,
                  object_type: str = "detection", class_name: str | None = None) -> Path:
    """Write polygons as a GeoJSON FeatureCollection; see :func:`polygons_to_geojson`.

    Features are written one at a time (to a temporary file renamed at the end),
    so memory does not grow with the document.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write('{"type": "FeatureCollection", "features": [')
            for n, feature in enumerate(_features(polygons, properties, object_type,
                                                  class_name)):
                fh.write((", " if n else "") + json.dumps(feature))
            fh.write("]}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_geojson(path: str | Path) -> dict[int, np.ndarray]:
    """Polygons ``(n, 2)`` (y, x) of a GeoJSON file, keyed by their ``label`` (or order).

    Only the outer ring of Polygon (and each part of MultiPolygon) geometries is
    read; the closing vertex is dropped.
    """
    path = Path(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MicrosightError(f"{path.name} is not readable GeoJSON: {exc}") from None
    features = data.get("features", []) if isinstance(data, dict) else data
    out: dict[int, np.ndarray] = {}
    for n, feat in enumerate(features, start=1):
        geom = feat.get("geometry") or {}
        if geom.get("type") == "Polygon":
            rings = [geom["coordinates"][0]]
        elif geom.get("type") == "MultiPolygon":
            rings = [part[0] for part in geom["coordinates"]]
        else:
            continue
        label = int((feat.get("properties") or {}).get("label", n))
        for ring in rings:
            xy = np.asarray(ring, np.float64)
            if len(xy) > 1 and np.all(xy[0] == xy[-1]):
                xy = xy[:-1]
            key = label if label not in out else max(out) + 1
            out[key] = xy[:, ::-1].copy()
    return out
