"""A small live plot of training and validation loss, drawn with QPainter.

No plotting library: napari's dock needs only a few lines, and QPainter keeps
the widget light and fast to update after every step.
"""

from __future__ import annotations

import math
from typing import Any

from qtpy.QtCore import QPointF
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

from microsight.engine.progress import ProgressEvent

COLOURS = {"train_loss": QColor(90, 170, 255), "val_loss": QColor(255, 150, 60)}
MARGIN = 34


class LossCurve(QWidget):
    """Train loss per step and validation loss per epoch, on a log scale."""

    def __init__(self) -> None:
        super().__init__()
        self.series: dict[str, list[tuple[float, float]]] = {"train_loss": [], "val_loss": []}
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def clear(self) -> None:
        """Forget every point (a new training)."""
        for points in self.series.values():
            points.clear()
        self.update()

    def add_event(self, event: ProgressEvent) -> None:
        """Add the losses an event carries (steps: train loss; epochs: validation loss)."""
        key = "train_loss" if event.kind == "step" else "val_loss"
        value = event.metrics.get(key)
        if event.kind in ("step", "epoch") and _finite(value):
            self.series[key].append((float(event.done), float(value)))
            self.update()

    def paintEvent(self, _: Any) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor(38, 41, 48))
        w, h = self.width() - 2 * MARGIN, self.height() - 2 * MARGIN
        painter.setPen(QPen(QColor(150, 150, 150)))
        painter.drawRect(MARGIN, MARGIN // 2, w, h)
        points = [p for s in self.series.values() for p in s]
        if not points or w <= 0 or h <= 0:
            painter.drawText(MARGIN + 6, MARGIN // 2 + 16, "loss curves appear here")
            painter.end()
            return
        x_max = max(1.0, max(x for x, _ in points))
        logs = [math.log10(y) for _, y in points if y > 0] or [0.0]
        lo, hi = min(logs), max(logs)
        hi = hi if hi > lo else lo + 1

        def at(x: float, y: float) -> QPointF:
            ly = math.log10(y) if y > 0 else lo
            return QPointF(MARGIN + w * x / x_max, MARGIN // 2 + h * (1 - (ly - lo) / (hi - lo)))

        for key, series in self.series.items():
            if not series:
                continue
            painter.setPen(QPen(COLOURS[key], 2))
            if len(series) == 1:
                painter.drawEllipse(at(*series[0]), 3, 3)
            else:
                painter.drawPolyline(QPolygonF([at(x, y) for x, y in series]))
        painter.setPen(QPen(QColor(220, 220, 220)))
        painter.drawText(MARGIN, self.height() - 6, f"step {x_max:g}")
        painter.drawText(2, MARGIN // 2 + 10, f"{10 ** hi:.2g}")
        painter.drawText(2, MARGIN // 2 + h, f"{10 ** lo:.2g}")
        x_label = MARGIN + w - 150
        for key, colour in COLOURS.items():
            painter.setPen(QPen(colour))
            painter.drawText(x_label, self.height() - 6, key.replace("_", " "))
            x_label += 75
        painter.end()


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
