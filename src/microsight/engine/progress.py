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

import contextlib
import contextvars
from collections.abc import Callable, Iterator
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
        history row in ``metrics``), ``"tiles"`` (prediction tiles done),
        ``"written"`` (a prediction wrote a file: ``path`` and ``what`` it holds
        in ``metrics``).
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


#: Whether work that takes no ``progress`` argument (e.g. a method's evaluation, whose
#: signature the method contract fixes) should draw its bar; set by :func:`showing_progress`.
_SHOW_PROGRESS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "microsight_show_progress", default=False)


@contextlib.contextmanager
def showing_progress(enabled: bool = True) -> Iterator[None]:
    """Within this block, :func:`progress_shown` is ``enabled`` (this thread or task)."""
    token = _SHOW_PROGRESS.set(enabled)
    try:
        yield
    finally:
        _SHOW_PROGRESS.reset(token)


def progress_shown() -> bool:
    """Whether the caller asked for progress bars (:func:`showing_progress`)."""
    return _SHOW_PROGRESS.get()


def progress_bar(enabled: bool, unit: str = "tiles", *, transient: bool = False) -> Any:
    """The progress bar of every prediction: description, bar, ``done/total unit``, time left.

    Parameters
    ----------
    enabled : bool
        Draw it (a disabled bar accepts the same calls and shows nothing).
    unit : str
        What is counted (``tiles``, ``items``, ``planes``...).
    transient : bool
        Remove the bar once done (when a summary follows it).

    Returns
    -------
    rich.progress.Progress
        Use as a context manager; ``add_task`` and ``advance`` as usual.
    """
    import sys

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    if transient and not sys.stdout.isatty():
        enabled = False  # it would leave nothing in a log but an empty line
    return Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total} " + unit), TimeRemainingColumn(),
                    disable=not enabled, transient=transient)


class SignalStop:
    """A cancel signal set by SIGINT or SIGTERM; remembers which one came."""

    def __init__(self) -> None:
        import threading

        self.event = threading.Event()
        self.signal: Any = None

    def is_set(self) -> bool:
        """Whether a signal asked the work to stop."""
        return self.event.is_set()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[SignalStop]:
    """Turn the first Ctrl-C / SIGTERM into a cancel signal; a second one stops at once.

    Training then ends after the running step with the model folder at its last
    complete epoch; Lightning never sees a KeyboardInterrupt.
    """
    import signal
    import threading

    stop = SignalStop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    before = {s: signal.getsignal(s) for s in signals}

    def handle(signum, frame):
        if stop.event.is_set():
            raise KeyboardInterrupt
        stop.signal = signal.Signals(signum)
        stop.event.set()

    for s in signals:
        signal.signal(s, handle)
    try:
        yield stop
    finally:
        for s, h in before.items():
            signal.signal(s, h)
