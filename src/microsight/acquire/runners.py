"""Which engine runs a plan: pymmcore-plus's MDA engine, or the direct in-process runner."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from microsight.acquire.microscope import DirectRunner, FrameCallback, SimulatedMicroscope


def pymmcore_available() -> bool:
    """True when pymmcore-plus with pure-Python device support can be imported."""
    try:
        from pymmcore_plus.experimental.unicore import UniMMCore  # noqa: F401
    except Exception:
        return False
    return True


class PymmcoreRunner:
    """Runs MDA events through pymmcore-plus's engine on pure-Python simulated devices."""

    name = "pymmcore-plus"

    def __init__(self, scope: SimulatedMicroscope) -> None:
        # pymmcore-plus is an optional extra: imported only when this engine is chosen.
        from microsight.acquire._devices import build_core

        self.scope = scope
        # pymmcore-plus logs an error when it finds no Micro-Manager installation;
        # Python devices need none, so keep that line out of the output.
        logger = logging.getLogger("pymmcore-plus")
        level = logger.level
        logger.setLevel(logging.CRITICAL)
        try:
            self.core = build_core(scope)
        finally:
            logger.setLevel(level)

    def run(self, events: Iterable[Any], on_frame: FrameCallback) -> None:
        """Execute ``events`` with ``core.mda``, calling ``on_frame(frame, event)``."""
        def relay(image: np.ndarray, event: Any, _meta: Any = None) -> None:
            on_frame(np.asarray(image, np.float32), event)

        self.core.mda.events.frameReady.connect(relay)
        try:
            self.core.mda.run(iter(events))
        finally:
            with contextlib.suppress(Exception):
                self.core.mda.events.frameReady.disconnect(relay)


def make_runner(scope: SimulatedMicroscope, engine: str = "auto"):
    """The runner for ``engine``: ``"pymmcore"``, ``"direct"`` or ``"auto"`` (pymmcore if
    it imports)."""
    from microsight.errors import MicrosightError

    if engine not in ("auto", "pymmcore", "direct"):
        raise MicrosightError(f"no engine {engine!r}; choose auto, pymmcore or direct")
    if engine == "direct" or (engine == "auto" and not pymmcore_available()):
        return DirectRunner(scope)
    if not pymmcore_available():
        raise MicrosightError('the pymmcore engine needs pymmcore-plus; pip install '
                              '"microsight[acquire]" or pass --engine direct')
    return PymmcoreRunner(scope)
