"""Interrupted training: Ctrl-C, SIGTERM and kill -9 each leave a resumable model folder,
and ``--resume`` ends with the same weights as an unbroken run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file

from microsight.cli import main
from microsight.engine.bundle import read_history
from tests.conftest import TINY_CONFIG, write_pairs

CONFIG = {**TINY_CONFIG, "training": {**TINY_CONFIG["training"], "epochs": 3,
                                      "steps_per_epoch": 6, "early_stopping_patience": None,
                                      "lr_schedule": "constant"}}
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(Path(__file__).resolve().parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}


def _command(data, out, *extra):
    low, high, cfg = data
    return ["train", "care", "-i", str(low), "-t", str(high), "-o", str(out), "--config",
            str(cfg), "--no-progress", *extra]


def _epochs(folder: Path) -> int:
    path = folder / "history.csv"
    return len(read_history(path.read_text())) if path.exists() else 0


def _weights(folder: Path) -> dict[str, np.ndarray]:
    return load_file(str(folder / "weights.safetensors"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Training data, a config, and the weights of an unbroken run."""
    root = tmp_path_factory.mktemp("interrupt")
    low, high = write_pairs(root)
    cfg = root / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    data = (low, high, cfg)
    assert main(_command(data, root / "reference")) == 0
    return root, data


def _interrupt(runs, name: str, sig: int) -> tuple[Path, int, str]:
    root, data = runs
    out = root / name
    proc = subprocess.Popen([sys.executable, "-m", "microsight", *_command(data, out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=ENV)
    deadline = time.time() + 180
    while time.time() < deadline and _epochs(out) < 1:
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return out, proc.returncode, err


def _resume_matches_reference(runs, out: Path) -> None:
    root, data = runs
    assert 1 <= _epochs(out) < CONFIG["training"]["epochs"], "the run was not interrupted"
    assert json.loads((out / "qc.json").read_text())["complete"] is False
    assert main(_command(data, out, "--resume")) == 0
    reference = _weights(root / "reference")
    resumed = _weights(out)
    assert reference.keys() == resumed.keys()
    for key, value in reference.items():
        np.testing.assert_allclose(resumed[key], value, rtol=1e-4, atol=1e-6)
    assert json.loads((out / "qc.json").read_text())["complete"] is True


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_then_resume(runs, sig, code):
    out, rc, err = _interrupt(runs, f"sig{int(sig)}", sig)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == code, err
    assert len(lines) == 1 and "--resume" in lines[0] and "Traceback" not in err, err
    _resume_matches_reference(runs, out)


def test_kill_nine_then_resume(runs):
    out, rc, _ = _interrupt(runs, "killed", signal.SIGKILL)
    assert rc == -signal.SIGKILL
    _resume_matches_reference(runs, out)


def test_resume_finishes_the_after_training_steps(runs, capsys):
    """A run stopped during its after-training steps: predict warns, --resume completes."""
    root, data = runs
    out = root / "unfinished"
    shutil.copytree(root / "reference", out)
    for name in ("report.html", "ood.json", "README.md"):
        (out / name).unlink(missing_ok=True)
    qc = json.loads((out / "qc.json").read_text())
    (out / "qc.json").write_text(json.dumps({**qc, "complete": False}))
    capsys.readouterr()
    assert main(["predict", str(out), str(data[0] / "im0.tif"), "--out",
                 str(root / "p.tif"), "--no-progress"]) == 0
    assert "unfinished training run" in capsys.readouterr().err
    assert main(_command(data, out, "--resume")) == 0
    assert (out / "report.html").exists() and (out / "ood.json").exists()
    assert json.loads((out / "qc.json").read_text())["complete"] is True
    assert _epochs(out) == CONFIG["training"]["epochs"]
