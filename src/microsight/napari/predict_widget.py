"""Predict: apply a model bundle to the selected image layer, in a worker thread."""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from microsight import api
from microsight.engine.progress import ProgressEvent
from microsight.errors import MicrosightError, OutOfDistributionWarning
from microsight.napari._qt import LayerPicker, PathField, Relay, report_error, start_worker
from microsight.napari.results import prediction_layers

UNCERTAINTY = {"none": None, "model's own": "model", "test-time augmentation": "tta"}


def run_prediction(model_path: str, data: np.ndarray, *, axes: str | None, tile: int | None,
                   uncertainty: str | None, callback: Any, cancel: threading.Event
                   ) -> dict[str, Any]:
    """Load a model and predict ``data``; collect the out-of-distribution warning.

    Runs in the worker thread. Returns the method's declared outputs, the result,
    the model's pixel size (SMLM) and the warning text (None when the image looks
    like the training data or no check is available).
    """
    model = api.load_model(model_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OutOfDistributionWarning)
        warnings.simplefilter("always", api.ColourWarning)
        result = api.predict(model, data, axes=axes, tile=tile, uncertainty=uncertainty,
                             callback=callback, cancel=cancel)

    def first(kind: type[Warning]) -> str | None:
        return next((str(w.message) for w in caught if issubclass(w.category, kind)), None)

    spec = api.available_methods()[model.method]
    simulation = api.info(model)["config"]["method"].get("simulation") or {}
    return {"outputs": spec.outputs, "result": result, "method": model.method,
            "pixel_size": simulation.get("pixel_size"), "ood": first(OutOfDistributionWarning),
            "colour": first(api.ColourWarning)}


def shipped_choices() -> dict[str, str]:
    """Menu entry -> name of each shipped model (``microsight models``)."""
    return {f"{m['name']}: {m['task']}": m["name"] for m in api.pretrained()}


class PredictWidget(QWidget):
    """Choose a model bundle and an image layer; add the prediction as new layers."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker: Any = None
        self.cancel = threading.Event()
        self.relay = Relay()
        self.relay.event.connect(self._progress)

        self.model = PathField("model folder, .zip or shipped model (nuclei-fluo)")
        self.shipped = QComboBox()
        self.shipped.addItem("choose a shipped model…")
        self.shipped.addItems(list(shipped_choices()))
        self.shipped.textActivated.connect(self._choose_shipped)
        # Long task descriptions must not widen the dock: elide them in the closed box.
        self.shipped.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.shipped.setMinimumContentsLength(24)
        self.image = LayerPicker(napari_viewer, ("image",))
        self.axes = QLineEdit()
        self.axes.setPlaceholderText("YX for 2D; e.g. ZYX, TYX, CYX")
        self.tile = QSpinBox()
        self.tile.setRange(0, 8192)
        self.tile.setSpecialValueText("auto")
        self.uncertainty = QComboBox()
        self.uncertainty.addItems(list(UNCERTAINTY))
        self.run_button = QPushButton("Predict")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.bar = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("model", self.model)
        form.addRow("", self.shipped)
        form.addRow("image", self.image)
        form.addRow("axes", self.axes)
        form.addRow("tile", self.tile)
        form.addRow("uncertainty", self.uncertainty)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addStretch()
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel.set)

    def run(self) -> Any:
        """Start predicting in a worker thread; returns the worker."""
        layer = self.image.layer()
        try:
            if not self.model.text():
                raise MicrosightError("choose a model folder or .zip, or type the name of a "
                                      "shipped model (microsight models)")
            if layer is None:
                raise MicrosightError("add an image layer to predict on")
        except MicrosightError as exc:
            report_error(exc)
            return None
        self.cancel.clear()
        self._busy(True, f"predicting {layer.name}…")
        # napari shows a colour photograph (H&E) as one RGB layer: its last axis is colour.
        axes = self.axes.text().strip() or ("YXC" if getattr(layer, "rgb", False) else None)
        args = dict(axes=axes, tile=self.tile.value() or None,
                    uncertainty=UNCERTAINTY[self.uncertainty.currentText()],
                    callback=self.relay.event.emit, cancel=self.cancel)
        data, name = np.asarray(layer.data), layer.name
        model_path = self.model.text()
        self.worker = start_worker(
            lambda: run_prediction(model_path, data, **args),
            done=lambda out: self._show(out, name, model_path, layer),
            finished=lambda: self._busy(False))
        return self.worker

    def _choose_shipped(self, entry: str) -> None:
        name = shipped_choices().get(entry)
        if name:
            self.model.setText(name)

    def _busy(self, busy: bool, text: str | None = None) -> None:
        self.run_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        if busy:
            self.bar.setValue(0)
        if text is not None:
            self.status.setText(text)
        elif not busy and self.status.text().endswith("…"):
            self.status.setText("stopped")

    def _progress(self, event: ProgressEvent) -> None:
        if event.total:
            self.bar.setMaximum(event.total)
            self.bar.setValue(event.done)

    def _show(self, out: dict[str, Any], name: str, model_path: str, source: Any) -> None:
        from napari.utils.notifications import show_warning

        verdict = ({"verdict": "outside the training data", "message": out["ood"]}
                   if out["ood"] else {"verdict": "no out-of-distribution warning"})
        metadata = {"model": model_path, "method": out["method"],
                    "out_of_distribution": verdict,
                    **({"colour": out["colour"]} if out["colour"] else {})}
        layers = prediction_layers(out["outputs"], out["result"], f"{name} {out['method']}",
                                   metadata, out["pixel_size"])
        # An RGB layer's last axis is colour, not space: its scale has one entry fewer.
        in_shape = source.data.shape[:-1] if getattr(source, "rgb", False) else source.data.shape
        for data, kwargs, kind in layers:
            if kind != "points":
                kwargs.setdefault("scale", _scaled(source.scale, data.shape, in_shape))
            getattr(self.viewer, f"add_{kind}")(data, **kwargs)
        self.bar.setValue(self.bar.maximum())
        grey = "; colour made grey (mean of R, G, B)" if out["colour"] else ""
        self.status.setText(f"{out['method']}: {len(layers)} layer(s) added; "
                            f"{verdict['verdict']}{grey}")
        if out["ood"]:
            show_warning(f"microsight: {out['ood']}")


def _scaled(scale: Any, out_shape: tuple[int, ...], in_shape: tuple[int, ...]) -> list[float]:
    """The input layer's scale, finer where the output has more pixels (super-resolution)."""
    scale = list(scale)
    if len(out_shape) != len(scale):
        return [1.0] * len(out_shape)
    return [s * i / o if o else s for s, i, o in zip(scale, in_shape, out_shape, strict=True)]

