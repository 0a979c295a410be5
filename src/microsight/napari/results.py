"""Turn what :func:`microsight.api.predict` returns into napari layer data.

Pure numpy (no Qt, no napari): each function returns napari "layer data
tuples" ``(data, kwargs, layer_type)``, chosen by the outputs the method
declares (``MethodSpec.outputs``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from microsight.errors import MicrosightError

LayerTuple = tuple[Any, dict[str, Any], str]
# The columns of a point table (microsight.data.points), for a stack without points.
_EMPTY_POINTS = np.dtype([("y", "f8"), ("x", "f8"), ("class", "i8"), ("score", "f8")])


def prediction_layers(outputs: tuple[str, ...], result: Any, name: str,
                      metadata: dict[str, Any], pixel_size_nm: float | None = None
                      ) -> list[LayerTuple]:
    """Layers for a prediction of a method with the given ``outputs``.

    Parameters
    ----------
    outputs : tuple of str
        The method's declared outputs, the first one the main result.
    result : array, list or tuple
        What ``api.predict`` returned (a pair with an uncertainty map when asked).
    name : str
        Base name of the new layers.
    metadata : dict
        Stored in every layer's ``metadata`` (model, out-of-distribution verdict).
    pixel_size_nm : float, optional
        Camera pixel size, to place localizations (nm) on the image grid.

    Returns
    -------
    list of (data, kwargs, layer_type)
    """
    main, uncertainty = result if isinstance(result, tuple) else (result, None)
    kind = outputs[0]
    meta = {"metadata": dict(metadata)}
    if kind == "image":
        layers = [(np.asarray(main), {"name": name, **meta}, "image")]
    elif kind == "labels":
        layers = [(np.asarray(main).astype(np.int32, copy=False), {"name": name, **meta},
                   "labels")]
    elif kind == "points":
        layers = [_points_layer(main, name, meta)]
    elif kind == "localizations":
        layers = [_localizations_layer(main, name, meta, pixel_size_nm)]
    else:
        raise MicrosightError(f"the napari plugin cannot show {kind!r} outputs yet; run "
                              "'microsight predict' on the command line")
    if uncertainty is not None:
        layers.append((np.asarray(uncertainty), {"name": f"{name} uncertainty",
                                                 "colormap": "magma", **meta}, "image"))
    return layers


def _points_layer(tables: np.ndarray | list[np.ndarray], name: str,
                  meta: dict[str, Any]) -> LayerTuple:
    """Point tables (``y, x, class, score``; a list for a stack) as one Points layer."""
    if isinstance(tables, list):
        coords = np.concatenate(
            [np.column_stack([np.full(len(t), i), t["y"], t["x"]]) for i, t in
             enumerate(tables)]) if tables else np.zeros((0, 3))
        table = np.concatenate(tables) if tables else np.zeros(0, _EMPTY_POINTS)
    else:
        table = tables
        coords = np.column_stack([table["y"], table["x"]])
    features = {"class": table["class"], "score": table["score"]}
    return coords, {"name": name, "features": features, "face_color": "class",
                    "size": 6, **meta}, "points"


def _localizations_layer(table: np.ndarray, name: str, meta: dict[str, Any],
                         pixel_size_nm: float | None) -> LayerTuple:
    """A localization table (nm) as Points ``(frame, y, x)`` in pixels of the movie."""
    px = pixel_size_nm or 1.0
    # Coordinates in nm from the top-left corner; napari puts pixel centres at integers.
    coords = np.column_stack([table["frame"], table["y"] / px - 0.5, table["x"] / px - 0.5])
    features = {f: table[f] for f in ("photons", "background", "sigma_x", "score")
                if f in (table.dtype.names or ())}
    return coords, {"name": name, "features": features, "size": 1.0,
                    "face_color": "yellow", **meta}, "points"
