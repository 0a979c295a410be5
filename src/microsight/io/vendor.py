"""Readers for microscope vendors' files: Nikon ND2, Leica LIF and Zeiss CZI.

Each format is read by its own library, installed with the optional extra
``microsight[formats]``: ``nd2`` (BSD), ``liffile`` (BSD) and ``pylibCZIrw``
(LGPL, used as an unmodified library). A file may hold several scenes (ND2
stage positions, LIF images, CZI scenes): ``scene`` picks one, and without it
the first is read with a warning that says how many there are.

Every reader returns ``(array, axes, pixel sizes in micrometres)`` with axes in
microsight's letters (``TCZYX`` order, size-1 axes other than Y and X dropped),
like the other readers of :mod:`microsight.io.readers`.
"""

from __future__ import annotations

import importlib
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from microsight.errors import MicrosightError

#: Format key -> (library module, pip name), for the error of a missing extra.
_LIBRARIES = {"nd2": ("nd2", "nd2"), "lif": ("liffile", "liffile"),
              "czi": ("pylibCZIrw.czi", "pylibCZIrw")}

#: Our axes in the order every vendor reader returns them.
_ORDER = "TCZYX"


class SceneWarning(UserWarning):
    """A file holds several scenes and the first was read because none was picked."""


def _library(fmt: str) -> Any:
    module, name = _LIBRARIES[fmt]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MicrosightError(
            f"reading .{fmt} files needs the {name} package; install it with "
            'pip install "microsight[formats]"') from None


def pick_scene(path: Path, count: int, scene: int | None) -> int:
    """Check ``scene`` against the ``count`` scenes of ``path``; default the first with a note.

    Parameters
    ----------
    path : Path
        The file (for messages).
    count : int
        Number of scenes it holds.
    scene : int, optional
        The scene asked for (0-based), or None.

    Returns
    -------
    int
        The scene to read.
    """
    if scene is None:
        if count > 1:
            warnings.warn(f"{path.name} holds {count} scenes; reading the first (pick another "
                          f"with --scene 0..{count - 1})", SceneWarning, stacklevel=3)
        return 0
    if not 0 <= scene < count:
        raise MicrosightError(f"{path.name} holds {count} scene(s); --scene must be 0.."
                              f"{count - 1}, got {scene}")
    return scene


def _arrange(data: np.ndarray, letters: str, path: Path) -> tuple[np.ndarray, str]:
    """Reorder ``data`` (axes ``letters``) to TCZYX order, dropping size-1 axes but Y and X."""
    unknown = [a for a, s in zip(letters, data.shape, strict=True)
               if a not in _ORDER and s > 1]
    if unknown:
        raise MicrosightError(f"{path.name}: has a dimension {''.join(unknown)!r} microsight "
                              "does not know; export the scene you need as OME-TIFF")
    keep = [i for i, (a, s) in enumerate(zip(letters, data.shape, strict=True))
            if a in _ORDER and (s > 1 or a in "YX")]
    drop = tuple(i for i in range(data.ndim) if i not in keep)
    data = data.reshape([s for i, s in enumerate(data.shape) if i not in drop])
    kept = "".join(letters[i] for i in keep)
    order = sorted(range(len(kept)), key=lambda i: _ORDER.index(kept[i]))
    return np.ascontiguousarray(np.transpose(data, order)), "".join(kept[i] for i in order)


def _samples_as_channels(letters: str, shape: tuple[int, ...], path: Path) -> str:
    """RGB samples ('S') become the channel axis, unless the file has channels too."""
    if "S" not in letters:
        return letters
    sizes = dict(zip(letters, shape, strict=True))
    if sizes.get("C", 1) > 1 and sizes["S"] > 1:
        raise MicrosightError(f"{path.name}: has both channels and RGB samples; export it "
                              "as OME-TIFF with one of them")
    letters = letters.replace("C", "c") if "C" in letters else letters
    return letters.replace("S", "C")


def read_nd2(path: Path, scene: int | None = None) -> tuple[np.ndarray, str, dict[str, float]]:
    """Read one stage position (scene) of a Nikon ND2 file (whole, into memory)."""
    nd2 = _library("nd2")
    with nd2.ND2File(path) as f:
        sizes = dict(f.sizes)
        count = sizes.get("P", 1)
        index = pick_scene(path, count, scene)
        data = np.asarray(f.asarray(position=index) if count > 1 else f.asarray())
        voxel = f.voxel_size()
    letters = "".join(k for k in sizes if k != "P" or count == 1)
    if len(letters) != data.ndim:
        letters = "".join(k for k in sizes if k != "P")
    letters = _samples_as_channels(letters, data.shape, path)
    data, axes = _arrange(data, letters, path)
    pixel = {"X": voxel.x, "Y": voxel.y, "Z": voxel.z}
    return data, axes, {a: float(v) for a, v in pixel.items() if v and v > 0 and a in axes}


