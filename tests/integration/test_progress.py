"""Progress events and cancellation: what a GUI needs to draw curves and stop a run."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from safetensors.numpy import load_file

from microsight import api
from microsight.engine.bundle import read_history
from microsight.errors import Cancelled
from tests.conftest import TINY_CONFIG

CONFIG = {**TINY_CONFIG, "training": {**TINY_CONFIG["training"], "epochs": 3,
                                      "steps_per_epoch": 4, "early_stopping_patience": None,
                                      "lr_schedule": "constant"}}


def test_training_reports_steps_and_epochs(tmp_path, pair_dirs):
    low, high = pair_dirs
    events = []
    api.train("care", low, high, out=tmp_path / "m", config=CONFIG, progress=False,
              callback=events.append)
    steps = [e for e in events if e.kind == "step"]
    epochs = [e for e in events if e.kind == "epoch"]
    assert [e.done for e in steps] == list(range(1, 13))
    assert all(e.total == 12 and e.metrics["train_loss"] > 0 for e in steps)
    assert [e.epoch for e in epochs] == [1, 2, 3]
    assert all(e.metrics["val_loss"] is not None for e in epochs)


def test_cancelled_training_resumes_to_the_unbroken_weights(tmp_path, pair_dirs):
    low, high = pair_dirs
    reference = api.train("care", low, high, out=tmp_path / "ref", config=CONFIG,
                          progress=False)
    stop = threading.Event()

    def cancel_in_second_epoch(event):
        if event.kind == "step" and event.epoch == 2 and event.done == 6:
            stop.set()

    out = tmp_path / "cut"
    with pytest.raises(Cancelled, match="--resume"):
        api.train("care", low, high, out=out, config=CONFIG, progress=False,
                  callback=cancel_in_second_epoch, cancel=stop)
    assert len(read_history((out / "history.csv").read_text())) == 1
    api.train("care", low, high, out=out, config=CONFIG, progress=False, resume=True)
    assert len(read_history((out / "history.csv").read_text())) == 3
    ours, theirs = load_file(out / "weights.safetensors"), load_file(
        reference.path / "weights.safetensors")
    for name, value in theirs.items():
        np.testing.assert_allclose(ours[name], value, rtol=1e-5, atol=1e-6)


def test_prediction_reports_tiles_and_can_be_cancelled(tmp_path, tiny_model):
    model = tiny_model[0]
    image = np.random.default_rng(0).random((96, 96)).astype(np.float32)
    events = []
    api.predict(model, image, tile=32, overlap=8, callback=events.append, check=False)
    assert events[-1].kind == "tiles" and events[-1].done == events[-1].total > 1
    stop = threading.Event()
    stop.set()
    out = tmp_path / "never.tif"
    with pytest.raises(Cancelled):
        api.predict(model, image, out=out, tile=32, overlap=8, cancel=stop, check=False)
    assert not list(tmp_path.iterdir())
