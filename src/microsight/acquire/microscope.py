"""The simulated microscope: light source, stage, camera, and two ways to drive it.

:class:`SimulatedMicroscope` is the instrument (pure numpy): a light source with a
relative power and an optional illuminated region (patterned illumination), a stage
that moves between the specimen's fields, a clock, and a camera (the EMCCD / sCMOS
models of :mod:`microsight.data.smlm`). Each snap exposes the specimen (bleaching,
phototoxicity) and returns camera counts.

Acquisition plans are `useq-schema` :class:`useq.MDAEvent` s. Two runners execute
them, with one interface (``run(events, on_frame)``):

- :class:`PymmcoreRunner`: pymmcore-plus's own MDA engine on a ``UniMMCore`` whose
  camera, light source, stage and clock are pure-Python devices wrapping the
  simulator (no Micro-Manager C++ adapters needed). Swap the core for one loaded
  with a real configuration and the same events drive a real microscope.
- :class:`DirectRunner`: the same ``setup_event`` / ``exec_event`` steps in-process,
  for when pymmcore-plus is not installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from microsight.acquire.specimen import Specimen
from microsight.data.smlm import CameraConfig, apply_camera, camera_maps

#: Stage distance between fields (micrometres): field ``i`` sits at ``x = i * PITCH``.
FIELD_PITCH = 1000.0
#: Exposure (ms) at full power that makes one unit of dose.
MS_PER_DOSE = 100.0
LIGHT, CLOCK, CAMERA, STAGE = "Light", "Clock", "Camera", "XY"

FrameCallback = Callable[[np.ndarray, Any], None]


def dose_of(power: float, exposure_ms: float) -> float:
    """Dose of one frame: relative power times exposure, in units of full power x 100 ms."""
    return float(power) * float(exposure_ms) / MS_PER_DOSE


class SimulatedMicroscope:
    """A widefield fluorescence microscope over a simulated specimen.

    Parameters
    ----------
    specimen : Specimen
        What is under the objective.
    camera : CameraConfig, optional
        Detector model (default: sCMOS, 1.5 e- read noise).
    photons : float
        Expected photons per unit dose at fluorophore density 1.
    background : float
        Out-of-focus and autofluorescence photons per unit dose, everywhere.
    seed : int
        Seeds the camera noise.
    """

    def __init__(self, specimen: Specimen, *, camera: CameraConfig | None = None,
                 photons: float = 400.0, background: float = 4.0, seed: int = 0) -> None:
        self.specimen = specimen
        self.camera = camera or CameraConfig(model="scmos", read_noise=1.5)
        self.photons = float(photons)
        self.background = float(background)
        self.rng = np.random.default_rng(seed)
        self.maps = camera_maps(self.camera, specimen.shape, seed) \
            if self.camera.model == "scmos" else None
        self.field = 0
        self.time = 0.0
        self.power = 1.0
        self.exposure_ms = MS_PER_DOSE
        self.roi: tuple[int, int, int, int] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """Frame shape (the specimen's field)."""
        return self.specimen.shape

    def dose_map(self) -> np.ndarray:
        """Per-pixel dose of one frame with the current settings (zero outside the ROI)."""
        dose = dose_of(self.power, self.exposure_ms)
        if self.roi is None:
            return np.full(self.shape, dose)
        out = np.zeros(self.shape)
        y, x, h, w = self.roi
        out[y:y + h, x:x + w] = dose
        return out

    def snap(self) -> np.ndarray:
        """Expose the current field and read the camera (float32 ADU)."""
        dose = self.dose_map()
        truth = self.specimen.ground_truth(self.field, self.time)
        expected = (truth * self.photons + self.background) * dose
        self.specimen.expose(self.field, self.time, dose)
        return apply_camera(expected, self.camera, self.rng, self.maps)

    def estimate(self, frame: np.ndarray, dose: np.ndarray) -> np.ndarray:
        """Density estimate from camera counts: photons per unit dose, background removed.

        Pixels that received no light are zero.
        """
        photons = self.camera.to_photons(frame).astype(np.float64)
        lit = dose > 0
        out = np.zeros(self.shape)
        out[lit] = photons[lit] / (dose[lit] * self.photons) - self.background / self.photons
        return out.astype(np.float32)

    # --- one MDA event --------------------------------------------------------------
    def apply_properties(self, properties: Iterable[tuple[str, str, Any]] | None) -> None:
        """Set light power, illuminated region and clock from an event's properties."""
        for device, prop, value in properties or ():
            if (device, prop) == (LIGHT, "Power"):
                self.power = float(value)
            elif (device, prop) == (LIGHT, "ROI"):
                self.roi = parse_roi(str(value))
            elif (device, prop) == (CLOCK, "Minutes"):
                self.time = float(value)


def parse_roi(text: str) -> tuple[int, int, int, int] | None:
    """``"y,x,h,w"`` -> tuple; an empty string means the whole field."""
    if not text.strip():
        return None
    y, x, h, w = (int(v) for v in text.split(","))
    return y, x, h, w


def format_roi(roi: tuple[int, int, int, int] | None) -> str:
    """Inverse of :func:`parse_roi`."""
    return "" if roi is None else ",".join(str(int(v)) for v in roi)


class DirectRunner:
    """Runs MDA events on the simulator in-process (no pymmcore-plus needed).

    Follows the shape of pymmcore-plus's engine: ``setup_event`` moves the hardware,
    ``exec_event`` acquires and yields ``(frame, event)``.
    """

    name = "direct"

    def __init__(self, scope: SimulatedMicroscope) -> None:
        self.scope = scope

    def setup_event(self, event: Any) -> None:
        """Move the stage, set exposure, light and clock as the event says."""
        if event.x_pos is not None:
            self.scope.field = int(round(event.x_pos / FIELD_PITCH))
        if event.exposure is not None:
            self.scope.exposure_ms = float(event.exposure)
        self.scope.apply_properties(event.properties)

    def exec_event(self, event: Any) -> Iterable[tuple[np.ndarray, Any]]:
        """Snap one frame."""
        yield self.scope.snap(), event

    def run(self, events: Iterable[Any], on_frame: FrameCallback) -> None:
        """Execute ``events`` in order, calling ``on_frame(frame, event)`` after each."""
        for event in events:
            self.setup_event(event)
            for frame, ev in self.exec_event(event):
                on_frame(frame, ev)
