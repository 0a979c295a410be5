"""Writing images atomically: OME-TIFF, OME-Zarr, PNG and JPEG.

Every output is first written under a hidden temporary sibling name
(``.name.tmp-<random>``) and renamed into place only when complete, so a crash
or an error never leaves a partial file at the final path.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import tifffile
import zarr

from microsight.axes import validate_axes
from microsight.errors import MicrosightError
from microsight.io.image import FORMAT_NAMES, image_stem, require_format
from microsight.io.outputs import is_zarr_store
from microsight.io.readers import AXES_HINT

#: Axis order of OME-Zarr output: NGFF wants time first, then channel (or a
#: custom axis such as our sample axis ``S``), then space.
NGFF_ORDER = "TSCZYX"
_NGFF_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}
_ZARR_CHUNK_CAP = {"Z": 64, "Y": 1024, "X": 1024}
# Library errors that mean "this image cannot be written there", reported as one line.
_WRITE_ERRORS = (OSError, ValueError, TypeError, tifffile.OmeXmlError)


def _temp_sibling(path: Path, tag: str = "tmp") -> Path:
    return path.with_name(f".{path.name}.{tag}-{secrets.token_hex(4)}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _commit(tmp: Path, final: Path) -> None:
    """Move the finished ``tmp`` to ``final``, replacing a previous output there.

    A folder at ``final`` is replaced only when it is a Zarr store (a previous
    image output); any other folder is refused, never deleted.
    """
    if final.is_dir() and not final.is_symlink() and not is_zarr_store(final):
        raise MicrosightError(f"{final} is an existing folder, not an image; nothing was "
                              "written: choose another output path")
    old = None
    if final.exists() and (final.is_dir() or tmp.is_dir()):
        # os.replace cannot swap a directory over an existing path: move the
        # old output aside first and delete it only once the new one is in place.
        old = _temp_sibling(final, "old")
        os.replace(final, old)
    try:
        os.replace(tmp, final)
    except BaseException:
        if old is not None:
            os.replace(old, final)
        raise
    if old is not None:
        _remove(old)


@contextlib.contextmanager
def _atomic(path: Path, fmt: str) -> Iterator[Path]:
    tmp = _temp_sibling(path)
    try:
        yield tmp
        _commit(tmp, path)
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, _WRITE_ERRORS):
            raise _write_error(path, fmt, exc) from exc
        raise


def _write_error(path: Path, fmt: str, exc: BaseException) -> MicrosightError:
    text = str(exc).strip()
    reason = text.splitlines()[0][:120] if text else type(exc).__name__
    if isinstance(exc, PermissionError):
        return MicrosightError(f"cannot write {path}: permission denied; choose a folder you "
                               "can write in")
    if isinstance(exc, OSError):
        return MicrosightError(f"cannot write {path} ({reason}); check the folder and free "
                               "disk space")
    # Formats hit limits (TIFF: 4 GiB without BigTIFF, some dtypes); Zarr has none of them.
    hint = "; write .zarr instead" if fmt == "tiff" else ""
    return MicrosightError(
        f"{path.name}: cannot write this image as {FORMAT_NAMES[fmt]} ({reason}){hint}"
    )


def _clean_sizes(pixel_sizes: dict[str, float] | None, axes: str, name: str) -> dict[str, float]:
    sizes = {}
    for key, value in (pixel_sizes or {}).items():
        letter = key.upper()
        if letter not in "ZYX":
            raise MicrosightError(f"{name}: pixel size given for non-spatial axis '{key}'")
        if not (np.isfinite(value) and value > 0):
            raise MicrosightError(f"{name}: pixel size of {letter} must be > 0, got {value}")
        if letter in axes:
            sizes[letter] = float(value)
    return sizes


def _tiff_dtype(dtype: np.dtype, name: str) -> np.dtype:
    if dtype == np.float16:
        # OME-XML has no float16 type; float32 holds every float16 value exactly.
        return np.dtype(np.float32)
    if dtype.kind in "iu" and dtype.itemsize == 8:
        raise MicrosightError(
            f"{name}: OME-TIFF cannot store {dtype} pixels; convert to a 32-bit type "
            "or write .zarr instead"
        )
    return dtype


def _tiff_kwargs(axes: str, sizes: dict[str, float]) -> dict[str, Any]:
    # tifffile reads 'S' as RGB samples, so our sample axis is stored as the
    # unknown letter 'Q'; the description keeps our exact axes (size-1 ones too).
    meta: dict[str, Any] = {"axes": axes.replace("S", "Q"), "Description": AXES_HINT + axes}
    for a in "ZYX":
        if a in sizes:
            meta[f"PhysicalSize{a}"] = sizes[a]
    # 'minisblack' stops tifffile from turning a 3- or 4-long axis into RGB.
    return {"ome": True, "photometric": "minisblack", "metadata": meta}


def _check_flat(path: Path, fmt: str, shape: tuple[int, ...], dtype: Any, axes: str) -> None:
    dtype = np.dtype(dtype)
    gray = (np.uint8, np.uint16) if fmt == "png" else (np.uint8,)
    if (axes == "YX" and dtype in gray) or (axes == "CYX" and shape[0] == 3 and dtype == np.uint8):
        return
    kinds = "/".join(np.dtype(d).name for d in gray)
    raise MicrosightError(
        f"{path.name}: {FORMAT_NAMES[fmt]} holds only YX {kinds} or 3-channel CYX uint8 "
        f"images, not {axes} {dtype} of shape {tuple(shape)}; write a .tif instead"
    )


def _write_flat(tmp: Path, fmt: str, data: np.ndarray, axes: str) -> None:
    arr = np.moveaxis(data, 0, -1) if axes == "CYX" else data
    if fmt == "jpeg":
        iio.imwrite(tmp, np.ascontiguousarray(arr), extension=".jpg", quality=95)
    else:
        iio.imwrite(tmp, np.ascontiguousarray(arr), extension=".png")


def _ngff_perm(axes: str) -> list[int]:
    return sorted(range(len(axes)), key=lambda i: NGFF_ORDER.index(axes[i]))


def _ngff_attrs(name: str, zaxes: str, sizes: dict[str, float]) -> dict[str, Any]:
    axes_meta = []
    for a in zaxes:
        entry: dict[str, Any] = {"name": a.lower()}
        if a in _NGFF_TYPES:
            entry["type"] = _NGFF_TYPES[a]
        if a in sizes:
            entry["unit"] = "micrometer"
        axes_meta.append(entry)
    scale = [sizes.get(a, 1.0) for a in zaxes]
    multiscale = {
        "name": name,
        "axes": axes_meta,
        "datasets": [
            {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}
        ],
    }
    return {"ome": {"version": "0.5", "multiscales": [multiscale]}}


def _create_zarr(
    tmp: Path,
    name: str,
    shape: tuple[int, ...],
    dtype: Any,
    axes: str,
    sizes: dict[str, float],
    chunks: tuple[int, ...] | None,
) -> tuple[Any, list[int]]:
    """Create an empty one-level OME-Zarr (NGFF 0.5) and return (array, axis permutation)."""
    perm = _ngff_perm(axes)
    zaxes = "".join(axes[i] for i in perm)
    zshape = tuple(int(shape[i]) for i in perm)
    if chunks is None:
        zchunks = tuple(
            max(1, min(s, _ZARR_CHUNK_CAP.get(a, 1))) for a, s in zip(zaxes, zshape, strict=True)
        )
    else:
        if len(chunks) != len(axes):
            raise MicrosightError(f"{name}: chunks {chunks} must have one entry per axis of {axes}")
        zchunks = tuple(int(chunks[i]) for i in perm)
    root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
    root.attrs.update(_ngff_attrs(name, zaxes, sizes))
    arr = root.create_array(
        "0",
        shape=zshape,
        dtype=np.dtype(dtype),
        chunks=zchunks,
        fill_value=0,
        dimension_names=[a.lower() for a in zaxes],
    )
    return arr, perm


def _prepare(path: str | Path, ndim: int, dtype: Any, axes: str, pixel_sizes: Any):
    path = Path(path)
    fmt = require_format(path)
    axes = validate_axes(axes, ndim, name=path.name)
    sizes = _clean_sizes(pixel_sizes, axes, path.name)
    dtype = np.dtype(dtype)
    if fmt == "tiff":
        dtype = _tiff_dtype(dtype, path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, fmt, axes, sizes, dtype


def write_image(
    path: str | Path,
    data: np.ndarray,
    axes: str,
    pixel_sizes: dict[str, float] | None = None,
) -> Path:
    """Write an image atomically, in the format given by the suffix of ``path``.

    Parameters
    ----------
    path : str or Path
        Output path: ``.tif``/``.tiff``/``.ome.tif(f)`` (OME-TIFF),
        ``.zarr``/``.ome.zarr`` (OME-Zarr, axes reordered to NGFF order
        ``TCZYX``), ``.png`` or ``.jpg``/``.jpeg``. An existing file or
        Zarr store is replaced (commands ask for ``--overwrite`` first, see
        :func:`microsight.io.outputs.check_output`); any other folder is
        refused, never deleted. Missing parent folders are created.
    data : numpy.ndarray
        Pixels.
    axes : str
        Axes string, one letter per dimension of ``data``.
    pixel_sizes : dict of str to float, optional
        Micrometres per pixel for spatial axes (``Z``, ``Y``, ``X``).

    Returns
    -------
    Path
        The written path.

    Raises
    ------
    MicrosightError
        If the axes do not fit the data, the format cannot hold this image, or
        writing fails.
    """
    data = np.asarray(data)
    path, fmt, axes, sizes, dtype = _prepare(path, data.ndim, data.dtype, axes, pixel_sizes)
    if fmt in ("png", "jpeg"):
        _check_flat(path, fmt, data.shape, data.dtype, axes)
    with _atomic(path, fmt) as tmp:
        if fmt == "tiff":
            tifffile.imwrite(tmp, data.astype(dtype, copy=False), **_tiff_kwargs(axes, sizes))
        elif fmt == "zarr":
            arr, perm = _create_zarr(tmp, image_stem(path), data.shape, dtype, axes, sizes, None)
            arr[...] = np.transpose(data, perm)
        else:
            _write_flat(tmp, fmt, data, axes)
    return path


class ImageWriter:
    """Write a large image region by region; see :func:`open_image_writer`.

    Use as a context manager. The output appears at ``path`` only when the
    ``with`` block ends without an exception; otherwise the temporary output
    is deleted and nothing is left at ``path``.
    """

    def __init__(
        self,
        path: str | Path,
        shape: tuple[int, ...],
        dtype: Any,
        axes: str,
        pixel_sizes: dict[str, float] | None = None,
        chunks: tuple[int, ...] | None = None,
    ) -> None:
        shape = tuple(int(s) for s in shape)
        self.path, self.format, self.axes, sizes, dtype = _prepare(
            path, len(shape), dtype, axes, pixel_sizes
        )
        self.shape, self.dtype = shape, dtype
        self._perm: list[int] | None = None
        self._tmp = _temp_sibling(self.path)
        self._open = False
        try:
            if self.format == "zarr":
                self._target, self._perm = _create_zarr(
                    self._tmp, image_stem(self.path), shape, dtype, self.axes, sizes, chunks
                )
            elif self.format == "tiff":
                self._target = tifffile.memmap(
                    self._tmp, shape=shape, dtype=dtype, **_tiff_kwargs(self.axes, sizes)
                )
            else:
                # PNG/JPEG are small 2D images and cannot be written in parts.
                _check_flat(self.path, self.format, shape, dtype, self.axes)
                self._target = np.zeros(shape, dtype)
        except BaseException as exc:
            _remove(self._tmp)
            if isinstance(exc, _WRITE_ERRORS):
                raise _write_error(self.path, self.format, exc) from exc
            raise
        self._open = True

    def write(self, region: tuple[slice, ...], data: np.ndarray) -> None:
        """Write ``data`` into ``region`` of the output.

        Parameters
        ----------
        region : tuple of slice
            Region in the full array's coordinates and axes order; missing
            trailing entries mean the whole axis.
        data : numpy.ndarray
            Pixels with exactly the region's shape; cast to the output dtype.
        """
        if not self._open:
            raise RuntimeError(f"{self.path.name}: writer is closed")
        region = tuple(region) + (slice(None),) * (len(self.shape) - len(region))
        if len(region) != len(self.shape) or not all(isinstance(s, slice) for s in region):
            raise ValueError(f"region {region} must be up to {len(self.shape)} slices")
        want = tuple(len(range(*s.indices(n))) for s, n in zip(region, self.shape, strict=True))
        data = np.asarray(data)
        if data.shape != want:
            raise ValueError(f"data of shape {data.shape} does not fit region of shape {want}")
        data = data.astype(self.dtype, copy=False)
        if self._perm is not None:
            self._target[tuple(region[i] for i in self._perm)] = np.transpose(data, self._perm)
        else:
            self._target[region] = data

    def close(self) -> Path:
        """Finish the output and move it to ``path``; returns ``path``."""
        if not self._open:
            return self.path
        self._open = False
        try:
            if self.format == "tiff":
                self._target.flush()
            elif self.format in ("png", "jpeg"):
                _write_flat(self._tmp, self.format, self._target, self.axes)
            # Drop the memmap before renaming (needed on Windows).
            self._target = None
            _commit(self._tmp, self.path)
        except BaseException as exc:
            self._target = None
            _remove(self._tmp)
            if isinstance(exc, _WRITE_ERRORS):
                raise _write_error(self.path, self.format, exc) from exc
            raise
        return self.path

    def zarr_store(self) -> tuple[Path, list[int] | None]:
        """The temporary OME-Zarr being written and its axis permutation (axes -> store).

        Other processes may write disjoint chunks of its array ``"0"`` until
        :meth:`close` publishes it; the writer itself is not to be copied (a
        dropped copy would discard the output).
        """
        if self.format != "zarr" or not self._open:
            raise RuntimeError(f"{self.path.name}: not an open OME-Zarr writer")
        return self._tmp, self._perm

    def abort(self) -> None:
        """Discard the temporary output; nothing is written at ``path``."""
        self._open = False
        self._target = None
        _remove(self._tmp)

    def __enter__(self) -> ImageWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        # A writer dropped without close() must not leave its temporary behind.
        if getattr(self, "_open", False):
            with contextlib.suppress(Exception):
                self.abort()


def open_image_writer(
    path: str | Path,
    shape: tuple[int, ...],
    dtype: Any,
    axes: str,
    pixel_sizes: dict[str, float] | None = None,
    chunks: tuple[int, ...] | None = None,
) -> ImageWriter:
    """Open an atomic writer that receives an image region by region.

    For ``.zarr`` the regions go straight to disk (memory use is bounded by
    the regions written); for TIFF they go to a memory-mapped, uncompressed
    OME-TIFF; PNG/JPEG are assembled in memory.

    Parameters
    ----------
    path : str or Path
        Output path; its suffix picks the format as in :func:`write_image`.
    shape : tuple of int
        Shape of the full image, in the order of ``axes``.
    dtype : numpy dtype-like
        Pixel type.
    axes : str
        Axes string, one letter per dimension.
    pixel_sizes : dict of str to float, optional
        Micrometres per pixel for spatial axes.
    chunks : tuple of int, optional
        Zarr chunk shape in the order of ``axes``; default up to 1024 along Y
        and X, up to 64 along Z and 1 along other axes. Ignored for TIFF.

    Returns
    -------
    ImageWriter
        Use it as a context manager and call ``write(region, data)``.
    """
    return ImageWriter(path, shape, dtype, axes, pixel_sizes, chunks)
