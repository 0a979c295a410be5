"""Small Qt helpers shared by the widgets: worker threads, messages, layer pickers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QWidget,
)

from microsight.errors import Cancelled, MicrosightError


class Relay(QObject):
    """Carries progress events from a worker thread to the UI thread.

    A signal emitted in the worker reaches slots of this object (which lives in
    the UI thread) through Qt's event queue, so the UI never waits on the work.
    """

    event = Signal(object)


def start_worker(func: Callable[[], Any], *, done: Callable[[Any], None],
                 finished: Callable[[], None]) -> Any:
    """Run ``func`` in a napari worker thread; ``done(result)`` in the UI thread after."""
    from napari.qt.threading import create_worker

    # Connected here, "errored" replaces the default handler that re-raises in the UI.
    return create_worker(func, _connect={"returned": done, "errored": report_error,
                                         "finished": finished})


def report_error(exc: BaseException) -> None:
    """Show an error of the work as a napari notification (one line for user errors)."""
    from napari.utils.notifications import show_error, show_info

    if isinstance(exc, Cancelled):
        show_info(f"microsight: {exc}")
    elif isinstance(exc, MicrosightError):
        show_error(f"microsight: {exc}")
    else:
        show_error(f"microsight: {type(exc).__name__}: {exc}")


class LayerPicker(QComboBox):
    """A combo box of the viewer's layers of some types, kept up to date."""

    def __init__(self, viewer: Any, kinds: tuple[str, ...], optional: bool = False) -> None:
        super().__init__()
        self.viewer, self.kinds, self.optional = viewer, kinds, optional
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(self.refresh)
        self.refresh()

    def refresh(self, *_: Any) -> None:
        """Re-read the layer list, keeping the current choice when it still exists."""
        current = self.currentText()
        self.clear()
        if self.optional:
            self.addItem("")
        names = [layer.name for layer in self.viewer.layers
                 if type(layer).__name__.lower() in self.kinds]
        self.addItems(names)
        if current in names:
            self.setCurrentText(current)
        elif names:
            self.setCurrentText(names[-1])

    def layer(self) -> Any:
        """The chosen layer, or None."""
        name = self.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None


class PathField(QWidget):
    """A line edit with a Browse button for a folder (or a file)."""

    def __init__(self, placeholder: str = "", folder: bool = True) -> None:
        super().__init__()
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.folder = folder
        button = QPushButton("Browse…")
        button.clicked.connect(self._browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit)
        layout.addWidget(button)

    def _browse(self) -> None:
        if self.folder:
            path = QFileDialog.getExistingDirectory(self, "Choose a folder")
        else:
            path = QFileDialog.getOpenFileName(self, "Choose a file")[0]
        if path:
            self.edit.setText(path)

    def text(self) -> str:
        """The path typed or chosen, stripped."""
        return self.edit.text().strip()

    def setText(self, text: str) -> None:
        """Set the path."""
        self.edit.setText(text)


def data_pages(input_layer: QWidget, target_layer: QWidget, input_folder: QWidget,
               target_folder: QWidget, target_label: str) -> QStackedWidget:
    """Two pages of data pickers, from layers (page 0) or from folders (page 1)."""
    layers, folders = QWidget(), QWidget()
    lf, ff = QFormLayout(layers), QFormLayout(folders)
    for form in (lf, ff):
        form.setContentsMargins(0, 0, 0, 0)
    lf.addRow("image", input_layer)
    lf.addRow(target_label, target_layer)
    ff.addRow("input", input_folder)
    ff.addRow(target_label, target_folder)
    pages = QStackedWidget()
    pages.addWidget(layers)
    pages.addWidget(folders)
    # Only as tall as its form: the space below goes to the results.
    pages.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
    return pages
