"""Prediction over a real Dask cluster: a scheduler and 2 worker processes on 127.0.0.1."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from microsight import api
from microsight.api.prediction import _predict_file
from microsight.engine.distributed import predict_folder
from microsight.errors import MicrosightError
from microsight.io import read_image, write_image
from microsight.io.shapes import read_table
from tests.conftest import blobs, noisy
from tests.integration.test_segmentation_methods import nuclei, tiny, write_set

distributed = pytest.importorskip("distributed")
# Slow as well: the default run stays short; CI runs them with `-m dask`.
pytestmark = [pytest.mark.dask, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster():
    """One cluster for the module: workers import PyTorch once."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=40) as local:
        yield local.scheduler_address


def _folder(root: Path) -> Path:
    folder = root / "in"
    folder.mkdir()
    for i in range(4):
        tifffile.imwrite(folder / f"f{i}.tif", noisy(blobs((40, 56), i), 20 + i))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_folder_equals_one_process_and_resumes(tiny_model, cluster, tmp_path: Path) -> None:
    model = tiny_model[0]
    folder = _folder(tmp_path)
    here = api.predict_folder(model, folder, tmp_path / "one")
    events = []
    spread = api.predict_folder(model.path, folder, tmp_path / "many", scheduler=cluster,
                                callback=events.append)
    assert spread.count("written") == 4 and spread.count("not an image") == 1
    assert [e.done for e in events] == [1, 2, 3, 4]
    assert len({r.worker for r in spread.rows if r.worker}) == 2  # both workers took images
    for row in here.rows[:4]:
        name = row.input.name
        assert [p.name for p in row.outputs] == [name, f"{name}.qc.json"]
        np.testing.assert_allclose(tifffile.imread(tmp_path / "many" / name),
                                   tifffile.imread(tmp_path / "one" / name), rtol=1e-6)
    assert not [p for p in (tmp_path / "many").iterdir() if p.name.startswith(".")]
    with pytest.raises(MicrosightError, match="--resume"):
        api.predict_folder(model, folder, tmp_path / "many", scheduler=cluster)
    again = api.predict_folder(model.path, folder, tmp_path / "many", scheduler=cluster,
                               resume=True)
    assert again.count("skipped") == 4 and again.count("written") == 0


def test_failed_image_reported_others_written(tiny_model, cluster, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "broken.tif").write_bytes(b"not a tiff at all")
    result = api.predict_folder(tiny_model[0].path, folder, tmp_path / "out",
                                scheduler=cluster)
    assert [r.input.name for r in result.failed] == ["broken.tif"]
    assert result.count("written") == 4
    assert not (tmp_path / "out" / "broken.tif").exists()
    # A re-run with resume predicts only what is missing (the broken image fails again).
    again = api.predict_folder(tiny_model[0].path, folder, tmp_path / "out",
                               scheduler=cluster, resume=True)
    assert again.count("skipped") == 4 and len(again.failed) == 1


def test_large_restoration_equals_one_process(tiny_model, cluster, tmp_path: Path) -> None:
    image = tmp_path / "big.ome.zarr"
    write_image(image, noisy(blobs((300, 260), 5), 3), "YX")
    kw = {"tile": 64, "overlap": 16}
    whole = api.predict(tiny_model[0], image, check=False, **kw)
    out = api.predict_large(tiny_model[0].path, image, tmp_path / "out.ome.zarr",
                            scheduler=cluster, rows=64, **kw)
    spread = np.asarray(read_image(out).data)
    assert (tmp_path / "out.ome.zarr.qc.json").is_file()  # the out-of-distribution record
    assert spread.shape == whole.shape
    np.testing.assert_allclose(spread, whole, rtol=1e-5, atol=1e-4)


