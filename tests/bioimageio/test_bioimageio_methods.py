"""BioImage Model Zoo packages of care-iso, deepstorm and localize.

Their results are more than the network's output (a stack resampled and
restored slice by slice, frames summed into a finer image, a localization
table), so each package holds the network and its card states the rest.
Each package is test-run by bioimageio.core and re-imported with identical
predictions. Runs in the second environment (``pytest -m bioimageio``).
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

pytestmark = pytest.mark.bioimageio
core = pytest.importorskip("bioimageio.core")
spec = pytest.importorskip("bioimageio.spec")

import tifffile  # noqa: E402

from microsight import api  # noqa: E402
from microsight.cli import main  # noqa: E402
from microsight.data.smlm import SimulationConfig, simulate  # noqa: E402
from microsight.io import write_image  # noqa: E402
from tests.conftest import blobs  # noqa: E402
from tests.integration.test_smlm_methods import SIM, _config  # noqa: E402


def _package(bundle, path, *, cli: bool = False):
    if cli:
        assert main(["export", str(bundle), str(path), "--format", "bioimageio"]) == 0
    else:
        api.export(bundle, path, format="bioimageio")
    summary = core.test_model(str(path))
    assert summary.status == "passed", summary.format()
    descr = spec.load_description(str(path), perform_io_checks=False)
    card = zipfile.ZipFile(path).read("README.md").decode()
    return descr, card


def _channels(tensor) -> list[str]:
    return [str(n) for n in tensor.axes[1].channel_names]


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    root = tmp_path_factory.mktemp("smlm")
    sim = simulate(SimulationConfig(**{**SIM, "seed": 9}))
    tifffile.imwrite(root / "movie.tif", sim.movie.astype(np.uint16))
    return root / "movie.tif"


def test_localize_package(tmp_path, movie):
    api.train("localize", None, out=tmp_path / "loc", progress=False,
              config=_config("localize"))
    descr, card = _package(tmp_path / "loc", tmp_path / "loc.zip", cli=True)
    assert _channels(descr.inputs[0]) == ["frame_before_1", "frame", "frame_after_1"]
    assert _channels(descr.outputs[0]) == ["probability", "dx", "dy", "photons",
                                           "background"]
    assert "scale_linear" in [p.id for p in descr.inputs[0].preprocessing]
    assert "## Processing around the network" in card
    assert "3x3 local maximum" in card and "(column + 0.5 + dx) * 100 nm" in card
    ours = api.predict(tmp_path / "loc", movie, axes="TYX", check=False)
    again = api.predict(tmp_path / "loc.zip", movie, axes="TYX", check=False)
    assert ours.dtype.names and len(ours) == len(again)
    np.testing.assert_array_equal(ours, again)


@pytest.mark.slow
def test_deepstorm_package(tmp_path, movie):
    api.train("deepstorm", None, out=tmp_path / "ds", progress=False,
              config=_config("deepstorm", factor=4))
    descr, card = _package(tmp_path / "ds", tmp_path / "ds.zip")
    assert _channels(descr.outputs[0])[:2] == ["subpixel_y0_x0", "subpixel_y0_x1"]
    assert len(_channels(descr.outputs[0])) == 16
    assert "pixel shuffle" in card and "sums it over all frames" in card
    ours = api.predict(tmp_path / "ds", movie, axes="TYX", check=False)
    again = api.predict(tmp_path / "ds.zip", movie, axes="TYX", check=False)
    assert ours.shape == (64, 64)
    np.testing.assert_array_equal(ours, again)


@pytest.mark.slow
def test_care_iso_package(tmp_path):
    z = np.linspace(-1, 1, 16)[:, None, None]
    stack = (blobs((16, 16, 16), 5) + 60 * np.exp(-z**2 / 0.1))[1::4]
    write_image(tmp_path / "stack.ome.tif", stack.astype(np.float32), "ZYX",
                {"Z": 1.0, "Y": 0.25, "X": 0.25})
    config = {"name": "tiny-iso", "method": {"method": "care-iso", "depth": 1,
                                             "base_channels": 4},
              "data": {"patch_size": [16, 16], "batch_size": 4},
              "training": {"epochs": 1, "steps_per_epoch": 3, "val_tile": 32}}
    api.train("care-iso", tmp_path / "stack.ome.tif", out=tmp_path / "iso", config=config,
              progress=False)
    descr, card = _package(tmp_path / "iso", tmp_path / "iso.zip")
    assert [p.id for p in descr.outputs[0].postprocessing if p.id != "ensure_dtype"] == [
        "scale_linear"]
    assert "every XZ slice" in card and "anisotropy factor (4" in card
    ours = api.predict(tmp_path / "iso", tmp_path / "stack.ome.tif", check=False)
    again = api.predict(tmp_path / "iso.zip", tmp_path / "stack.ome.tif", check=False)
    assert ours.shape == (16, 16, 16)
    np.testing.assert_array_equal(ours, again)
