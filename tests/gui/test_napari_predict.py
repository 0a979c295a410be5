"""Predict widget: layers of the right type, OOD notification, a responsive UI thread."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from microsight import api
from microsight.napari.predict_widget import PredictWidget
from tests.gui.conftest import nuclei

pytestmark = pytest.mark.gui


def predict(qtbot, viewer, model, data, name="input", uncertainty="none"):
    viewer.add_image(data, name=name)
    widget = PredictWidget(viewer)
    widget.model.setText(str(model))
    widget.uncertainty.setCurrentText(uncertainty)
    before = len(viewer.layers)
    worker = widget.run()
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    return widget, viewer.layers[before:]


def test_care_prediction_is_an_image_layer(make_napari_viewer, qtbot, care_model, pair):
    viewer = make_napari_viewer()
    low, _ = pair
    widget, added = predict(qtbot, viewer, care_model, low)
    assert [type(layer).__name__ for layer in added] == ["Image"]
    out = added[0]
    assert out.data.shape == low.shape and np.isfinite(out.data).all()
    assert out.metadata["method"] == "care"
    assert "out_of_distribution" in out.metadata
    assert widget.bar.value() == widget.bar.maximum() > 0


def test_tta_uncertainty_adds_a_second_layer(make_napari_viewer, qtbot, care_model, pair):
    viewer = make_napari_viewer()
    _, added = predict(qtbot, viewer, care_model, pair[0], uncertainty="test-time augmentation")
    assert [layer.name for layer in added] == ["input care", "input care uncertainty"]
    assert (added[1].data >= 0).all()


def test_segmentation_prediction_is_a_labels_layer(make_napari_viewer, qtbot, seg_model):
    viewer = make_napari_viewer()
    img, _ = nuclei((48, 48), 5)
    _, added = predict(qtbot, viewer, seg_model, img)
    assert [type(layer).__name__ for layer in added] == ["Labels"]
    assert added[0].data.shape == img.shape
    assert np.issubdtype(added[0].data.dtype, np.integer)
    # The widget shows exactly what the API predicts.
    np.testing.assert_array_equal(added[0].data, api.predict(seg_model, img))


def test_out_of_distribution_input_raises_a_notification(make_napari_viewer, qtbot,
                                                         care_model):
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    shown = []
    notification_manager.notification_ready.connect(shown.append)
    try:
        # A checkerboard of extreme values looks nothing like the smooth training blobs.
        weird = (np.indices((64, 64)).sum(0) % 2 * 60000.0).astype(np.float32)
        _, added = predict(qtbot, viewer, care_model, weird)
    finally:
        notification_manager.notification_ready.disconnect(shown.append)
    verdict = added[0].metadata["out_of_distribution"]
    assert verdict["verdict"] == "outside the training data"
    assert any("looks unlike the model's training data" in str(n.message) for n in shown)


def test_ui_thread_stays_responsive_during_prediction(make_napari_viewer, qtbot, care_model):
    from qtpy.QtCore import QTimer

    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    viewer.add_image(rng.normal(100, 20, (1024, 1024)).astype(np.float32), name="big")
    widget = PredictWidget(viewer)
    widget.model.setText(str(care_model))
    widget.tile.setValue(32)  # many small tiles: the work takes a while
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    try:
        worker = widget.run()
        # Stop counting when the result arrives, before the layers are added.
        worker.returned.disconnect()
        results = []
        worker.returned.connect(results.append)
        with qtbot.waitSignal(worker.finished, timeout=120_000):
            pass
    finally:
        timer.stop()
    assert results and results[0]["result"].shape == (1024, 1024)
    gaps = np.diff(ticks)
    assert len(ticks) > 10, "the prediction ended too fast to measure"
    print(f"UI thread: {len(ticks)} ticks, max gap {gaps.max() * 1000:.0f} ms")
    assert gaps.max() < 0.2


def test_cancel_stops_a_prediction_without_output(make_napari_viewer, qtbot, care_model):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((512, 512), np.float32), name="big")
    widget = PredictWidget(viewer)
    widget.model.setText(str(care_model))
    widget.tile.setValue(64)
    widget.relay.event.connect(lambda e: widget.cancel_button.click())
    worker = widget.run()
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    assert len(viewer.layers) == 1 and widget.status.text() == "stopped"
    assert widget.run_button.isEnabled() and not widget.cancel_button.isEnabled()


def test_shipped_he_model_on_an_rgb_layer(make_napari_viewer, qtbot):
    """Choose nuclei-he from the menu and predict a colour H&E layer (napari: rgb)."""
    from microsight.data.samples import sample_nuclei_he_annotated
    from microsight.metrics.segmentation import matching
    from microsight.napari.predict_widget import shipped_choices

    viewer = make_napari_viewer()
    image, truth = sample_nuclei_he_annotated()
    layer = viewer.add_image(image, name="he")
    assert layer.rgb
    widget = PredictWidget(viewer)
    entry = next(e for e, name in shipped_choices().items() if name == "nuclei-he")
    widget.shipped.setCurrentText(entry)
    widget.shipped.textActivated.emit(entry)
    assert widget.model.text() == "nuclei-he"
    worker = widget.run()
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    labels = viewer.layers[-1]
    assert type(labels).__name__ == "Labels" and labels.data.shape == truth.shape
    assert "made grey" in labels.metadata["colour"]
    assert "colour made grey" in widget.status.text()
    assert matching(truth, labels.data, (0.5,))[0.5]["ap"] > 0.5  # 0.67 measured
