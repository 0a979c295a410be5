"""Reading images: TIFF/OME-TIFF, OME-Zarr (lazy), PNG, JPEG, and ND2/LIF/CZI.

Vendor files (ND2, LIF, CZI) are read by :mod:`microsight.io.vendor` with the
libraries of the optional extra ``microsight[formats]``.

Axes come from the file's metadata and are never guessed: a 2D array is
``YX``, an RGB(A) PNG/JPEG is ``CYX``, anything else without usable metadata
needs an explicit ``axes`` argument (``--axes`` on the command line).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import tifffile
import zarr

from microsight.axes import validate_axes
from microsight.errors import MicrosightError
from microsight.io.image import (
    FORMAT_NAMES,
    SUPPORTED_EXTENSIONS,
    Image,
    image_format,
    require_format,
)
from microsight.io.vendor import READERS as VENDOR_READERS

#: Prefix of the OME ``Image/Description`` our writers store, so that size-1
#: axes (which tifffile squeezes away) and the ``S`` axis survive a round trip.
AXES_HINT = "microsight axes="

# tifffile axis letters that mean the same as ours; 'S' is tifffile's RGB
# samples axis, i.e. channels. 'Q', 'I' and other letters mean "unknown".
_TIFF_LETTERS = {"T": "T", "C": "C", "Z": "Z", "Y": "Y", "X": "X", "S": "C"}

# Length units (lower case, as found in OME-XML, ImageJ and OME-Zarr) to micrometres.
_UNIT_TO_UM = {
    **dict.fromkeys(("µm", "um", "micron", "microns", "micrometer", "micrometre"), 1.0),
    **dict.fromkeys(("micrometers", "micrometres"), 1.0),
    **dict.fromkeys(("nm", "nanometer", "nanometre", "nanometers"), 1e-3),
    **dict.fromkeys(("pm", "picometer", "picometre"), 1e-6),
    **dict.fromkeys(("å", "angstrom"), 1e-4),
    **dict.fromkeys(("mm", "millimeter", "millimetre"), 1e3),
    **dict.fromkeys(("cm", "centimeter", "centimetre"), 1e4),
    **dict.fromkeys(("m", "meter", "metre"), 1e6),
}

_NGFF_LETTERS = {"t": "T", "c": "C", "z": "Z", "y": "Y", "x": "X", "s": "S"}

Raw = tuple[Any, "str | None", dict[str, float]]


def unit_to_um(unit: str | None) -> float | None:
    """Return the factor from ``unit`` to micrometres, or None if the unit is unknown."""
    if unit is None:
        return None
    key = str(unit).strip().lower().replace("\\u00b5", "µ").replace("μ", "µ")
    return _UNIT_TO_UM.get(key)


def _fail(path: Path, fmt: str, exc: BaseException) -> MicrosightError:
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    if len(reason) > 120:
        reason = reason[:117] + "..."
    return MicrosightError(f"{path.name}: cannot read this file as {FORMAT_NAMES[fmt]} ({reason})")


def unknown_axes_error(path: Path, shape: tuple[int, ...]) -> MicrosightError:
    """The one error raised when an image's axes cannot be known."""
    return MicrosightError(
        f"{path.name}: cannot tell the axes of a {len(shape)}D image of shape {shape}; "
        "pass --axes (e.g. ZYX or TYX)"
    )


def _check_axes(axes: str) -> str | None:
    try:
        return validate_axes(axes)
    except MicrosightError:
        return None


def _map_tiff_axes(tf_axes: str) -> str | None:
    if any(a not in _TIFF_LETTERS for a in tf_axes):
        return None
    # A repeated letter (e.g. 'C' and RGB 'S' together) cannot be told apart.
    return _check_axes("".join(_TIFF_LETTERS[a] for a in tf_axes))


