"""Train: a method, data from layers or folders, a settings form, live loss curves.

Layers are written to a temporary folder of TIFF files and trained on like
folders on the command line; the bundle is written to the chosen output folder
after every epoch, so Stop leaves a model that Resume continues.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
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
    QVBoxLayout,
    QWidget,
)

from microsight import api
from microsight.engine.progress import ProgressEvent
from microsight.errors import MicrosightError
from microsight.napari._qt import (
    LayerPicker,
    PathField,
    Relay,
    data_pages,
    report_error,
    start_worker,
)
from microsight.napari.curve import LossCurve
from microsight.napari.form import SchemaForm


def layers_to_folders(root: Path, image: np.ndarray, target: np.ndarray | None,
                      axes: str) -> tuple[Path, Path | None]:
    """Write an image (and its target) as ``input/layer.tif`` (``target/layer.tif``)."""
    from microsight.io import write_image

    (root / "input").mkdir(parents=True)
    write_image(root / "input" / "layer.tif", image, axes)
    if target is None:
        return root / "input", None
    (root / "target").mkdir()
    # Label and target layers share the image's grid; channels only in the image.
    write_image(root / "target" / "layer.tif", target, axes.replace("C", "")
                if target.ndim < image.ndim else axes)
    return root / "input", root / "target"


def run_training(method: str, source: dict[str, Any], *, out: str, config: dict[str, Any],
                 resume: bool, init_from: str | None, callback: Any,
                 cancel: threading.Event) -> Any:
    """Train in the worker thread from folders or layer arrays (written to a temp folder)."""
    tmp = None
    try:
        if "folders" in source:
            inp, tgt = source["folders"]
        else:
            tmp = Path(tempfile.mkdtemp(prefix="microsight-napari-"))
            inp, tgt = layers_to_folders(tmp, *source["arrays"])
        return api.train(method, inp, tgt, out=out, config=config, resume=resume,
                         axes=source.get("axes"), init_from=init_from, progress=False,
                         callback=callback, cancel=cancel)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


class TrainWidget(QWidget):
    """Pick a method and data, set the main settings, train with live curves."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker: Any = None
        self.model: Any = None
        self.cancel = threading.Event()
        self.relay = Relay()
        self.relay.event.connect(self._progress)

        self.method = QComboBox()
        methods = api.methods()
        for name, summary in methods.items():
            self.method.addItem(name)
            self.method.setItemData(self.method.count() - 1, summary)
        self.source = QComboBox()
        self.source.addItems(["layers", "folders"])
        self.input_layer = LayerPicker(napari_viewer, ("image",))
        self.target_layer = LayerPicker(napari_viewer, ("image", "labels"), optional=True)
        self.input_folder = PathField("training inputs (folder)")
        self.target_folder = PathField("targets, paired by file name (folder)")
        self.axes = QLineEdit()
        self.axes.setPlaceholderText("YX for 2D; e.g. ZYX, CYX")
        self.out = PathField("model folder to write")
        self.init_from = PathField("optional: model to fine-tune")
        self.form_box = QVBoxLayout()
        self.form: SchemaForm | None = None
        self.curve = LossCurve()
        self.bar = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.train_button = QPushButton("Train")
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume")
        self.stop_button.setEnabled(False)
        self._layout()
        self.method.currentTextChanged.connect(self._method_changed)
        self.source.currentIndexChanged.connect(self.data_pages.setCurrentIndex)
        self.train_button.clicked.connect(lambda: self.run(resume=False))
        self.resume_button.clicked.connect(lambda: self.run(resume=True))
        self.stop_button.clicked.connect(self.cancel.set)
        self._method_changed(self.method.currentText())

    def _layout(self) -> None:
        self.data_pages = data_pages(self.input_layer, self.target_layer, self.input_folder,
                                 self.target_folder, "target")
        top = QFormLayout()
        top.addRow("method", self.method)
        top.addRow("data from", self.source)
        buttons = QHBoxLayout()
        for b in (self.train_button, self.stop_button, self.resume_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.data_pages)
        rest = QFormLayout()
        rest.addRow("axes", self.axes)
        rest.addRow("model folder", self.out)
        rest.addRow("fine-tune from", self.init_from)
        layout.addLayout(rest)
        layout.addLayout(self.form_box)
        layout.addLayout(buttons)
        layout.addWidget(self.bar)
        layout.addWidget(self.curve)
        layout.addWidget(self.status)
        layout.addStretch()

    def _method_changed(self, method: str) -> None:
        if self.form is not None:
            self.form_box.removeWidget(self.form)
            self.form.deleteLater()
        self.form = SchemaForm(api.config_schema(method))
        self.form_box.addWidget(self.form)
        self.method.setToolTip(self.method.currentData() or "")
        if not self.out.text() or Path(self.out.text()).name.startswith("microsight-"):
            self.out.setText(str(Path.home() / "microsight-models" / f"microsight-{method}"))

    def _source(self) -> dict[str, Any]:
        axes = self.axes.text().strip() or None
        if self.source.currentText() == "folders":
            if not self.input_folder.text():
                raise MicrosightError("choose the folder of training inputs")
            target = self.target_folder.text() or None
            return {"folders": (self.input_folder.text(), target), "axes": axes}
        image = self.input_layer.layer()
        if image is None:
            raise MicrosightError("add an image layer to train on")
        target = self.target_layer.layer()
        data = np.asarray(image.data)
        if axes is None and data.ndim != 2:
            raise MicrosightError(f"layer {image.name} is {data.ndim}D: give its axes, "
                                  "e.g. ZYX or CYX")
        arrays = (data, None if target is None else np.asarray(target.data), axes or "YX")
        return {"arrays": arrays, "axes": axes or "YX"}

    def run(self, resume: bool = False) -> Any:
        """Start (or resume) training in a worker thread; returns the worker."""
        try:
            source = self._source()
            out = self.out.text()
            if not out:
                raise MicrosightError("choose a model folder to write")
            config = self.form.overrides() if self.form is not None else {}
        except MicrosightError as exc:
            report_error(exc)
            return None
        method = self.method.currentText()
        config["method"] = {**config.get("method", {}), "method": method}
        self.cancel.clear()
        if not resume:
            self.curve.clear()
        self._busy(True, f"{'resuming' if resume else 'training'} {method}…")
        init = self.init_from.text() or None
        self.worker = start_worker(
            lambda: run_training(method, source, out=out, config=config, resume=resume,
                                 init_from=init, callback=self.relay.event.emit,
                                 cancel=self.cancel),
            done=self._done, finished=lambda: self._busy(False))
        return self.worker

    def _busy(self, busy: bool, text: str | None = None) -> None:
        self.train_button.setEnabled(not busy)
        self.resume_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        if text is not None:
            self.status.setText(text)
        elif not busy and self.status.text().endswith("…"):
            self.status.setText("stopped: Resume continues from the last complete epoch")

    def _progress(self, event: ProgressEvent) -> None:
        if event.total:
            self.bar.setMaximum(event.total)
            self.bar.setValue(event.done)
        self.curve.add_event(event)
        if event.kind == "epoch":
            val = event.metrics.get("val_loss")
            self.status.setText(f"epoch {event.epoch}: validation loss "
                                f"{val:.4g}…" if isinstance(val, float) else
                                f"epoch {event.epoch}…")

    def _done(self, model: Any) -> None:
        self.model = model
        self.bar.setValue(self.bar.maximum())
        self.status.setText(f"model written to {self.out.text()}")
