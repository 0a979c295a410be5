"""ND2, LIF and CZI readers (optional extra ``microsight[formats]``).

CZI files are written by pylibCZIrw, Zeiss's own library. Neither Nikon's nor
Leica's reader library can write, and no small ND2 or LIF sample file ships
with a package of compatible license (the source distributions of nd2 0.12.0,
bioio-nd2 2.6.0, bioio-lif 2.0.1, aicsimageio 4.14.0 and fractal-lif-converters
0.7.0 hold none; pims_nd2 1.1 ships one ND2 file under no stated license and
readlif 0.6.6, whose tests have LIF files, is GPL-3.0), so: LIF files are built
here byte by byte after Leica's published layout (XML header + memory blocks)
and read by liffile; the ND2 reader is tested on its translation of the nd2
library's answers (sizes, positions, voxel size, its dask array of frames) with
a stand-in for ``nd2.ND2File``.
"""

from __future__ import annotations

import struct
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from microsight.errors import MicrosightError
from microsight.io import read_image
from microsight.io.vendor import SceneWarning


def _read_all_warnings(path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = read_image(path, **kw)
    return image, [w for w in caught if issubclass(w.category, SceneWarning)]


# --- CZI --------------------------------------------------------------------------------

def _write_czi(path: Path, data: np.ndarray, scenes: int = 1) -> None:
    """``data`` is CZYX uint16; scene s holds ``data + s``."""
    pyczi = pytest.importorskip("pylibCZIrw.czi")
    with pyczi.create_czi(str(path), exist_ok=True) as czi:
        for s in range(scenes):
            for c in range(data.shape[0]):
                for z in range(data.shape[1]):
                    czi.write(data[c, z][..., None] + s, plane={"C": c, "Z": z}, scene=s,
                              location=(s * 1000, 0))
        # CZI stores pixel sizes in metres.
        czi.write_metadata(scale_x=0.2e-6, scale_y=0.25e-6, scale_z=1.5e-6)


def test_czi_axes_sizes_and_scenes(tmp_path):
    data = np.random.default_rng(0).integers(0, 4000, (2, 3, 20, 24)).astype(np.uint16)
    path = tmp_path / "cells.czi"
    _write_czi(path, data, scenes=2)
    image, notes = _read_all_warnings(path)
    assert image.axes == "CZYX"
    np.testing.assert_array_equal(image.numpy(), data)
    assert image.pixel_sizes == pytest.approx({"X": 0.2, "Y": 0.25, "Z": 1.5})
    assert len(notes) == 1 and "2 scenes" in str(notes[0].message)
    second, notes = _read_all_warnings(path, scene=1)
    np.testing.assert_array_equal(second.numpy(), data + 1)
    assert not notes
    with pytest.raises(MicrosightError, match=r"scene must be 0\.\.1"):
        read_image(path, scene=2)


def test_czi_single_plane_is_yx(tmp_path):
    data = np.arange(12 * 16, dtype=np.uint16).reshape(1, 1, 12, 16)
    path = tmp_path / "plane.czi"
    _write_czi(path, data)
    image, notes = _read_all_warnings(path)
    assert image.axes == "YX" and not notes
    np.testing.assert_array_equal(image.numpy(), data[0, 0])


# --- LIF --------------------------------------------------------------------------------

def _lif_image_xml(name: str, block: str, shape: tuple[int, int, int, int],
                   size_um: tuple[float, float, float]) -> str:
    """One LIF image element: ``shape`` is (Z, C, Y, X) of uint16, channels as planes."""
    nz, nc, ny, nx = shape
    channels = "".join(
        f'<ChannelDescription DataType="0" ChannelTag="0" Resolution="16" Min="0" '
        f'NameOfMeasuredQuantity="" Max="65535" Unit="" LUTName="Gray" IsLUTInverted="0" '
        f'BytesInc="{c * nx * ny * 2}" BitInc="0"/>' for c in range(nc))
    dims = [(1, nx, size_um[2], 2), (2, ny, size_um[1], 2 * nx), (3, nz, size_um[0],
                                                                     2 * nx * ny * nc)]
    dim_xml = "".join(
        f'<DimensionDescription DimID="{d}" NumberOfElements="{n}" Origin="0" '
        f'Length="{(n - 1) * s * 1e-6!r}" Unit="m" BitInc="0" BytesInc="{inc}"/>'
        for d, n, s, inc in dims)
    return (f'<Element Name="{name}"><Data><Image><ImageDescription><Channels>{channels}'
            f'</Channels><Dimensions>{dim_xml}</Dimensions></ImageDescription></Image></Data>'
            f'<Memory Size="{nz * nc * ny * nx * 2}" MemoryBlockID="{block}"/>'
            '<Children/></Element>')


def _write_lif(path: Path, stacks: list[np.ndarray], size_um=(1.0, 0.3, 0.3)) -> None:
    """A version-2 LIF file holding ``stacks`` (each ZCYX uint16) as separate images."""
    children = "".join(_lif_image_xml(f"image{i}", f"MemBlock_{i + 1}", s.shape, size_um)
                       for i, s in enumerate(stacks))
    xml = ('<LMSDataContainerHeader Version="2"><Element Name="project"><Data><Experiment/>'
           '</Data><Memory Size="0" MemoryBlockID="MemBlock_0"/>'
           f'<Children>{children}</Children></Element></LMSDataContainerHeader>')
    text = xml.encode("utf-16-le")
    out = bytearray(struct.pack("<IIBI", 0x70, len(text) + 5, 0x2A, len(xml)) + text)
    blocks = [("MemBlock_0", b"")] + [(f"MemBlock_{i + 1}", s.astype("<u2").tobytes())
                                      for i, s in enumerate(stacks)]
    for ident, payload in blocks:
        name = ident.encode("utf-16-le")
        out += struct.pack("<IIBQBI", 0x70, 0, 0x2A, len(payload), 0x2A, len(ident))
        out += name + payload
    path.write_bytes(bytes(out))


def test_lif_axes_sizes_and_scenes(tmp_path):
    pytest.importorskip("liffile")
    rng = np.random.default_rng(1)
    first = rng.integers(0, 4000, (3, 2, 10, 12)).astype(np.uint16)
    second = rng.integers(0, 4000, (1, 1, 8, 9)).astype(np.uint16)
    path = tmp_path / "experiment.lif"
    _write_lif(path, [first, second])
    image, notes = _read_all_warnings(path)
    assert image.axes == "CZYX"
    np.testing.assert_array_equal(image.numpy(), first.transpose(1, 0, 2, 3))
    assert image.pixel_sizes == pytest.approx({"Z": 1.0, "Y": 0.3, "X": 0.3})
    assert len(notes) == 1
    other, _ = _read_all_warnings(path, scene=1)
    assert other.axes == "YX"
    np.testing.assert_array_equal(other.numpy(), second[0, 0])


# --- ND2 --------------------------------------------------------------------------------

class _FakeND2:
    """Answers like ``nd2.ND2File`` for a 2-position, 2-channel time-lapse."""

    data = np.arange(2 * 3 * 2 * 5 * 6, dtype=np.uint16).reshape(3, 2, 2, 5, 6)  # TPCYX

    def __init__(self, path):
        self.sizes = {"T": 3, "P": 2, "C": 2, "Y": 5, "X": 6}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def to_dask(self):
        """Like the library's: one chunk per frame (T, P), each read when computed."""
        import dask.array as da

        return da.from_array(self.data, chunks=(1, 1, 2, 5, 6))

    def voxel_size(self):
        return types.SimpleNamespace(x=0.65, y=0.65, z=1.0)


def test_nd2_translation(tmp_path, monkeypatch):
    pytest.importorskip("dask")
    monkeypatch.setitem(sys.modules, "nd2", types.SimpleNamespace(ND2File=_FakeND2))
    path = tmp_path / "timelapse.nd2"
    path.write_bytes(b"")
    image, notes = _read_all_warnings(path)
    assert image.axes == "TCYX" and len(notes) == 1
    np.testing.assert_array_equal(image.numpy(), _FakeND2.data[:, 0])
    # Z has one plane, so its size is dropped with the axis.
    assert image.pixel_sizes == {"Y": 0.65, "X": 0.65}
    image, _ = _read_all_warnings(path, scene=1)
    np.testing.assert_array_equal(image.numpy(), _FakeND2.data[:, 1])


def test_nd2_real_library_rejects_a_non_nd2_file(tmp_path):
    pytest.importorskip("nd2")
    path = tmp_path / "broken.nd2"
    path.write_bytes(b"not an nd2 file at all" * 10)
    with pytest.raises(MicrosightError, match="cannot read this file as Nikon ND2"):
        read_image(path)


def test_missing_extra_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "liffile", None)
    path = tmp_path / "x.lif"
    path.write_bytes(b"")
    with pytest.raises(MicrosightError, match=r'pip install "microsight\[formats\]"'):
        read_image(path)


def test_scene_on_a_tiff_is_refused(tmp_path):
    import tifffile

    path = tmp_path / "a.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8))
    assert read_image(path, scene=0).shape == (4, 4)
    with pytest.raises(MicrosightError, match="holds one scene"):
        read_image(path, scene=1)
