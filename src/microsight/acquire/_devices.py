"""pymmcore-plus pure-Python devices over :class:`SimulatedMicroscope` (imported lazily).

A ``UniMMCore`` with these devices loaded behaves like a configured Micro-Manager
core: the MDA engine moves the stage, sets exposure and properties, opens the
shutter and snaps; no C++ device adapter is involved.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymmcore_plus.experimental.unicore import (
    GenericDevice,
    ShutterDevice,
    SimpleCameraDevice,
    UniMMCore,
    XYStageDevice,
    pymm_property,
)

from microsight.acquire.microscope import (
    CAMERA,
    CLOCK,
    FIELD_PITCH,
    LIGHT,
    STAGE,
    format_roi,
    parse_roi,
)


class SimCamera(SimpleCameraDevice):
    """The simulated camera: each snap exposes the current field of the specimen."""

    def __init__(self, scope: Any) -> None:
        super().__init__()
        self.scope = scope

    def get_exposure(self) -> float:
        return self.scope.exposure_ms

    def set_exposure(self, exposure: float) -> None:
        self.scope.exposure_ms = float(exposure)

    def dtype(self) -> Any:
        return np.uint16

    def sensor_shape(self) -> tuple[int, int]:
        return self.scope.shape

    def snap(self, buffer: np.ndarray) -> dict[str, Any]:
        buffer[:] = self.scope.snap().astype(np.uint16)
        return {"sim_field": self.scope.field, "sim_minutes": self.scope.time}


class SimLight(ShutterDevice):
    """The light source: relative power (0-1) and an illuminated region ``"y,x,h,w"``."""

    def __init__(self, scope: Any) -> None:
        super().__init__()
        self.scope = scope
        self._open = False

    def get_open(self) -> bool:
        return self._open

    def set_open(self, open: bool) -> None:
        self._open = bool(open)

    @pymm_property(limits=(0.0, 1.0), property_type=float, name="Power")
    def power(self) -> float:
        return self.scope.power

    @power.setter
    def power(self, value: float) -> None:
        self.scope.power = float(value)

    @pymm_property(property_type=str, name="ROI")
    def roi(self) -> str:
        return format_roi(self.scope.roi)

    @roi.setter
    def roi(self, value: str) -> None:
        self.scope.roi = parse_roi(str(value))


class SimClock(GenericDevice):
    """Simulated time (minutes): the plan sets it instead of waiting in real time."""

    def __init__(self, scope: Any) -> None:
        super().__init__()
        self.scope = scope

    @pymm_property(property_type=float, name="Minutes")
    def minutes(self) -> float:
        return self.scope.time

    @minutes.setter
    def minutes(self, value: float) -> None:
        self.scope.time = float(value)


class SimStage(XYStageDevice):
    """The stage: field ``i`` of the specimen lies at ``x = i * FIELD_PITCH``."""

    def __init__(self, scope: Any) -> None:
        super().__init__()
        self.scope = scope
        self._xy = (0.0, 0.0)

    def set_position_um(self, x: float, y: float) -> None:
        self._xy = (float(x), float(y))
        self.scope.field = int(round(x / FIELD_PITCH))

    def get_position_um(self) -> tuple[float, float]:
        return self._xy

    def set_origin_x(self) -> None:
        self._xy = (0.0, self._xy[1])

    def set_origin_y(self) -> None:
        self._xy = (self._xy[0], 0.0)

    def home(self) -> None:
        self.set_position_um(0.0, 0.0)

    def stop(self) -> None:
        """Nothing moves in a simulation."""


def build_core(scope: Any) -> UniMMCore:
    """A ``UniMMCore`` with the simulated camera, light, stage and clock loaded."""
    core = UniMMCore()
    for label, device in ((CAMERA, SimCamera(scope)), (LIGHT, SimLight(scope)),
                          (STAGE, SimStage(scope)), (CLOCK, SimClock(scope))):
        core.loadPyDevice(label, device)
        core.initializeDevice(label)
    core.setCameraDevice(CAMERA)
    core.setShutterDevice(LIGHT)
    core.setXYStageDevice(STAGE)
    # One event, one frame: the agents decide after every frame.
    core.mda.engine.use_hardware_sequencing = False
    return core
