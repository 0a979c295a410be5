"""Every registered method keeps the contract: declared, configurable, trainable, usable.

Parametrized over the registry: a method added to microsight (or by another
package) is checked here as soon as it registers. A method without tiny data
in ``TINY_DATA`` fails its test, which says what to add.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from microsight import api
from microsight.config import available_methods, config_to_yaml, get_method, load_config
from microsight.config.describe import config_schema, config_yaml
from microsight.engine.bundle import load_model
from microsight.engine.module import MicrosightModule
from microsight.io import write_image
from tests.conftest import blobs, write_pairs
from tests.integration.test_classify import write_class_folder
from tests.integration.test_detect import spots
from tests.integration.test_labelfree import write_labelfree
from tests.integration.test_segmentation_methods import write_set

METHODS = sorted(available_methods())
STEPS = {"epochs": 1, "steps_per_epoch": 2, "val_tile": 32}
SMALL_UNET = {"depth": 1, "base_channels": 4}
SIM = {"frames": 8, "shape": [16, 16], "density": 3.0}

# method -> (method fields, make(root) -> (train input, train target, test input, test target,
#            prediction input, its axes))
Data = tuple[Path | None, Path | None, Path, Path | None, Path, str | None]


def _pairs(root: Path) -> Data:
    low, high = write_pairs(root)
    return low, high, low, high, low / "im0.tif", None


def _noisy(root: Path) -> Data:
    low, high = write_pairs(root)
    return low, None, low, high, low / "im0.tif", None


def _noise_pairs(root: Path) -> Data:
    low, high = write_pairs(root)
    other = root / "low2"
    other.mkdir()
    for f in sorted(low.iterdir()):
        img = tifffile.imread(f)
        tifffile.imwrite(other / f.name, img + np.random.default_rng(1).normal(0, 20, img.shape)
                         .astype(np.float32))
    return low, other, low, high, low / "im0.tif", None


def _sr(root: Path) -> Data:
    hr, lr = root / "hr", root / "lr"
    hr.mkdir()
    lr.mkdir()
    for i in range(2):
        clean = blobs((48, 48), 20 + i)
        tifffile.imwrite(hr / f"im{i}.tif", clean)
        tifffile.imwrite(lr / f"im{i}.tif", clean.reshape(24, 2, 24, 2).mean(axis=(1, 3)))
    return lr, hr, lr, hr, lr / "im0.tif", None


def _iso(root: Path) -> Data:
    z = np.linspace(-1, 1, 16)[:, None, None]
    iso = blobs((16, 16, 16), 5) + 60 * np.exp(-z**2 / 0.1)
    stacks, truth = root / "in", root / "gt"
    stacks.mkdir()
    truth.mkdir()
    write_image(stacks / "s.ome.tif", iso[1::4].astype(np.float32), "ZYX",
                {"Z": 1.0, "Y": 0.25, "X": 0.25})
    write_image(truth / "s.ome.tif", iso.astype(np.float32), "ZYX")
    return stacks, None, stacks, truth, stacks / "s.ome.tif", None


def _segmentation(root: Path) -> Data:
    images, labels = write_set(root)
    return images, labels, images, labels, images / "n0.tif", None


def _detection(root: Path) -> Data:
    images, labels, _ = spots(root)
    return images, labels, images, labels, images / "im0.tif", None


def _crops(root: Path) -> Data:
    data = write_class_folder(root / "cells", {"round": 6, "bar": 6})
    return data, None, data, None, data / "round" / "round0.tif", "CYX"


def _labelfree(root: Path) -> Data:
    phase, fluo = write_labelfree(root)
    return phase, fluo, phase, fluo, phase / "f0.tif", None


def _movie(root: Path) -> Data:
    from microsight.data.smlm import SimulationConfig, simulate
    from microsight.io.localizations import write_localizations

    sim = simulate(SimulationConfig(**{**SIM, "seed": 9}))
    tifffile.imwrite(root / "movie.tif", sim.movie.astype(np.uint16))
    truth = write_localizations(root / "truth.csv", sim.truth)
    return None, None, root / "movie.tif", truth, root / "movie.tif", "TYX"


SMLM = {**SMALL_UNET, "train_frames": 8, "val_frames": 2, "simulation": SIM}
TINY_DATA: dict[str, tuple[dict, Callable[[Path], Data]]] = {
    "care": (SMALL_UNET, _pairs),
    "n2n": (SMALL_UNET, _noise_pairs),
    "n2v": ({**SMALL_UNET, "masked_fraction": 0.02}, _noisy),
    "sr": (SMALL_UNET, _sr),
    "care-iso": (SMALL_UNET, _iso),
    "distmap": (SMALL_UNET, _segmentation),
    "starconvex": ({**SMALL_UNET, "n_rays": 8}, _segmentation),
    "unet-seg": (SMALL_UNET, _segmentation),
    "detect": (SMALL_UNET, _detection),
    "classify": ({"widths": [4, 8]}, _crops),
    "embed": ({"widths": [4, 8], "projection_dim": 8}, _crops),
    "labelfree": ({**SMALL_UNET, "z_as_channels": True}, _labelfree),
    "localize": (SMLM, _movie),
    "deepstorm": ({**SMLM, "factor": 4}, _movie),
}


def _tiny(method: str) -> tuple[dict, Callable[[Path], Data]]:
    if method not in TINY_DATA:
        pytest.fail(f"method {method!r} has no tiny data in tests/unit/test_method_contract.py "
                    "TINY_DATA: add its fields and a data maker")
    fields, make = TINY_DATA[method]
    config = {"name": f"tiny-{method}", "method": {"method": method, **fields},
              "data": {"patch_size": [16, 16], "batch_size": 4, "val_fraction": 0.3},
              "training": STEPS}
    return config, make


@pytest.mark.parametrize("method", METHODS)
def test_declaration_config_and_schema(method: str, tmp_path: Path) -> None:
    spec = get_method(method)
    spec.check()
    assert issubclass(spec.module_class, MicrosightModule)
    for part in ("training_data", "predictor", "evaluator"):
        assert callable(spec.part(part))
    # The commented YAML is a complete configuration that round-trips.
    path = tmp_path / "c.yaml"
    path.write_text(config_yaml(method))
    config = load_config(path)
    assert config.method.method == method
    assert load_config(_write(tmp_path / "again.yaml", config_to_yaml(config))) == config
    # The schema describes the method's own fields, with defaults and descriptions.
    schema = config_schema(method)
    json.dumps(schema)
    own = schema["$defs"][spec.config_class.__name__]["properties"]
    assert set(own) == set(spec.config_class.model_fields)
    assert all("description" in f for name, f in own.items() if name != "method")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("method", METHODS)
def test_train_predict_evaluate_reload(method: str, tmp_path: Path) -> None:
    config, make = _tiny(method)
    spec = get_method(method)
    (tmp_path / "data").mkdir()
    train_in, train_target, test_in, test_target, image, axes = make(tmp_path / "data")
    assert (train_target is not None) == bool(spec.needs_target) or spec.needs_target is None
    model = api.train(method, train_in, train_target, out=tmp_path / "model", config=config,
                      progress=False)
    assert len(model.history) == 1 and np.isfinite(model.history[0]["train_loss"])
    reloaded = load_model(tmp_path / "model")
    assert reloaded.config == model.config
    for name, value in model.module.state_dict().items():
        np.testing.assert_array_equal(reloaded.module.state_dict()[name].numpy(),
                                      value.numpy())
    result = api.predict(reloaded, image, axes=axes, check=False)
    assert result is not None
    if isinstance(result, np.ndarray) and result.dtype.kind == "f":
        assert np.isfinite(result).all()
    evaluation = api.evaluate(reloaded, test_in, test_target, axes=axes,
                              report=tmp_path / "report.html")
    sources = [row["source"] for row in evaluation.summary]
    assert sources[0].startswith("network"), sources
    html = (tmp_path / "report.html").read_text()
    # Every report opens with the verdict in words.
    assert html.index("<h2>Verdict</h2>") == html.index("<h2>")
    assert evaluation.verdict is not None and html_escape(evaluation.verdict.text) in html
    assert yaml.safe_load((tmp_path / "model" / "config.yaml").read_text())["method"][
        "method"] == method
