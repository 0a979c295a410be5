"""Readers for microscope vendors' files: Nikon ND2, Leica LIF and Zeiss CZI.

Each format is read by its own library, installed with the optional extra
``microsight[formats]``: ``nd2`` (BSD), ``liffile`` (BSD) and ``pylibCZIrw``
(LGPL, used as an unmodified library). A file may hold several scenes (ND2
stage positions, LIF images, CZI scenes): ``scene`` picks one, and without it
the first is read with a warning that says how many there are.

Every reader returns ``(array, axes, pixel sizes in micrometres)`` with axes in
microsight's letters (``TCZYX`` order, size-1 axes other than Y and X dropped),
like the other readers of :mod:`microsight.io.readers`. The array is lazy (a
:class:`~microsight.io.lazy.RegionArray`): nothing is read until it is sliced,
and then only the region asked for, so a large multi-scene file is predicted
tile by tile like an OME-Zarr image. ND2 regions are read through the nd2
library's dask array (frame by frame), LIF regions from the memory-mapped file
(or frame by frame where the image cannot be mapped), CZI regions with
pylibCZIrw's ``read(roi=...)`` for each plane.
"""

from __future__ import annotations

import importlib
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from microsight.errors import MicrosightError
from microsight.io.lazy import RegionArray, memmap_reader

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


def _lazy(read: Any, shape: tuple[int, ...], dtype: Any, letters: str, path: Path,
          fixed: dict[int, int] | None = None) -> tuple[RegionArray, str]:
    """The file's array (axes ``letters``) as a lazy view in TCZYX order.

    Axes in ``fixed`` (a scene) are read at their index; other size-1 axes but Y
    and X are dropped (read at 0).
    """
    fixed = dict(fixed or {})
    free = [(i, a, s) for i, (a, s) in enumerate(zip(letters, shape, strict=True))
            if i not in fixed]
    unknown = [a for _, a, s in free if a not in _ORDER and s > 1]
    if unknown:
        raise MicrosightError(f"{path.name}: has a dimension {''.join(unknown)!r} microsight "
                              "does not know; export the scene you need as OME-TIFF")
    keep = [i for i, a, s in free if a in _ORDER and (s > 1 or a in "YX")]
    fixed.update({i: 0 for i, _, _ in free if i not in keep})
    order = sorted(keep, key=lambda i: _ORDER.index(letters[i]))
    return (RegionArray(read, shape, dtype, order=order, fixed=fixed),
            "".join(letters[i] for i in order))


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


def read_nd2(path: Path, scene: int | None = None) -> tuple[RegionArray, str, dict[str, float]]:
    """One stage position (scene) of a Nikon ND2 file, read lazily (frames as needed)."""
    nd2 = _library("nd2")
    with nd2.ND2File(path) as f:
        sizes = dict(f.sizes)
        index = pick_scene(path, sizes.get("P", 1), scene)
        # The nd2 library's dask array reopens the file for each read of frames.
        frames = f.to_dask()
        voxel = f.voxel_size()
    letters = "".join(sizes)
    if len(letters) != frames.ndim:
        raise MicrosightError(f"{path.name}: its dimensions {letters} do not match its data "
                              f"({frames.ndim} axes); export it as OME-TIFF")
    fixed = {letters.index("P"): index} if "P" in letters else {}
    letters = _samples_as_channels(letters, frames.shape, path)
    data, axes = _lazy(lambda box: np.asarray(frames[box].compute()), frames.shape,
                       frames.dtype, letters, path, fixed)
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


class _LifFrames:
    """``read(box)`` of a LIF image that cannot be memory-mapped: frame by frame.

    The file is opened for each read.
    """

    def __init__(self, path: Path, index: int, dims: str, frame_dims: int):
        self.path, self.index, self.dims, self.frame_dims = path, index, dims, frame_dims

    def __call__(self, box: tuple[slice, ...]) -> np.ndarray:
        liffile = _library("lif")
        outer, inner = box[:-self.frame_dims], box[-self.frame_dims:]
        with liffile.LifFile(self.path) as lif:
            image = lif.images[self.index]
            planes = []
            for at in np.ndindex(*[b.stop - b.start for b in outer]):
                where = {d: b.start + i for d, b, i in zip(self.dims, outer, at, strict=True)}
                planes.append(image.frame(**where)[inner])
        shape = [b.stop - b.start for b in box]
        return np.stack(planes).reshape(shape)


