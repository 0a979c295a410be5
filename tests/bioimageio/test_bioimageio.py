"""BioImage Model Zoo packages: export, ``bioimageio.core`` test-run, re-import, foreign packages.

These tests need ``bioimageio.core`` 0.11 (whose spec pins pydantic below 2.14), so they
run in a second environment (``.ci/run``) with ``pytest -m bioimageio``; elsewhere they
are skipped.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

pytestmark = pytest.mark.bioimageio
# Skip before importing anything heavy: the main environment has no bioimageio.
core = pytest.importorskip("bioimageio.core")
spec = pytest.importorskip("bioimageio.spec")

import tifffile  # noqa: E402
import torch  # noqa: E402

from microsight import api  # noqa: E402
from microsight.cli import main  # noqa: E402
from microsight.errors import MicrosightError  # noqa: E402
from tests.conftest import TINY_CONFIG, blobs, noisy, write_pairs  # noqa: E402


def _passes(package) -> None:
    summary = core.test_model(str(package))
    assert summary.status == "passed", summary.format()


def _same_predictions(bundle, package, image, tmp_path) -> None:
    ours = api.predict(bundle, image, check=False)
    again = api.predict(package, image, check=False)
    np.testing.assert_array_equal(ours, again)


def test_care_package_passes_and_reimports(tmp_path):
    low, high = write_pairs(tmp_path)
    api.train("care", low, high, out=tmp_path / "care", config=TINY_CONFIG, progress=False)
    package = tmp_path / "care.bioimageio.zip"
    assert main(["export", str(tmp_path / "care"), str(package), "--format", "bioimageio"]) == 0
    _passes(package)
    names = set(zipfile.ZipFile(package).namelist())
    assert {"rdf.yaml", "weights.pt", "weights_torchscript.pt", "weights.onnx", "cover.png",
            "test_input.npy", "test_output.npy", "README.md", "model.json",
            "weights.safetensors", "normalization.json", "config.yaml"} <= names
    descr = spec.load_description(str(package), perform_io_checks=False)
    # (the spec adds its own ensure_dtype steps around ours)
    assert "scale_linear" in [p.id for p in descr.inputs[0].preprocessing]
    assert "scale_linear" in [p.id for p in descr.outputs[0].postprocessing]
    assert any("10.1038/s41592-018-0216-7" in str(c.doi) for c in descr.cite)
    _same_predictions(tmp_path / "care", package, next(low.iterdir()), tmp_path)
    info = api.info(package)
    assert info["model"]["method"] == "care"


def test_n2v_3d_package(tmp_path):
    noisy_dir = tmp_path / "noisy"
    noisy_dir.mkdir()
    for i in range(2):
        tifffile.imwrite(noisy_dir / f"s{i}.tif", noisy(blobs((8, 24, 24), i), 5 + i),
                         metadata={"axes": "ZYX"})
    config = {"name": "n2v3d", "method": {"method": "n2v", "ndim": 3, "depth": 1,
                                          "base_channels": 4, "masked_fraction": 0.02},
              "data": {"patch_size": [8, 16, 16], "batch_size": 2},
              "training": {"epochs": 1, "steps_per_epoch": 2, "val_tile": 16}}
    api.train("n2v", noisy_dir, out=tmp_path / "n2v", config=config, progress=False)
    # The export test-runs the package before writing it; here the re-import is checked.
    package = api.export(tmp_path / "n2v", tmp_path / "n2v.zip", format="bioimageio")
    _same_predictions(tmp_path / "n2v", package, noisy_dir / "s0.tif", tmp_path)


def test_segmentation_package_keeps_microsight_post_processing(tmp_path):
    from tests.integration.test_segmentation_methods import tiny, write_set

    images, labels = write_set(tmp_path / "data")
    api.train("distmap", images, labels, out=tmp_path / "seg", config=tiny("distmap"),
              progress=False)
    package = api.export(tmp_path / "seg", tmp_path / "seg.zip", format="bioimageio")
    descr = spec.load_description(str(package), perform_io_checks=False)
    assert [p.id for p in descr.outputs[0].postprocessing] in ([], ["ensure_dtype"])
    card = zipfile.ZipFile(package).read("README.md").decode()
    assert "watershed" in card and "Input normalization: exactly" in card
    _same_predictions(tmp_path / "seg", package, images / "n0.tif", tmp_path)


def test_inverted_per_image_model_packages_exactly(tmp_path):
    from tests.integration.test_segmentation_methods import tiny, write_set

    images, labels = write_set(tmp_path / "data")
    config = tiny("distmap")
    config.setdefault("data", {})["normalization"] = {"mode": "per_image", "invert": True}
    api.train("distmap", images, labels, out=tmp_path / "inv", config=config, progress=False)
    package = api.export(tmp_path / "inv", tmp_path / "inv.zip", format="bioimageio")
    _passes(package)
    descr = spec.load_description(str(package), perform_io_checks=False)
    steps = [p.id for p in descr.inputs[0].preprocessing if p.id != "ensure_dtype"]
    assert steps == ["scale_range", "scale_linear"]  # the range, then 1 - x
    _same_predictions(tmp_path / "inv", package, images / "n0.tif", tmp_path)


def test_every_exportable_method_is_packaged():
    from microsight.config import available_methods
    from microsight.engine.bioimageio import bioimageio_problem

    exportable = [n for n, s in available_methods().items() if s.exports]
    assert {"care-iso", "deepstorm", "localize"} <= set(exportable)
    assert all(bioimageio_problem(n) is None for n in exportable)
    assert "cannot be exported" in bioimageio_problem("classify")


def _foreign_package(tmp_path, halo: int = 0):
    """A tiny non-microsight network (TorchScript) packaged with bioimageio.spec alone.

    With ``halo`` its output axes declare that many unreliable border pixels.
    """
    import bioimageio.spec.model.v0_5 as v05
    from bioimageio.spec import save_bioimageio_package

    tmp_path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU()).eval()
    torch.jit.save(torch.jit.script(net), tmp_path / "net.pt")
    x = np.random.default_rng(0).uniform(0, 500, (1, 1, 32, 32)).astype(np.float32)
    with torch.no_grad():
        y = net(torch.from_numpy(x * 0.01)).numpy()
    np.save(tmp_path / "in.npy", x)
    np.save(tmp_path / "out.npy", y)
    (tmp_path / "doc.md").write_text("# A tiny convolution\n")
    size = v05.ParameterizedSize(min=16, step=8)
    space, extra = ((v05.SpaceOutputAxisWithHalo, {"halo": halo}) if halo else
                    (v05.SpaceOutputAxis, {}))
    descr = v05.ModelDescr(
        name="tiny convolution", description="one 3x3 convolution and a ReLU",
        authors=[v05.Author(name="Someone Else")],
        cite=[v05.CiteEntry(text="none", url="https://example.org")],
        license=v05.LicenseId("MIT"), documentation=v05.FileDescr(source=tmp_path / "doc.md"),
        inputs=[v05.InputTensorDescr(
            id=v05.TensorId("raw"),
            axes=[v05.BatchAxis(), v05.ChannelAxis(channel_names=[v05.Identifier("c")]),
                  v05.SpaceInputAxis(id=v05.AxisId("y"), size=size),
                  v05.SpaceInputAxis(id=v05.AxisId("x"), size=size)],
            test_tensor=v05.FileDescr(source=tmp_path / "in.npy"),
            preprocessing=[v05.ScaleLinearDescr(kwargs=v05.ScaleLinearKwargs(gain=0.01))])],
        outputs=[v05.OutputTensorDescr(
            id=v05.TensorId("maps"),
            axes=[v05.BatchAxis(), v05.ChannelAxis(channel_names=[v05.Identifier("a"),
                                                                  v05.Identifier("b")]),
                  *[space(id=v05.AxisId(a), size=v05.SizeReference(
                      tensor_id=v05.TensorId("raw"), axis_id=v05.AxisId(a)), **extra)
                    for a in "yx"]],
            test_tensor=v05.FileDescr(source=tmp_path / "out.npy"))],
        weights=v05.WeightsDescr(torchscript=v05.TorchscriptWeightsDescr(
            source=tmp_path / "net.pt", pytorch_version=v05.Version("2.13"))))
    package = save_bioimageio_package(descr, output_path=tmp_path / "foreign.zip")
    return package, net


def test_foreign_package_predicts_through_the_cli(tmp_path, capsys):
    package, net = _foreign_package(tmp_path)
    image = np.random.default_rng(1).uniform(0, 800, (40, 48)).astype(np.float32)
    tifffile.imwrite(tmp_path / "img.tif", image)
    out = tmp_path / "maps.tif"
    assert main(["predict", str(package), str(tmp_path / "img.tif"), "--out", str(out),
                 "--no-progress"]) == 0
    result = tifffile.imread(out)
    with torch.no_grad():
        expected = net(torch.from_numpy(image[None, None] * 0.01)).numpy()[0]
    assert result.shape == (2, 40, 48)
    # One tile (the image is smaller than the default tile): the network's own output.
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(MicrosightError, match="axes"):
        api.predict(package, np.zeros((3, 16, 16), np.float32), axes="ZYX")
    with pytest.raises(MicrosightError, match="not made by microsight"):
        api.info(package)


def test_foreign_package_runs_tile_by_tile(tmp_path, monkeypatch):
    """An image larger than the tile, run through microsight's tiled prediction."""
    from microsight.engine import bioimageio_run

    # The 3x3 convolution sees one pixel around each: a halo of 1 makes tiles exact.
    package, net = _foreign_package(tmp_path, halo=1)
    # 101 x 87 is no size the package takes (16 + 8n): tiles are padded to one.
    image = np.random.default_rng(2).uniform(0, 800, (101, 87)).astype(np.float32)
    calls = []
    forward = bioimageio_run.PackageNetwork.predict_batch
    monkeypatch.setattr(bioimageio_run.PackageNetwork, "predict_batch",
                        lambda self, x: calls.append(tuple(x.shape)) or forward(self, x))
    tiled = api.predict(package, image, tile=32, overlap=8)
    # 4 x 4 tiles of 32 pixels, each read with one pixel of halo around it.
    assert calls == [(1, 1, 34, 34)] * 16
    # bioimageio.core on the whole image (a size the package does not declare, but the
    # convolution takes any): its own symmetric padding by the halo, no tiles.
    raw = core.Tensor.from_numpy(image[None, None], dims=("batch", "channel", "y", "x"))
    whole = core.predict(model=str(package), inputs=core.Sample(members={"raw": raw},
                                                                 stat={}, id="whole"))
    whole = np.asarray(whole.members["maps"].data)[0]
    assert tiled.shape == whole.shape == (2, 101, 87)
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # and away from the image border, the network's own output
        inner = net(torch.from_numpy(image[None, None] * 0.01)).numpy()[0]
    np.testing.assert_allclose(tiled[:, 1:-1, 1:-1], inner[:, 1:-1, 1:-1], atol=1e-5)
    calls.clear()
    again = api.predict(package, image, tile=32, overlap=8, batch_size=4)
    assert calls == [(4, 1, 34, 34)] * 4
    np.testing.assert_allclose(again, tiled, atol=1e-6)
    # Without a halo, tiles see zero padding at their edges, where blending gives them
    # little weight: close to the whole image, not equal.
    plain, _ = _foreign_package(tmp_path / "plain")
    seams = np.abs(api.predict(plain, image, tile=32, overlap=8) - inner)
    assert np.median(seams) < 1e-5 and seams.max() < 0.15 * np.ptp(inner)

