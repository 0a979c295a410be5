"""Fine-tuning: a run started from a bundle's weights carries them over, or refuses clearly."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from microsight import train
from microsight.cli import main
from microsight.engine.bundle import load_model
from microsight.errors import MicrosightError
from tests.conftest import TINY_CONFIG

# One step at a negligible learning rate: the weights stay those the run started from.
STILL = {**TINY_CONFIG, "training": {**TINY_CONFIG["training"], "epochs": 1,
                                     "steps_per_epoch": 1, "learning_rate": 1e-9,
                                     "lr_schedule": "constant"}}


def _weights(model):
    return {k: v.detach().numpy() for k, v in model.module.state_dict().items()}


def test_fine_tuning_starts_from_the_given_weights(tmp_path, tiny_model):
    source, low, high = tiny_model
    tuned = train("care", low, high, out=tmp_path / "tuned", config=STILL,
                  init_from=source.path, progress=False)
    fresh = train("care", low, high, out=tmp_path / "fresh", config=STILL, progress=False)
    ref, got, other = _weights(source), _weights(tuned), _weights(fresh)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], atol=1e-6, err_msg=k)
    assert any(not np.allclose(other[k], ref[k], atol=1e-3) for k in ref)
    # The same validation images score as they did for the source model.
    assert tuned.history[0]["val_loss"] == pytest.approx(source.qc["best_val_loss"], rel=1e-3)
    assert tuned.config.training.init_from == str(source.path)
    assert "fine-tuned from" in (tmp_path / "tuned" / "README.md").read_text()


def test_fine_tuning_refuses_another_network(tmp_path, tiny_model):
    source, low, high = tiny_model
    wider = {**STILL, "method": {**STILL["method"], "base_channels": 8}}
    with pytest.raises(MicrosightError, match="another network"):
        train("care", low, high, out=tmp_path / "m", config=wider, init_from=source.path,
              progress=False)


def test_fine_tuning_refuses_another_method(tmp_path, tiny_model):
    source, low, _ = tiny_model
    cfg = {**STILL, "method": {"method": "n2v", "depth": 1, "base_channels": 4}}
    with pytest.raises(MicrosightError, match="is a care model"):
        train("n2v", low, out=tmp_path / "m", config=cfg, init_from=source.path,
              progress=False)


def test_cli_init_from(tmp_path, tiny_model, capsys):
    source, low, high = tiny_model
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(STILL))
    out = tmp_path / "m"
    assert main(["train", "care", "-i", str(low), "-t", str(high), "-o", str(out),
                 "--config", str(cfg), "--init-from", str(source.path), "--no-progress"]) == 0
    assert load_model(out).config.training.init_from == str(source.path)
    assert main(["train", "care", "-i", str(low), "-t", str(high), "-o", str(tmp_path / "x"),
                 "--config", str(cfg), "--init-from", str(tmp_path / "missing"),
                 "--no-progress"]) == 2
    assert "not found" in capsys.readouterr().err