_LIF_DIMS = {1: "X", 2: "Y", 3: "Z", 4: "T"}
_LIF_UNITS = {"m": 1e6, "mm": 1e3, "um": 1.0, "µm": 1.0, "nm": 1e-3}


def _lif_sizes(element: ET.Element) -> dict[str, float]:
    """Pixel sizes (µm) from a LIF image's DimensionDescription elements."""
    sizes = {}
    for dim in element.findall("./Data/Image/ImageDescription/Dimensions/DimensionDescription"):
        letter = _LIF_DIMS.get(int(dim.attrib["DimID"]))
        n = int(dim.attrib["NumberOfElements"])
        factor = _LIF_UNITS.get(dim.attrib.get("Unit") or "m")
        length = float(dim.attrib.get("Length", 0))
        # LAS X stores the distance from the first to the last pixel centre.
        if letter in ("X", "Y", "Z") and n > 1 and factor and length > 0:
            sizes[letter] = length / (n - 1) * factor
    return sizes


def read_lif(path: Path, scene: int | None = None) -> tuple[np.ndarray, str, dict[str, float]]:
    """Read one image (scene) of a Leica LIF file (whole, into memory)."""
    liffile = _library("lif")
    with liffile.LifFile(path) as lif:
        images = list(lif.images)
        if not images:
            raise MicrosightError(f"{path.name}: holds no image")
        image = images[pick_scene(path, len(images), scene)]
        data = np.asarray(image.asarray())
        letters = "".join(image.dims)
        sizes = _lif_sizes(image.xml_element)
    letters = _samples_as_channels(letters, data.shape, path)
    data, axes = _arrange(data, letters, path)
    return data, axes, {a: v for a, v in sizes.items() if a in axes}


def _czi_sizes(metadata: dict) -> dict[str, float]:
    """Pixel sizes (µm) from CZI metadata (distances are stored in metres)."""
    try:
        items = metadata["ImageDocument"]["Metadata"]["Scaling"]["Items"]["Distance"]
    except (KeyError, TypeError):
        return {}
    sizes = {}
    for item in items if isinstance(items, list) else [items]:
        letter, value = item.get("@Id"), item.get("Value")
        if letter in ("X", "Y", "Z") and value is not None and float(value) > 0:
            sizes[letter] = float(value) * 1e6
    return sizes


def read_czi(path: Path, scene: int | None = None) -> tuple[np.ndarray, str, dict[str, float]]:
    """Read one scene of a Zeiss CZI file (whole, into memory)."""
    pyczi = _library("czi")
    with pyczi.open_czi(str(path)) as czi:
        box = czi.total_bounding_box
        scenes = sorted(czi.scenes_bounding_rectangle)
        index = pick_scene(path, max(len(scenes), 1), scene)
        counts = {a: box[a][1] - box[a][0] for a in "TZC" if a in box}
        starts = {a: box[a][0] for a in "TZC" if a in box}
        planes = []
        for t in range(counts.get("T", 1)):
            for c in range(counts.get("C", 1)):
                for z in range(counts.get("Z", 1)):
                    plane = {a: starts[a] + v for a, v in (("T", t), ("C", c), ("Z", z))
                             if a in starts}
                    planes.append(czi.read(plane=plane, scene=scenes[index] if scenes else None))
        sizes = _czi_sizes(czi.metadata)
    first = planes[0]
    stack = np.stack(planes).reshape(counts.get("T", 1), counts.get("C", 1),
                                     counts.get("Z", 1), *first.shape)
    if first.shape[-1] == 1:
        data, letters = stack[..., 0], "TCZYX"
    else:
        # Colour pixel types are stored BGR; samples become channels in RGB order.
        data, letters = stack[..., ::-1], "TCZYXS"
        letters = _samples_as_channels(letters, data.shape, path)
    data, axes = _arrange(data, letters, path)
    return data, axes, {a: v for a, v in sizes.items() if a in axes}


#: Format key -> reader of ``(path, scene)``.
READERS = {"nd2": read_nd2, "lif": read_lif, "czi": read_czi}