def _train_other(method: str, root):
    """Tiny trained models of the other packaged methods (the CI run covers three)."""
    from tests.integration.test_detect import TINY as DETECT
    from tests.integration.test_detect import spots
    from tests.integration.test_iso_sr import _sr_config
    from tests.integration.test_labelfree import TINY as LABELFREE
    from tests.integration.test_labelfree import write_labelfree
    from tests.integration.test_segmentation_methods import tiny, write_set

    out = root / method
    if method in ("unet-seg", "starconvex"):
        images, labels = write_set(root / "seg")
        extra = {"n_rays": 8} if method == "starconvex" else {}
        api.train(method, images, labels, out=out, config=tiny(method, **extra),
                  progress=False)
        return out, images / "n0.tif"
    if method == "n2n":
        low, high = write_pairs(root)
        config = {**TINY_CONFIG, "method": {"method": "n2n", "depth": 1, "base_channels": 4}}
        api.train("n2n", low, high, out=out, config=config, progress=False)
        return out, next(low.iterdir())
    if method == "sr":
        (root / "lr").mkdir()
        (root / "hr").mkdir()
        for i in range(2):
            clean = blobs((48, 48), 20 + i)
            tifffile.imwrite(root / "hr" / f"im{i}.tif", clean)
            tifffile.imwrite(root / "lr" / f"im{i}.tif",
                             clean.reshape(24, 2, 24, 2).mean(axis=(1, 3)))
        api.train("sr", root / "lr", root / "hr", out=out, config=_sr_config(),
                  progress=False)
        return out, root / "lr" / "im0.tif"
    if method == "detect":
        (root / "det").mkdir()
        images, labels, _ = spots(root / "det")
        api.train("detect", images, labels, out=out, config=DETECT, progress=False)
        return out, images / "im0.tif"
    (root / "lf").mkdir()
    phase, fluo = write_labelfree(root / "lf")
    api.train("labelfree", phase, fluo, out=out, config=LABELFREE, progress=False)
    return out, phase / "f0.tif"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["n2n", "sr", "labelfree", "unet-seg", "starconvex",
                                    "detect"])
def test_other_methods_package_and_reimport(method, tmp_path):
    bundle, image = _train_other(method, tmp_path)
    package = api.export(bundle, tmp_path / f"{method}.zip", format="bioimageio")
    ours, again = api.predict(bundle, image, check=False), api.predict(package, image,
                                                                       check=False)
    np.testing.assert_array_equal(ours, again)