def _ome_info(xml: str) -> tuple[str | None, dict[str, str]]:
    """Return (our axes hint or None, Pixels attributes) of the first OME image."""
    root = ET.fromstring(xml)
    hint, pixels = None, {}
    for image in root.iter():
        if not image.tag.endswith("}Image") and image.tag != "Image":
            continue
        for child in image:
            if child.tag.endswith("Description") and child.text:
                text = child.text.strip()
                if text.startswith(AXES_HINT):
                    hint = text[len(AXES_HINT) :].strip()
            if child.tag.endswith("Pixels"):
                pixels = dict(child.attrib)
        break
    return hint, pixels


def _apply_hint(hint: str, full_axes: str, full_shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """Shape for our axes ``hint`` if it fits tifffile's unsqueezed axes, else None."""
    hint = _check_axes(hint) or ""
    # Our writers store our 'S' (sample) axis under tifffile's unknown letter 'Q'.
    tf_hint = hint.replace("S", "Q")
    if not hint or any(a not in full_axes for a in tf_hint):
        return None
    positions = [full_axes.index(a) for a in tf_hint]
    if positions != sorted(positions):
        return None
    rest = [s for i, s in enumerate(full_shape) if i not in positions]
    if any(s != 1 for s in rest):
        return None
    return tuple(full_shape[i] for i in positions)


def _read_tiff(path: Path) -> Raw:
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            data = series.asarray()
            tf_axes = series.axes
            full_axes, full_shape = series.get_axes(False), tuple(series.get_shape(False))
            ome = tif.ome_metadata if tif.is_ome else None
            ij = tif.imagej_metadata if tif.is_imagej else None
            tags = tif.pages.first.tags
            res = {a: tags[f"{a}Resolution"].value for a in "XY" if f"{a}Resolution" in tags}
            hint, pixels = _ome_info(ome) if ome else (None, {})
    except MicrosightError:
        raise
    except Exception as exc:
        raise _fail(path, "tiff", exc) from exc

    axes = None
    if hint:
        shape = _apply_hint(hint, full_axes, full_shape)
        if shape is not None:
            data, axes = data.reshape(shape), validate_axes(hint)
    if axes is None:
        axes = _map_tiff_axes(tf_axes)

    sizes: dict[str, float] = {}
    if pixels:
        for a in "ZYX":
            value = pixels.get(f"PhysicalSize{a}")
            factor = unit_to_um(pixels.get(f"PhysicalSize{a}Unit", "µm"))
            if value is not None and factor is not None:
                sizes[a] = float(value) * factor
    elif ij is not None:
        factor = unit_to_um(ij.get("unit"))
        if factor is not None:
            for a, (num, den) in res.items():
                # TIFF resolution is pixels per unit; the pixel size is its inverse.
                if num > 0 and den > 0:
                    sizes[a] = den / num * factor
            if ij.get("spacing"):
                sizes["Z"] = float(ij["spacing"]) * factor
    return data, axes, sizes


def _read_flat(path: Path, fmt: str) -> Raw:
    try:
        arr = np.asarray(iio.imread(path, plugin="pillow"))
    except Exception as exc:
        raise _fail(path, fmt, exc) from exc
    if arr.ndim == 2:
        return arr, "YX", {}
    if arr.ndim == 3 and arr.shape[-1] in (2, 3, 4):
        if arr.shape[-1] in (2, 4):
            # An alpha channel that is fully opaque carries no information.
            top = np.iinfo(arr.dtype).max if arr.dtype.kind in "ui" else 1.0
            if np.all(arr[..., -1] == top):
                arr = arr[..., :-1]
        if arr.shape[-1] == 1:
            return np.ascontiguousarray(arr[..., 0]), "YX", {}
        return np.ascontiguousarray(np.moveaxis(arr, -1, 0)), "CYX", {}
    return arr, None, {}


def _multiscales(attrs: dict) -> list | None:
    # NGFF 0.4 keeps 'multiscales' at the top level, 0.5 nests it under 'ome'.
    ms = attrs.get("multiscales")
    if ms is None and isinstance(attrs.get("ome"), dict):
        ms = attrs["ome"].get("multiscales")
    return ms or None


def _scale_of(transforms: list | None) -> list[float] | None:
    for t in transforms or []:
        if t.get("type") == "scale":
            return [float(v) for v in t["scale"]]
    return None


def _read_zarr(path: Path) -> Raw:
    try:
        node = zarr.open(str(path), mode="r")
        if isinstance(node, zarr.Array):
            return node, None, {}
        attrs = dict(node.attrs)
        if _multiscales(attrs) is None and "bioformats2raw.layout" in attrs:
            # bioformats2raw puts the first image in the sub-group '0'.
            node = node["0"]
            attrs = dict(node.attrs)
        ms = _multiscales(attrs)
        if ms is None:
            arrays = list(node.array_keys())
            if len(arrays) == 1:
                return node[arrays[0]], None, {}
            raise ValueError("no 'multiscales' metadata")
        meta = ms[0]
        dataset = meta["datasets"][0]
        data = node[dataset["path"]]
        axes_meta = meta.get("axes")
    except MicrosightError:
        raise
    except Exception as exc:
        raise _fail(path, "zarr", exc) from exc

    if axes_meta is None:
        # NGFF 0.1/0.2 had no axes and were always 5D tczyx.
        names = list("tczyx") if data.ndim == 5 else []
        units: list[str | None] = [None] * len(names)
    else:
        names = [(a["name"] if isinstance(a, dict) else a).lower() for a in axes_meta]
        units = [a.get("unit") if isinstance(a, dict) else None for a in axes_meta]
    axes = None
    if len(names) == data.ndim and all(n in _NGFF_LETTERS for n in names):
        axes = _check_axes("".join(_NGFF_LETTERS[n] for n in names))

    sizes: dict[str, float] = {}
    scale = _scale_of(dataset.get("coordinateTransformations"))
    glob = _scale_of(meta.get("coordinateTransformations"))
    if axes is not None and scale is not None and len(scale) == len(axes):
        for i, a in enumerate(axes):
            # Without a unit the scale is in unknown units (often a placeholder
            # 1.0), so the size is left unknown rather than guessed.
            factor = unit_to_um(units[i])
            if a in "ZYX" and factor is not None:
                g = glob[i] if glob is not None and len(glob) == len(axes) else 1.0
                sizes[a] = scale[i] * g * factor
    return data, axes, sizes


def _read_vendor(path: Path, fmt: str, scene: int | None) -> Raw:
    try:
        return VENDOR_READERS[fmt](path, scene)
    except MicrosightError:
        raise
    except Exception as exc:
        raise _fail(path, fmt, exc) from exc


def read_raw(path: Path, scene: int | None = None) -> Raw:
    """Read ``path`` and return ``(data, axes or None, pixel_sizes)`` without checks on axes.

    Parameters
    ----------
    path : Path
        An existing file or zarr directory with a supported suffix.
    scene : int, optional
        Scene of a multi-scene ND2/LIF/CZI file (0-based; the first by default,
        with a warning when there are several). Other formats hold one scene.

    Returns
    -------
    tuple
        The array (numpy or lazy zarr), the axes from metadata (None when the
        file does not say) and the pixel sizes in micrometres.
    """
    if not path.exists():
        raise MicrosightError(f"{path}: file not found; check the path")
    if path.is_dir() and image_format(path) != "zarr":
        raise MicrosightError(f"{path}: is a folder, not an image file; give a file")
    fmt = require_format(path)
    if fmt in VENDOR_READERS:
        return _read_vendor(path, fmt, scene)
    if scene not in (None, 0):
        raise MicrosightError(f"{path.name}: a {FORMAT_NAMES[fmt]} file holds one scene; "
                              "leave out --scene")
    if fmt == "tiff":
        return _read_tiff(path)
    if fmt == "zarr":
        return _read_zarr(path)
    return _read_flat(path, fmt)


def read_image(path: str | Path, axes: str | None = None, scene: int | None = None) -> Image:
    """Read one image with its axes and pixel sizes.

    Parameters
    ----------
    path : str or Path
        A TIFF/OME-TIFF, PNG, JPEG, ND2, LIF or CZI file, or a ``.zarr``/``.ome.zarr``
        directory.
    axes : str, optional
        Axes string that overrides the file's metadata; must have one letter
        per dimension.
    scene : int, optional
        Scene of a multi-scene ND2/LIF/CZI file (0-based); the first by default,
        with a :class:`~microsight.io.vendor.SceneWarning` when there are several.

    Returns
    -------
    Image
        For OME-Zarr, ``data`` is the lazy zarr array of the full-resolution
        level; for other formats it is a numpy array.

    Raises
    ------
    MicrosightError
        If the file is missing, unsupported or unreadable, or its axes are
        unknown and ``axes`` is not given, or ``axes`` does not fit the data.
    """
    path = Path(path)
    data, meta_axes, sizes = read_raw(path, scene)
    shape = tuple(int(s) for s in data.shape)
    if axes is not None:
        use = validate_axes(axes, len(shape), name=path.name)
    elif meta_axes is not None and len(meta_axes) == len(shape):
        use = meta_axes
    elif len(shape) == 2:
        use = "YX"
    else:
        raise unknown_axes_error(path, shape)
    return Image(data=data, axes=use, pixel_sizes=sizes, path=path)


def as_image(image: str | Path | np.ndarray | Image, axes: str | None = None,
             scene: int | None = None) -> Image:
    """An :class:`Image` from a file name, an array (2D defaults to YX) or an Image."""
    if isinstance(image, Image):
        return image
    if isinstance(image, np.ndarray):
        if axes is None and image.ndim != 2:
            raise MicrosightError(
                f"a {image.ndim}D array needs axes, e.g. axes='ZYX'; only 2D arrays default "
                "to YX")
        return Image(image, validate_axes(axes or "YX", image.ndim), {})
    return read_image(image, axes=axes, scene=scene)


def list_images(folder: str | Path) -> list[Path]:
    """List the supported images in a folder (not recursive), sorted by name.

    Parameters
    ----------
    folder : str or Path
        Folder to scan. Hidden entries (names starting with ``.``, such as the
        temporary outputs of unfinished writes) are skipped.

    Returns
    -------
    list of Path
        Image files and ``*.zarr`` directories.

    Raises
    ------
    MicrosightError
        If the folder does not exist or holds no supported image.
    """
    folder = Path(folder)
    if not folder.exists():
        raise MicrosightError(f"{folder}: folder not found; check the path")
    if not folder.is_dir():
        raise MicrosightError(f"{folder}: is not a folder; give a folder of images")
    found = []
    for p in folder.iterdir():
        fmt = image_format(p)
        if p.name.startswith(".") or fmt is None:
            continue
        if (fmt == "zarr" and p.is_dir()) or (fmt != "zarr" and p.is_file()):
            found.append(p)
    if not found:
        raise MicrosightError(
            f"{folder}: no supported image in this folder; expected names ending in "
            f"{', '.join(SUPPORTED_EXTENSIONS)}"
        )
    return sorted(found, key=lambda p: p.name)


def read_images(path: str | Path, axes: str | None = None, scene: int | None = None
                ) -> list[Image]:
    """Read one image file, or every image in a folder.

    Parameters
    ----------
    path : str or Path
        An image file, a zarr directory, or a folder of images.
    axes : str, optional
        Axes string applied to every image (see :func:`read_image`).
    scene : int, optional
        Scene of multi-scene files (see :func:`read_image`).

    Returns
    -------
    list of Image
        One image for a file; for a folder, its images sorted by file name.
    """
    path = Path(path)
    if not path.exists():
        raise MicrosightError(f"{path}: file not found; check the path")
    if path.is_dir() and image_format(path) != "zarr":
        return [read_image(p, axes, scene) for p in list_images(path)]
    return [read_image(path, axes, scene)]
