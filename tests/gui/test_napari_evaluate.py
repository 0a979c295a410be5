"""Evaluate widget, sample data and the plugin manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from microsight.napari import samples
from microsight.napari.evaluate_widget import EvaluateWidget

pytestmark = pytest.mark.gui


def test_evaluation_against_a_ground_truth_layer(make_napari_viewer, qtbot, care_model, pair,
                                                 tmp_path, monkeypatch):
    viewer = make_napari_viewer()
    low, high = pair
    viewer.add_image(low, name="noisy")
    viewer.add_image(high, name="truth")
    widget = EvaluateWidget(viewer)
    widget.model.setText(str(care_model))
    widget.input_layer.setCurrentText("noisy")
    widget.target_layer.setCurrentText("truth")
    widget.report.setText(str(tmp_path / "report.html"))
    worker = widget.run()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    assert widget.evaluation is not None
    sources = [widget.table.item(i, 0).text() for i in range(widget.table.rowCount())]
    assert "network" in sources and len(sources) >= 2
    assert "network" in widget.verdict.text()
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    widget.open_button.click()
    assert opened == [(tmp_path / "report.html").resolve().as_uri()]
    assert (tmp_path / "report.html").is_file()


def test_sample_data():
    [(image, _, kind)] = samples.nuclei()
    assert kind == "image" and image.shape == (512, 512)
    (movie, _, k1), (points, pmeta, k2) = samples.smlm_movie()
    assert (k1, k2) == ("image", "points") and movie.shape == (100, 64, 64)
    assert points.shape[1] == 3 and len(points) > 0
    assert points[:, 0].max() < 100 and (points[:, 1:] > -1).all() and (points[:, 1:] < 64).all()
    assert len(pmeta["features"]["photons"]) == len(points)


def test_manifest_is_valid_and_opens_samples_and_widgets(make_napari_viewer, npe2pm):
    import npe2

    path = Path(samples.__file__).with_name("napari.yaml")
    manifest = npe2.PluginManifest.from_file(path)
    assert manifest.name == "microsight"
    assert {w.display_name for w in manifest.contributions.widgets} == {
        "Predict", "Train", "Evaluate"}
    with npe2pm.tmp_plugin(manifest=manifest):
        viewer = make_napari_viewer()
        viewer.open_sample("microsight", "nuclei")
        assert viewer.layers[-1].name == "nuclei"
        assert np.asarray(viewer.layers[-1].data).shape == (512, 512)
        for name in ("Predict", "Train", "Evaluate"):
            _, widget = viewer.window.add_plugin_dock_widget("microsight", name)
            assert type(widget).__name__ == f"{name}Widget"
            # napari hands the widget its viewer: the layer pickers list its layers.
            picker = widget.image if name == "Predict" else widget.input_layer
            assert picker.currentText() == "nuclei"