def test_large_segmentation_same_objects(cluster, tmp_path: Path) -> None:
    images, labels = write_set(tmp_path / "train", shape=(64, 64))
    # Small stitching blocks so that many objects cross block borders.
    cfg = tiny("distmap", block_pixels=1024 * 4, block_margin=24)
    cfg["training"].update(epochs=2, steps_per_epoch=20, learning_rate=0.01)  # finds nuclei
    model = api.train("distmap", images, labels, out=tmp_path / "m", progress=False,
                      config=cfg)
    img, _ = nuclei((160, 128), 7, n=40)
    write_image(tmp_path / "big.ome.zarr", img, "YX")
    kw = {"tile": 48, "overlap": 12}
    one = api.predict(model, tmp_path / "big.ome.zarr", out=tmp_path / "one.ome.zarr",
                      check=False, **kw)
    many = api.predict_large(model.path, tmp_path / "big.ome.zarr",
                             tmp_path / "many.ome.zarr", scheduler=cluster, rows=32, **kw)
    lab_one = np.asarray(read_image(one).data)
    lab_many = np.asarray(read_image(many).data)
    assert lab_one.max() > 5
    np.testing.assert_array_equal(lab_many, lab_one)
    t_one, t_many = (read_table(tmp_path / f"{n}_objects.csv") for n in ("one", "many"))
    assert set(t_one) == set(t_many)
    for k in t_one:
        np.testing.assert_allclose(t_many[k], t_one[k])
    np.testing.assert_allclose(np.asarray(read_image(tmp_path / "many_prob.ome.zarr").data),
                               np.asarray(read_image(tmp_path / "one_prob.ome.zarr").data),
                               atol=1e-5)
    assert not [p for p in tmp_path.iterdir() if ".dense-" in p.name]


def _die_once(model, image, out, **options):
    """Kill this worker process on the first image it sees (once per test)."""
    marker = Path(out).parents[1] / f"killed-{Path(image).name}"
    if Path(image).name == "f1.tif" and not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)
    return _predict_file(model, image, out, **options)


def test_worker_killed_job_completes(tiny_model, cluster, tmp_path: Path) -> None:
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    folder = _folder(tmp_path)
    result = predict_folder(_die_once, tiny_model[0].path, folder, tmp_path / "out",
                            scheduler=cluster, options={"check": False})
    assert (tmp_path / "out" / "killed-f1.tif").exists()  # a worker died mid-image
    assert result.count("written") == 4 and not result.failed


def test_cli_workers_one_equals_one_process(tiny_model, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from microsight.cli import app

    folder = _folder(tmp_path)
    api.predict_folder(tiny_model[0], folder, tmp_path / "here")
    result = CliRunner().invoke(app, ["predict", str(tiny_model[0].path), str(folder),
                                      "--out", str(tmp_path / "one"), "--workers", "1",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "4 written, 1 not an image" in result.output
    for i in range(4):
        np.testing.assert_allclose(tifffile.imread(tmp_path / "one" / f"f{i}.tif"),
                                   tifffile.imread(tmp_path / "here" / f"f{i}.tif"), rtol=1e-6)


def test_large_colour_image_is_made_grey_block_by_block(cluster, tmp_path: Path) -> None:
    model = api.load_model(Path(__file__).parents[1] / "data" / "bundles_cf7f17a" / "distmap")
    grey, _ = nuclei((96, 80), 3, n=12)
    scaled = (grey - grey.min()) / np.ptp(grey) * 200 + 20
    rgb = np.stack([scaled * f for f in (1.0, 0.8, 0.6)], -1).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    kw = {"tile": 48, "overlap": 12}
    with pytest.warns(api.ColourWarning):
        one = api.predict(model, tmp_path / "rgb.tif", out=tmp_path / "one.ome.zarr",
                          check=False, **kw)
    with pytest.warns(api.ColourWarning, match="block by block"):
        many = api.predict_large(model.path, tmp_path / "rgb.tif", tmp_path / "many.ome.zarr",
                                 scheduler=cluster, rows=32, check=False, **kw)
    np.testing.assert_array_equal(np.asarray(read_image(many).data),
                                  np.asarray(read_image(one).data))
    prob = [np.asarray(read_image(tmp_path / f"{n}_prob.ome.zarr").data)
            for n in ("one", "many")]
    assert prob[0].std() > 1e-3  # the (tiny) network saw the image, not a constant
    np.testing.assert_allclose(prob[1], prob[0], atol=1e-5)
