"""Train widget: from layers with live curves, stop and resume, the settings form."""

from __future__ import annotations

import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from microsight import api
from microsight.napari.train_widget import TrainWidget

pytestmark = pytest.mark.gui


def tiny_widget(viewer, pair, out, epochs=2):
    low, high = pair
    viewer.add_image(low, name="noisy")
    viewer.add_image(high, name="clean")
    widget = TrainWidget(viewer)
    widget.method.setCurrentText("care")
    widget.input_layer.setCurrentText("noisy")
    widget.target_layer.setCurrentText("clean")
    widget.out.setText(str(out))
    for key, value in {("training", "epochs"): epochs, ("training", "steps_per_epoch"): 3,
                       ("training", "val_tile"): 32, ("data", "patch_size"): [16, 16],
                       ("data", "batch_size"): 4, ("method", "depth"): 1,
                       ("method", "base_channels"): 4}.items():
        widget.form.set_value(key, value)
    return widget


def test_form_follows_the_schema_and_returns_changes(make_napari_viewer):
    widget = TrainWidget(make_napari_viewer())
    widget.method.setCurrentText("care")
    assert widget.form.overrides() == {}
    widget.form.set_value(("training", "learning_rate"), 1e-3)
    widget.form.set_value(("data", "patch_size"), [32, 32])
    assert widget.form.overrides() == {"training": {"learning_rate": 1e-3},
                                       "data": {"patch_size": [32, 32]}}
    schema = api.config_schema("care")["$defs"]["TrainingConfig"]["properties"]
    assert widget.form.fields[("training", "epochs")].widget.toolTip() == \
        schema["epochs"]["description"]
    widget.method.setCurrentText("n2v")  # another method: another form
    assert widget.form.overrides() == {}


def test_training_from_layers_draws_the_curves(make_napari_viewer, qtbot, pair, tmp_path):
    viewer = make_napari_viewer()
    widget = tiny_widget(viewer, pair, tmp_path / "model")
    worker = widget.run()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    assert widget.model is not None and (tmp_path / "model" / "config.yaml").is_file()
    assert len(widget.curve.series["train_loss"]) == 6  # 2 epochs of 3 steps
    assert len(widget.curve.series["val_loss"]) == 2
    assert widget.curve.grab().width() > 0
    assert "model written" in widget.status.text()


def test_stop_then_resume(make_napari_viewer, qtbot, pair, tmp_path):
    viewer = make_napari_viewer()
    widget = tiny_widget(viewer, pair, tmp_path / "model", epochs=4)
    # Stop as soon as the first epoch is saved, as a user pressing Stop would.
    widget.relay.event.connect(lambda e: e.kind == "epoch" and widget.stop_button.click())
    worker = widget.run()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    assert widget.model is None and "stopped" in widget.status.text()
    stopped_at = len(api.info(tmp_path / "model")["history"])
    assert 1 <= stopped_at < 4
    widget.relay.event.disconnect()
    widget.relay.event.connect(widget._progress)
    widget.resume_button.click()
    with qtbot.waitSignal(widget.worker.finished, timeout=120_000):
        pass
    assert widget.model is not None
    assert len(api.info(tmp_path / "model")["history"]) == 4
