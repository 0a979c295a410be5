"""A method from another installed package: found through the entry-point group, used by the CLI.

The test writes a tiny package and its distribution metadata (what ``pip
install`` leaves in site-packages) into a folder on ``PYTHONPATH``, so
``importlib.metadata`` finds its ``microsight.methods`` entry points exactly as
it would for an installed plugin.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import write_pairs

INIT = '''
from microsight.config import MethodSpec
from toy_method.config import ToyConfig

SPEC = MethodSpec(
    name="toy", summary="a toy denoiser: one convolution", family="restoration",
    config_class=ToyConfig, module="toy_method.module:ToyModule",
    training_data="toy_method.module:ToyModule.prepare_training", needs_target=True,
    outputs=("image",), metrics=("psnr", "ssim", "nrmse"))

HALF = MethodSpec(
    name="half", summary="forgot its loss", family="restoration",
    config_class=ToyConfig.half(), module="toy_method.module:HalfModule",
    training_data="toy_method.module:HalfModule.prepare_training", needs_target=True,
    outputs=("image",), metrics=("psnr",))
'''
CONFIG = '''
from typing import Literal

from pydantic import Field, create_model

from microsight.config import MethodConfig


class ToyConfig(MethodConfig):
    """One convolution."""

    method: Literal["toy"] = "toy"
    width: int = Field(3, ge=1, description="Kernel size of the convolution (odd).")

    @classmethod
    def half(cls):
        return create_model("HalfConfig", __base__=cls, method=(Literal["half"], "half"))
'''
MODULE = '''
from torch import nn

from microsight.engine.module import MicrosightModule
from microsight.families.restoration.module import RestorationMixin


class ToyModule(RestorationMixin, MicrosightModule):
    def build_network(self, config, in_channels, out_channels):
        w = config.method.width
        return nn.Conv2d(in_channels, out_channels, w, padding=w // 2)

    def loss(self, prediction, target):
        return nn.functional.mse_loss(prediction, target)


class HalfModule(RestorationMixin, MicrosightModule):
    def build_network(self, config, in_channels, out_channels):
        return nn.Conv2d(in_channels, out_channels, 1)
'''
ENTRY_POINTS = "[microsight.methods]\ntoy = toy_method:SPEC\nhalf = toy_method:HALF\n"
TINY = {"name": "toy", "method": {"method": "toy"},
        "data": {"patch_size": [16, 16], "batch_size": 4},
        "training": {"epochs": 1, "steps_per_epoch": 2, "val_tile": 32}}


def _install(site: Path) -> None:
    pkg = site / "toy_method"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(INIT)
    (pkg / "config.py").write_text(CONFIG)
    (pkg / "module.py").write_text(MODULE)
    meta = site / "toy_method-0.1.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-method\nVersion: 0.1\n")
    (meta / "entry_points.txt").write_text(ENTRY_POINTS)


def _cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "microsight", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_plugin_method_trains_predicts_and_evaluates_through_the_cli(tmp_path):
    site = tmp_path / "site"
    _install(site)
    low, high = write_pairs(tmp_path)
    cfg = tmp_path / "toy.yaml"
    cfg.write_text(yaml.safe_dump(TINY))

    listed = _cli(site, "methods")
    assert listed.returncode == 0 and "toy" in listed.stdout and "half" in listed.stdout
    shown = _cli(site, "config", "toy")
    assert "Kernel size of the convolution" in shown.stdout

    model = tmp_path / "model"
    trained = _cli(site, "train", "toy", "-i", str(low), "-t", str(high), "-o", str(model),
                   "--config", str(cfg), "--no-progress")
    assert trained.returncode == 0, trained.stderr
    out = tmp_path / "restored.tif"
    predicted = _cli(site, "predict", str(model), str(low / "im0.tif"), "--out", str(out),
                     "--no-progress")
    assert predicted.returncode == 0, predicted.stderr
    assert out.is_file()
    report = tmp_path / "report.html"
    evaluated = _cli(site, "evaluate", str(model), "-i", str(low), "-t", str(high),
                     "--report", str(report))
    assert evaluated.returncode == 0, evaluated.stderr
    assert "gaussian" in report.read_text()

    half = _cli(site, "train", "half", "-i", str(low), "-t", str(high), "-o",
                str(tmp_path / "half"), "--no-progress")
    assert half.returncode == 2
    assert half.stderr.strip() == ("microsight: error: method 'half': its module HalfModule "
                                   "does not implement loss")
