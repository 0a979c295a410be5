"""Vendor files are read lazily: regions on demand, never a whole multi-scene file.

CZI files are written by pylibCZIrw (Zeiss's library), LIF files byte by byte
after Leica's layout (see ``test_vendor_formats``), ND2 through a stand-in for
``nd2.ND2File`` that hands out a dask array as the library does.
"""

from __future__ import annotations

import sys
import tracemalloc
import types
import warnings

import numpy as np
import pytest

from microsight import api
from microsight.io import read_image
from microsight.io.lazy import RegionArray
from microsight.io.vendor import SceneWarning
from tests.unit.test_vendor_formats import _FakeND2, _write_czi, _write_lif


def _read(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SceneWarning)
        return read_image(path, **kw)


def _regions_match(image, full):
    """Regions, strided samples and plane indices of the lazy array equal the full read."""
    assert isinstance(image.data, RegionArray)
    data = image.data
    ny, nx = data.shape[-2:]
    lead = (slice(None),) * (data.ndim - 2)
    for key in [lead + (slice(3, ny - 2), slice(1, nx // 2)),
                lead + (slice(None, None, 3), slice(2, None, 4)),
                (data.shape[0] - 1,) + (slice(None),) * (data.ndim - 1),
                (...,) + (slice(ny // 2, ny // 2 + 1), slice(-5, None))]:
        np.testing.assert_array_equal(data[key], full[key])
    np.testing.assert_array_equal(np.asarray(data), full)


def test_czi_regions_equal_the_full_read(tmp_path):
    stack = np.random.default_rng(0).integers(0, 4000, (2, 3, 20, 24)).astype(np.uint16)
    path = tmp_path / "cells.czi"
    _write_czi(path, stack, scenes=2)
    for scene in (0, 1):
        image = _read(path, scene=scene)
        assert image.axes == "CZYX"
        _regions_match(image, stack + scene)


def test_lif_regions_equal_the_full_read(tmp_path, monkeypatch):
    pytest.importorskip("liffile")
    rng = np.random.default_rng(1)
    first = rng.integers(0, 4000, (3, 2, 10, 12)).astype(np.uint16)
    second = rng.integers(0, 4000, (2, 1, 9, 14)).astype(np.uint16)
    path = tmp_path / "experiment.lif"
    _write_lif(path, [first, second])
    mapped = _read(path)
    assert type(mapped.data.read).__name__ != "_LifFrames"  # the file memory-mapped
    _regions_match(mapped, first.transpose(1, 0, 2, 3))
    _regions_match(_read(path, scene=1), second[:, 0])
    # An image that cannot be memory-mapped is read frame by frame instead.
    import liffile

    def refuse(self, *a, **k):
        raise ValueError("not mappable")

    monkeypatch.setattr(liffile.LifImage, "asarray", refuse)
    image = _read(path, scene=0)
    assert type(image.data.read).__name__ == "_LifFrames"
    _regions_match(image, first.transpose(1, 0, 2, 3))


def test_nd2_reads_frames_through_the_librarys_dask_array(tmp_path, monkeypatch):
    pytest.importorskip("dask")
    monkeypatch.setitem(sys.modules, "nd2", types.SimpleNamespace(ND2File=_FakeND2))
    path = tmp_path / "timelapse.nd2"
    path.write_bytes(b"")
    image = _read(path, scene=1)
    assert image.axes == "TCYX"
    _regions_match(image, _FakeND2.data[:, 1])


def test_a_large_two_scene_czi_is_not_read_whole(tmp_path):
    pytest.importorskip("pylibCZIrw")
    scene = np.random.default_rng(2).integers(0, 4000, (1, 1, 1024, 1024)).astype(np.uint16)
    path = tmp_path / "large.czi"
    _write_czi(path, scene, scenes=2)
    tracemalloc.start()
    try:
        image = _read(path, scene=1)
        _, opened = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        tile = image.data[100:164, 200:264]
        _, region = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert image.shape == (1024, 1024)
    np.testing.assert_array_equal(tile, scene[0, 0, 100:164, 200:264] + 1)
    # One scene is 2 MiB: opening reads none of it, a 64 x 64 tile about 8 KiB.
    assert opened < 256 * 1024 and region < 256 * 1024, (opened, region)


def test_prediction_reads_a_vendor_file_tile_by_tile(tiny_model, tmp_path, monkeypatch):
    pytest.importorskip("pylibCZIrw")
    from microsight.io import vendor

    data = np.random.default_rng(3).integers(0, 200, (1, 1, 96, 80)).astype(np.uint16)
    path = tmp_path / "two.czi"
    _write_czi(path, data, scenes=2)
    boxes = []
    read = vendor._CziRegions.__call__
    monkeypatch.setattr(vendor._CziRegions, "__call__",
                        lambda self, box: boxes.append(box) or read(self, box))
    tiled = api.predict(tiny_model[0], path, scene=1, tile=32, overlap=8, check=False)
    whole = api.predict(tiny_model[0], data[0, 0] + 1, tile=32, overlap=8, check=False)
    np.testing.assert_array_equal(tiled, whole)
    sizes = {(b[3].stop - b[3].start, b[4].stop - b[4].start) for b in boxes}
    # 4 x 3 tiles of 32 x 32 (the one-pixel probe of the pixel type aside).
    assert sizes <= {(32, 32), (1, 1)} and len(boxes) >= 12


def test_region_array_slices_like_numpy(monkeypatch):
    """Reordered and fixed axes, steps, negative indices, large strided reads in planes."""
    from microsight.io import lazy

    source = np.arange(2 * 3 * 1 * 7 * 9).reshape(2, 3, 1, 7, 9)  # P T Z Y X
    reads = []

    def read(box):
        reads.append(box)
        return source[box]

    array = RegionArray(read, source.shape, source.dtype, order=(1, 4, 3), fixed={0: 1, 2: 0})
    view = source[1, :, 0].transpose(0, 2, 1)  # T X Y
    assert array.shape == view.shape and array.ndim == 3
    monkeypatch.setattr(lazy, "STRIDED_BOX_PIXELS", 30)
    for key in [(...,), (1,), (-1, slice(2, 8, 3)), (slice(None), slice(None, None, 2),
                                                       slice(1, None, 3)),
                (slice(2, 1),), (0, 4, -2), (Ellipsis, slice(3, 4))]:
        reads.clear()
        np.testing.assert_array_equal(array[key], view[key])
    # A strided box of more than 30 pixels is read in groups of rows (of the file: Y).
    reads.clear()
    np.testing.assert_array_equal(array[:, ::2, ::3], view[:, ::2, ::3])
    assert [b[3] for b in reads] == [slice(0, 1), slice(3, 4), slice(6, 7)]
    reads.clear()
    np.testing.assert_array_equal(array[:, :, ::2], view[:, :, ::2])
    assert [b[3] for b in reads] == [slice(0, 1), slice(2, 3), slice(4, 5), slice(6, 7)]
    monkeypatch.setattr(lazy, "STRIDED_BOX_PIXELS", 120)  # rows of 27 pixels: 4 a read
    reads.clear()
    np.testing.assert_array_equal(array[:, :, ::2], view[:, :, ::2])
    assert [b[3] for b in reads] == [slice(0, 3), slice(4, 7)]
    with pytest.raises(IndexError):
        array[3]