def _lif_reader(path: Path, index: int, image: Any) -> Any:
    """Regions of a LIF image from the memory-mapped file, else frame by frame."""
    try:
        mapped = image.asarray(out="memmap")
    except (ValueError, OSError):  # e.g. BGR images, flipped in place on reading
        mapped = None
    if isinstance(mapped, np.memmap) and tuple(mapped.shape) == tuple(image.shape):
        return memmap_reader(mapped)
    frame = len(image.frames.frame_shape)
    return _LifFrames(path, index, "".join(image.dims)[:-frame], frame)


def read_lif(path: Path, scene: int | None = None) -> tuple[RegionArray, str, dict[str, float]]:
    """One image (scene) of a Leica LIF file, read lazily (regions as needed)."""
    liffile = _library("lif")
    with liffile.LifFile(path) as lif:
        images = list(lif.images)
        if not images:
            raise MicrosightError(f"{path.name}: holds no image")
        index = pick_scene(path, len(images), scene)
        image = images[index]
        read = _lif_reader(path, index, image)
        shape, dtype, letters = tuple(image.shape), image.dtype, "".join(image.dims)
        sizes = _lif_sizes(image.xml_element)
    letters = _samples_as_channels(letters, shape, path)
    data, axes = _lazy(read, shape, dtype, letters, path)
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


class _CziRegions:
    """``read(box)`` over ``(T, C, Z, Y, X, S)`` of one CZI scene, plane by plane with
    ``read(roi=...)``; the reader is opened on first use and not pickled."""

    def __init__(self, path: Path, scene: int | None, rect: Any, starts: dict[str, int]):
        self.path, self.scene, self.starts = str(path), scene, starts
        self.x, self.y = int(rect.x), int(rect.y)
        self._czi = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_czi": None}

    def _reader(self) -> Any:
        if self._czi is None:
            import weakref

            pyczi = _library("czi")
            self._czi = pyczi.CziReader(self.path)
            weakref.finalize(self, self._czi.close)
        return self._czi

    def plane(self, t: int, c: int, z: int, ys: slice, xs: slice) -> np.ndarray:
        """One plane's region ``(Y, X, S)`` (colour samples in RGB order)."""
        at = {a: self.starts[a] + v for a, v in (("T", t), ("C", c), ("Z", z))
              if a in self.starts}
        roi = (self.x + xs.start, self.y + ys.start, xs.stop - xs.start, ys.stop - ys.start)
        data = self._reader().read(plane=at, roi=roi, scene=self.scene)
        # Colour pixel types are stored BGR.
        return data if data.shape[-1] == 1 else data[..., ::-1]

    def __call__(self, box: tuple[slice, ...]) -> np.ndarray:
        bt, bc, bz, ys, xs, bs = box
        planes = [self.plane(t, c, z, ys, xs)[..., bs] for t in range(bt.start, bt.stop)
                  for c in range(bc.start, bc.stop) for z in range(bz.start, bz.stop)]
        return np.stack(planes).reshape([b.stop - b.start for b in box])


def read_czi(path: Path, scene: int | None = None) -> tuple[RegionArray, str, dict[str, float]]:
    """One scene of a Zeiss CZI file, read lazily (regions of planes as needed)."""
    pyczi = _library("czi")
    with pyczi.open_czi(str(path)) as czi:
        box = czi.total_bounding_box
        scenes = sorted(czi.scenes_bounding_rectangle)
        index = pick_scene(path, max(len(scenes), 1), scene)
        rect = (czi.scenes_bounding_rectangle[scenes[index]] if scenes
                else czi.total_bounding_rectangle)
        counts = {a: box[a][1] - box[a][0] for a in "TZC" if a in box}
        starts = {a: box[a][0] for a in "TZC" if a in box}
        sizes = _czi_sizes(czi.metadata)
    read = _CziRegions(path, scenes[index] if scenes else None, rect, starts)
    # One pixel tells the pixel type: its dtype and colour samples.
    probe = read.plane(0, 0, 0, slice(0, 1), slice(0, 1))
    shape = (counts.get("T", 1), counts.get("C", 1), counts.get("Z", 1), int(rect.h),
             int(rect.w), probe.shape[-1])
    letters = "TCZYXS" if probe.shape[-1] > 1 else "TCZYXs"
    letters = _samples_as_channels(letters, shape, path)
    data, axes = _lazy(read, shape, probe.dtype, letters, path)
    return data, axes, {a: v for a, v in sizes.items() if a in axes}


#: Format key -> reader of ``(path, scene)``.
READERS = {"nd2": read_nd2, "lif": read_lif, "czi": read_czi}
