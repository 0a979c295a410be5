"""Evaluate: score a model against ground truth (layers or folders), open its report."""

from __future__ import annotations

import shutil
import tempfile
import webbrowser
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from microsight import api
from microsight.errors import MicrosightError
from microsight.napari._qt import LayerPicker, PathField, data_pages, report_error, start_worker
from microsight.napari.train_widget import layers_to_folders


def run_evaluation(model_path: str, source: dict[str, Any], report: str) -> dict[str, Any]:
    """Evaluate in the worker thread; layers are written to a temporary folder first."""
    tmp = None
    try:
        if "folders" in source:
            inp, tgt = source["folders"]
        else:
            tmp = Path(tempfile.mkdtemp(prefix="microsight-napari-"))
            inp, tgt = layers_to_folders(tmp, *source["arrays"])
        result = api.evaluate(model_path, inp, tgt, report=report, axes=source.get("axes"))
        overfitting = api.info(model_path)["qc"].get("overfitting") or {}
        return {"evaluation": result, "overfitting": overfitting}
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


class EvaluateWidget(QWidget):
    """Score a model on held-out images against the classical baselines."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker: Any = None
        self.evaluation: Any = None
        self.model = PathField("model folder or .zip")
        self.source = QComboBox()
        self.source.addItems(["layers", "folders"])
        self.input_layer = LayerPicker(napari_viewer, ("image",))
        self.target_layer = LayerPicker(napari_viewer, ("image", "labels"))
        self.input_folder = PathField("held-out inputs (folder)")
        self.target_folder = PathField("ground truth, paired by name (folder)")
        self.axes = QLineEdit()
        self.axes.setPlaceholderText("YX for 2D; e.g. ZYX, CYX")
        self.report = PathField("report .html or .pdf (default: a temporary file)",
                                folder=False)
        self.run_button = QPushButton("Evaluate")
        self.open_button = QPushButton("Open report")
        self.open_button.setEnabled(False)
        self.verdict = QLabel("")
        self.verdict.setWordWrap(True)
        self.table = QTableWidget(0, 0)
        self.setMinimumWidth(440)  # room for the source names and two metrics
        self._layout()
        self.source.currentIndexChanged.connect(self.pages.setCurrentIndex)
        self.run_button.clicked.connect(self.run)
        self.open_button.clicked.connect(self.open_report)

    def _layout(self) -> None:
        self.pages = data_pages(self.input_layer, self.target_layer, self.input_folder,
                                 self.target_folder, "ground truth")
        top = QFormLayout()
        top.addRow("model", self.model)
        top.addRow("data from", self.source)
        rest = QFormLayout()
        rest.addRow("axes", self.axes)
        rest.addRow("report", self.report)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.pages)
        layout.addLayout(rest)
        layout.addWidget(self.run_button)
        layout.addWidget(self.verdict)
        layout.addWidget(self.table)
        layout.addWidget(self.open_button)

    def _source(self) -> dict[str, Any]:
        axes = self.axes.text().strip() or None
        if self.source.currentText() == "folders":
            if not (self.input_folder.text() and self.target_folder.text()):
                raise MicrosightError("choose the input and ground-truth folders")
            return {"folders": (self.input_folder.text(), self.target_folder.text()),
                    "axes": axes}
        image, target = self.input_layer.layer(), self.target_layer.layer()
        if image is None or target is None:
            raise MicrosightError("choose an image layer and its ground-truth layer")
        data = np.asarray(image.data)
        if axes is None and data.ndim != 2:
            raise MicrosightError(f"layer {image.name} is {data.ndim}D: give its axes")
        return {"arrays": (data, np.asarray(target.data), axes or "YX"), "axes": axes or "YX"}

    def run(self) -> Any:
        """Start the evaluation in a worker thread; returns the worker."""
        try:
            if not self.model.text():
                raise MicrosightError("choose a model folder or .zip first")
            source = self._source()
        except MicrosightError as exc:
            report_error(exc)
            return None
        report = self.report.text() or str(
            Path(tempfile.mkdtemp(prefix="microsight-report-")) / "report.html")
        self.run_button.setEnabled(False)
        self.verdict.setText("evaluating…")
        model = self.model.text()
        self.worker = start_worker(lambda: run_evaluation(model, source, report),
                                   done=self._show,
                                   finished=lambda: self.run_button.setEnabled(True))
        return self.worker

    def _show(self, out: dict[str, Any]) -> None:
        self.evaluation = result = out["evaluation"]
        images = result.summary[0].get("images") if result.summary else None
        lines = [f"verdict: {result.verdict.kind}. {result.verdict.text}"] if result.verdict else []
        lines += [f"mean over {images} image(s)"] if images else []
        network = next((r for r in result.summary if r["source"] == "network"), None)
        if network is not None:
            metric = next((k for k, v in network.items()
                           if isinstance(v, float) and "CI" not in k), None)
            if metric:
                others = ", ".join(f"{r['source']} {r[metric]:.4g}" for r in result.summary
                                   if r["source"] != "network" and metric in r)
                lines.append(f"{metric}: network {network[metric]:.4g}"
                             + (f"; baselines: {others}" if others else ""))
        if out["overfitting"]:
            lines.append(f"over-fitting check: {out['overfitting'].get('status')} — "
                         f"{out['overfitting'].get('message', '')}")
        self.verdict.setText("\n".join(lines) or "evaluated")
        self._fill(result.summary)
        self.open_button.setEnabled(result.report_path is not None)

    def _fill(self, rows: list[dict[str, Any]]) -> None:
        # Source and mean metrics; intervals and image counts are in the report.
        columns = [c for c in rows[0] if "CI" not in c and c != "images"] if rows else []
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels(columns)
        for i, row in enumerate(rows):
            for j, col in enumerate(columns):
                value = row[col]
                text = f"{value:.4g}" if isinstance(value, float) else str(value)
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

    def open_report(self) -> None:
        """Open the HTML (or PDF) report in the web browser."""
        if self.evaluation is not None and self.evaluation.report_path is not None:
            webbrowser.open(Path(self.evaluation.report_path).resolve().as_uri())
