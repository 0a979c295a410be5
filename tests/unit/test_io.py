"""Unit tests for microsight.io: reading, atomic writing and labels."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import zarr

from microsight.errors import MicrosightError
from microsight.io import (
    SUPPORTED_EXTENSIONS,
    Image,
    list_images,
    open_image_writer,
    read_image,
    read_images,
    read_labels,
    write_image,
    write_labels,
)

RNG = np.random.default_rng(0)


def _rand(shape, dtype=np.uint16):
    return RNG.integers(0, 200, size=shape).astype(dtype)


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


# --- TIFF -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("axes", "shape", "dtype", "sizes"),
    [
        ("YX", (5, 6), np.uint8, {"Y": 0.5, "X": 0.25}),
        ("ZYX", (3, 5, 6), np.float32, {"Z": 2.0, "Y": 0.5, "X": 0.5}),
        ("TCZYX", (2, 3, 4, 5, 6), np.uint16, {"Z": 1.5, "Y": 0.1, "X": 0.1}),
        ("CZYX", (1, 4, 5, 6), np.int16, {}),  # size-1 axis survives
        ("ZCYX", (2, 3, 5, 6), np.uint16, {"X": 0.3}),  # non-canonical order kept
    ],
)
def test_tiff_round_trip(tmp_path, axes, shape, dtype, sizes):
    data = _rand(shape, dtype)
    out = write_image(tmp_path / "img.ome.tif", data, axes, sizes)
    img = read_image(out)
    assert img.axes == axes
    assert img.dtype == dtype
    assert img.pixel_sizes == pytest.approx(sizes)
    np.testing.assert_array_equal(img.numpy(), data)
    assert img.name == "img"
    assert _leftovers(tmp_path) == []


def test_ome_tiff_from_tifffile(tmp_path):
    data = _rand((2, 3, 4, 5))
    path = tmp_path / "x.ome.tiff"
    meta = {"axes": "CZYX", "PhysicalSizeX": 250.0, "PhysicalSizeXUnit": "nm"}
    meta |= {"PhysicalSizeY": 0.25, "PhysicalSizeZ": 1.0}
    tifffile.imwrite(path, data, ome=True, photometric="minisblack", metadata=meta)
    img = read_image(path)
    assert img.axes == "CZYX"
    assert img.shape == (2, 3, 4, 5)
    assert img.pixel_sizes == pytest.approx({"X": 0.25, "Y": 0.25, "Z": 1.0})


def test_imagej_tiff(tmp_path):
    data = _rand((3, 2, 4, 5))
    path = tmp_path / "ij.tif"
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 0.2, 1 / 0.4),
        metadata={"axes": "ZCYX", "spacing": 1.5, "unit": "micron"},
    )
    img = read_image(path)
    assert img.axes == "ZCYX"
    assert img.pixel_sizes == pytest.approx({"X": 0.2, "Y": 0.4, "Z": 1.5})


def test_rgb_tiff_samples_are_channels(tmp_path):
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, _rand((4, 5, 3), np.uint8), photometric="rgb")
    assert read_image(path).axes == "YXC"


def test_plain_3d_tiff_needs_axes(tmp_path):
    path = tmp_path / "stack.tif"
    data = _rand((6, 4, 5))
    tifffile.imwrite(path, data, photometric="minisblack")
    with pytest.raises(MicrosightError, match="--axes") as err:
        read_image(path)
    assert "stack.tif" in str(err.value) and "3D" in str(err.value)
    img = read_image(path, axes="zyx")
    assert img.axes == "ZYX"
    np.testing.assert_array_equal(img.data, data)
    with pytest.raises(MicrosightError, match="dimension"):
        read_image(path, axes="YX")


def test_plain_2d_tiff_is_yx(tmp_path):
    path = tmp_path / "plane.TIF"
    tifffile.imwrite(path, _rand((4, 5)))
    img = read_image(path)
    assert img.axes == "YX" and img.pixel_sizes == {}


def test_tiff_without_room_for_int64(tmp_path):
    with pytest.raises(MicrosightError, match="zarr"):
        write_image(tmp_path / "a.tif", np.zeros((2, 2), np.int64), "YX")
    assert list(tmp_path.iterdir()) == []


# --- Zarr -----------------------------------------------------------------------------


def test_ome_zarr_round_trip_is_lazy(tmp_path):
    data = _rand((2, 3, 8, 9), np.float32)
    sizes = {"Z": 2.0, "Y": 0.5, "X": 0.5}
    out = write_image(tmp_path / "vol.ome.zarr", data, "CZYX", sizes)
    img = read_image(out)
    assert not isinstance(img.data, np.ndarray)
    assert img.axes == "CZYX" and img.shape == data.shape and img.dtype == np.float32
    assert img.pixel_sizes == pytest.approx(sizes)
    np.testing.assert_array_equal(img.data[0:1, 1:2, 2:5, 3:7], data[0:1, 1:2, 2:5, 3:7])
    np.testing.assert_array_equal(img.numpy(), data)
    assert img.name == "vol"
    root = zarr.open_group(str(out), mode="r")
    ms = root.attrs["ome"]["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "z", "y", "x"]
    assert ms["axes"][-1]["unit"] == "micrometer"
    assert _leftovers(tmp_path) == []


def test_zarr_reorders_to_ngff_order(tmp_path):
    data = _rand((4, 2, 5, 6))
    img = read_image(write_image(tmp_path / "a.zarr", data, "ZCYX"))
    assert img.axes == "CZYX"
    np.testing.assert_array_equal(img.numpy(), data.transpose(1, 0, 2, 3))


def test_ngff_04_zarr_v2(tmp_path):
    path = tmp_path / "old.zarr"
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.create_array("s0", shape=(3, 4), dtype="uint8", chunks=(3, 4))[...] = 7
    axes = [{"name": "y", "type": "space", "unit": "nanometer"}, {"name": "x", "type": "space"}]
    transforms = [{"type": "scale", "scale": [500.0, 3.0]}]
    ds = [{"path": "s0", "coordinateTransformations": transforms}]
    root.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": ds}]
    img = read_image(path)
    assert img.axes == "YX" and img.numpy().sum() == 7 * 12
    assert img.pixel_sizes == pytest.approx({"Y": 0.5})  # no unit on x: unknown


def test_plain_zarr_array_needs_axes(tmp_path):
    path = tmp_path / "plain.zarr"
    arr = zarr.create_array(str(path), shape=(2, 3, 4), dtype="uint8")
    arr[...] = 1
    with pytest.raises(MicrosightError, match="--axes"):
        read_image(path)
    assert read_image(path, axes="TYX").shape == (2, 3, 4)


# --- PNG / JPEG -----------------------------------------------------------------------


def test_png_rgb_is_cyx_and_opaque_alpha_dropped(tmp_path):
    rgb = _rand((4, 5, 3), np.uint8)
    iio.imwrite(tmp_path / "rgb.png", rgb)
    img = read_image(tmp_path / "rgb.png")
    assert img.axes == "CYX" and img.shape == (3, 4, 5)
    np.testing.assert_array_equal(img.data, rgb.transpose(2, 0, 1))
    rgba = np.concatenate([rgb, np.full((4, 5, 1), 255, np.uint8)], axis=-1)
    iio.imwrite(tmp_path / "rgba.png", rgba)
    assert read_image(tmp_path / "rgba.png").shape == (3, 4, 5)
    rgba[0, 0, 3] = 10
    iio.imwrite(tmp_path / "rgba2.png", rgba)
    assert read_image(tmp_path / "rgba2.png").shape == (4, 4, 5)


def test_jpeg_read_and_write(tmp_path):
    gray = np.full((8, 8), 120, np.uint8)
    iio.imwrite(tmp_path / "g.jpg", gray)
    img = read_image(tmp_path / "g.jpg")
    assert img.axes == "YX" and img.dtype == np.uint8
    out = write_image(tmp_path / "c.JPEG", np.full((3, 8, 8), 60, np.uint8), "CYX")
    assert read_image(out).shape == (3, 8, 8)


def test_png_refuses_3d(tmp_path):
    with pytest.raises(MicrosightError, match=r"\.tif"):
        write_image(tmp_path / "a.png", np.zeros((2, 3, 4), np.uint8), "ZYX")
    assert list(tmp_path.iterdir()) == []


# --- folders and errors ---------------------------------------------------------------


def test_list_and_read_folder(tmp_path):
    for name in ["b.tif", "a.png", "c.ome.zarr"]:
        write_image(tmp_path / name, np.zeros((4, 5), np.uint8), "YX")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.tif.tmp-1234").write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "b.tif", "c.ome.zarr"]
    images = read_images(tmp_path)
    assert [im.name for im in images] == ["a", "b", "c"]
    assert len(read_images(tmp_path / "b.tif")) == 1
    assert ".ome.tif" in SUPPORTED_EXTENSIONS


def test_folder_errors(tmp_path):
    with pytest.raises(MicrosightError, match="no supported image"):
        list_images(tmp_path)
    with pytest.raises(MicrosightError, match="not found"):
        list_images(tmp_path / "missing")


def test_file_errors(tmp_path):
    with pytest.raises(MicrosightError, match="not found"):
        read_image(tmp_path / "nope.tif")
    (tmp_path / "x.tif").write_bytes(b"this is not a tiff at all")
    with pytest.raises(MicrosightError, match=r"x\.tif: cannot read this file as TIFF \("):
        read_image(tmp_path / "x.tif")
    (tmp_path / "x.png").write_bytes(b"garbage")
    with pytest.raises(MicrosightError, match="as PNG"):
        read_image(tmp_path / "x.png")
    (tmp_path / "x.bmp").write_bytes(b"garbage")
    with pytest.raises(MicrosightError, match=r"unsupported.*\.ome\.zarr"):
        read_image(tmp_path / "x.bmp")
    with pytest.raises(MicrosightError, match="must contain Y and X"):
        write_image(tmp_path / "y.tif", np.zeros((2, 3)), "ZY")


def test_image_dataclass():
    img = Image(np.zeros((2, 3, 4)), "zyx", {"z": 2, "Y": 1, "X": 1})
    assert img.axes == "ZYX" and img.ndim == 3 and img.shape == (2, 3, 4)
    assert img.pixel_sizes == {"Z": 2.0, "Y": 1.0, "X": 1.0} and img.name == ""
    with pytest.raises(MicrosightError):
        Image(np.zeros((2, 3)), "ZYX")


def test_overwrite_replaces_output(tmp_path):
    for fill in (1, 2):
        write_image(tmp_path / "o.zarr", np.full((4, 5), fill, np.uint8), "YX")
        write_image(tmp_path / "o.tif", np.full((4, 5), fill, np.uint8), "YX")
    assert read_image(tmp_path / "o.zarr").numpy().max() == 2
    assert read_image(tmp_path / "o.tif").numpy().max() == 2
    assert _leftovers(tmp_path) == []


# --- streaming writer -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.tif", "out.ome.zarr"])
def test_region_writer(tmp_path, name):
    full = _rand((2, 10, 12), np.float32)
    path = tmp_path / name
    with open_image_writer(path, full.shape, np.float32, "CYX", {"X": 0.5}, chunks=(1, 4, 4)) as w:
        assert not path.exists()
        for y in range(0, 10, 4):
            for x in range(0, 12, 5):
                region = (slice(None), slice(y, y + 4), slice(x, x + 5))
                w.write(region, full[region])
    img = read_image(path)
    assert img.axes == "CYX" and img.pixel_sizes == {"X": 0.5}
    np.testing.assert_array_equal(img.numpy(), full)
    assert _leftovers(tmp_path) == []


def test_region_writer_reorders_for_zarr(tmp_path):
    full = _rand((3, 2, 6, 7))
    with open_image_writer(tmp_path / "o.zarr", full.shape, full.dtype, "ZCYX") as w:
        w.write((slice(0, 2),), full[0:2])
        w.write((slice(2, 3), slice(None), slice(0, 6), slice(0, 7)), full[2:3])
    np.testing.assert_array_equal(
        read_image(tmp_path / "o.zarr").numpy(), full.transpose(1, 0, 2, 3)
    )


@pytest.mark.parametrize("name", ["fail.tif", "fail.zarr", "fail.png"])
def test_region_writer_error_leaves_nothing(tmp_path, name):
    with pytest.raises(RuntimeError, match="boom"):
        with open_image_writer(tmp_path / name, (8, 8), np.uint8, "YX") as w:
            w.write((slice(0, 4), slice(0, 4)), np.ones((4, 4), np.uint8))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_region_writer_rejects_wrong_shape(tmp_path):
    with open_image_writer(tmp_path / "w.zarr", (8, 8), np.uint8, "YX") as w:
        with pytest.raises(ValueError, match="does not fit"):
            w.write((slice(0, 4), slice(0, 4)), np.ones((3, 4), np.uint8))


# --- labels ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lab.png", "lab.tif", "lab.zarr"])
def test_labels_round_trip_2d(tmp_path, name):
    labels = np.zeros((6, 7), np.int64)
    labels[1:3, 1:3], labels[4:6, 2:7] = 1, 300
    write_labels(tmp_path / name, labels)
    back = read_labels(tmp_path / name)
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, labels)


def test_labels_3d_and_dtypes(tmp_path):
    labels = np.zeros((2, 4, 5), np.int32)
    labels[1, 2, 3] = 70000
    out = write_labels(tmp_path / "big.tif", labels)
    assert tifffile.imread(out).dtype == np.uint32
    np.testing.assert_array_equal(read_labels(out), labels)
    with pytest.raises(MicrosightError, match="too large"):
        write_labels(tmp_path / "big.png", labels[1])
    # A 3D label TIFF without axes metadata is taken as ZYX.
    tifffile.imwrite(tmp_path / "raw.tif", labels.astype(np.uint16), photometric="minisblack")
    assert read_labels(tmp_path / "raw.tif").shape == (2, 4, 5)


def test_labels_reject_bad_values(tmp_path):
    probs = np.full((4, 4), 0.5, np.float32)
    tifffile.imwrite(tmp_path / "p.tif", probs)
    with pytest.raises(MicrosightError, match="whole numbers"):
        read_labels(tmp_path / "p.tif")
    with pytest.raises(MicrosightError, match="whole numbers"):
        write_labels(tmp_path / "q.tif", probs)
    with pytest.raises(MicrosightError, match=">= 0"):
        write_labels(tmp_path / "n.tif", -np.ones((3, 3), np.int16))
    whole = np.arange(12, dtype=np.float32).reshape(3, 4)
    tifffile.imwrite(tmp_path / "w.tif", whole)
    assert read_labels(tmp_path / "w.tif").dtype == np.int32
    iio.imwrite(tmp_path / "rgb.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(MicrosightError, match="YX or ZYX"):
        read_labels(tmp_path / "rgb.png")
