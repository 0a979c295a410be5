"""Progress reports and cancellation for long work, for GUIs and scripts.

Training and prediction accept ``callback`` (called with a
:class:`ProgressEvent`) and ``cancel`` (anything with ``is_set()``, e.g. a
``threading.Event``). A GUI draws live curves from the events and sets the
event to stop; training then stops after the running step and leaves the
model folder as it was after the last complete epoch, so ``--resume``
continues exactly where an unbroken run would be; prediction stops after
the running tiles and writes no output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from microsight.errors import Cancelled


class CancelSignal(Protocol):
    """What a cancel signal must offer (``threading.Event`` does)."""

    def is_set(self) -> bool:
        """Whether the work should stop."""


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report.

    Attributes
    ----------
    kind : str
        ``"step"`` (a training step), ``"epoch"`` (an epoch finished, with its
        history row in ``metrics``), ``"tiles"`` (prediction tiles done).
    done, total : int
        Units done so far and in all (``total`` 0 when unknown).
    epoch : int
        Training epoch, numbered from 1 (0 for prediction).
    metrics : dict
        Losses and validation metrics known at this point.
    """

    kind: str
    done: int
    total: int = 0
    epoch: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


Callback = Callable[[ProgressEvent], None]


@dataclass
class Monitor:
    """Reports progress and checks for cancellation; both parts optional."""

    callback: Callback | None = None
    cancel: CancelSignal | None = None

    @property
    def cancelled(self) -> bool:
        """Whether the cancel signal is set."""
        return self.cancel is not None and bool(self.cancel.is_set())

    def check(self, what: str = "prediction") -> None:
        """Raise :class:`~microsight.errors.Cancelled` if the cancel signal is set."""
        if self.cancelled:
            raise Cancelled(f"{what} cancelled")

    def report(self, event: ProgressEvent) -> None:
        """Send ``event`` to the callback, if there is one."""
        if self.callback is not None:
            self.callback(event)

    def tiles(self, done: int, total: int) -> None:
        """``done`` of an item's ``total`` tiles are predicted; then stop if asked to."""
        self.report(ProgressEvent("tiles", done, total))
        self.check()
