"""Training on 2 CPU processes with distributed data parallel (gloo), then resuming."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from microsight import api
from tests.conftest import TINY_CONFIG, write_pairs

# Slow as well: the default run stays short; CI runs them with `-m dask`.
pytestmark = [pytest.mark.dask, pytest.mark.slow]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed")
def test_two_process_training_finishes_and_resumes(tmp_path: Path) -> None:
    low, high = write_pairs(tmp_path)
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["training"]["early_stopping_patience"] = None
    model = api.train("care", low, high, out=tmp_path / "m", config=cfg, progress=False,
                      devices=2)
    assert [int(r["epoch"]) for r in model.history] == [0, 1]
    assert (tmp_path / "m" / "checkpoints" / "last.ckpt").is_file()
    assert model.qc["epochs_run"] == 2
    resumed = api.train("care", low, high, out=tmp_path / "m", epochs=3, resume=True,
                        progress=False, devices=2)
    assert [int(r["epoch"]) for r in resumed.history] == [0, 1, 2]
    # The resumed run continued from the checkpoint: the first two rows are unchanged.
    assert resumed.history[:2] == model.history[:2]
    assert not [p for p in (tmp_path / "m").rglob(".*tmp*")]
