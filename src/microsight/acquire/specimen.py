"""Simulated specimens: fields of nuclei whose fluorophores bleach and whose cells divide.

Pure numpy. A specimen answers one question: the expected fluorophore density of a
field at a time, given the light it has received so far. Two kinds:

- :class:`SampleSpecimen`: fields cut from the bundled nuclei image (real content,
  DSB2018, CC0), still apart from photobleaching;
- :class:`CellCycleSpecimen`: synthetic nuclei going through a cell cycle, with a
  visible mitosis (prophase: rounding, brightening, chromatin condensing; metaphase: a
  bright plate; anaphase/telophase: two daughters moving apart).

Both keep a per-field light history, from which photobleaching (a fraction
``exp(-dose / bleach_dose)`` of the fluorophores survives) and phototoxicity (a cell
whose field has received more than ``toxicity_budget`` when it should enter mitosis
arrests in interphase) follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

#: Mitosis stages, in order, as fractions of the mitosis duration.
STAGES = (("prophase", 0.4), ("metaphase", 0.3), ("anaphase", 0.3))


@dataclass
class LightHistory:
    """Exposures a field received: times (min) and doses (relative power x seconds)."""

    times: list[float] = field(default_factory=list)
    doses: list[float] = field(default_factory=list)

    def add(self, time: float, dose: float) -> None:
        """Record one exposure."""
        self.times.append(float(time))
        self.doses.append(float(dose))

    def dose_before(self, time: float) -> float:
        """Total dose received strictly before ``time``."""
        return float(sum(d for t, d in zip(self.times, self.doses, strict=True) if t < time))

    @property
    def total(self) -> float:
        """Total dose received."""
        return float(sum(self.doses))


class Specimen:
    """Base class: fields, a light history per field, bleaching and phototoxicity.

    Parameters
    ----------
    n_fields : int
        Number of fields (stage positions).
    bleach_dose : float
        Dose after which a fraction 1/e of the fluorophores is left (a field's
        whole-frame dose; see :meth:`bleached_fraction`).
    toxicity_budget : float
        Cumulative field dose past which cells no longer divide.
    """

    def __init__(self, n_fields: int, *, bleach_dose: float, toxicity_budget: float) -> None:
        self.n_fields = n_fields
        self.bleach_dose = float(bleach_dose)
        self.toxicity_budget = float(toxicity_budget)
        self.light = [LightHistory() for _ in range(n_fields)]
        # Per-pixel dose maps: patterned illumination (a region of interest) bleaches
        # only where it shines.
        self._dose_maps: list[np.ndarray | None] = [None] * n_fields

    shape: tuple[int, int] = (0, 0)

    def expose(self, index: int, time: float, dose_map: np.ndarray) -> None:
        """Record light received by field ``index`` at ``time`` (a per-pixel dose map)."""
        dose_map = np.asarray(dose_map, np.float64)
        current = self._dose_maps[index]
        self._dose_maps[index] = dose_map.copy() if current is None else current + dose_map
        self.light[index].add(time, float(dose_map.mean()))

    def dose_map(self, index: int) -> np.ndarray:
        """Cumulative dose per pixel of field ``index``."""
        current = self._dose_maps[index]
        return np.zeros(self.shape) if current is None else current

    def bleached_fraction(self, index: int) -> np.ndarray:
        """Surviving fluorophore fraction per pixel: ``exp(-dose / bleach_dose)``."""
        return np.exp(-self.dose_map(index) / self.bleach_dose)

    def density(self, index: int, time: float) -> np.ndarray:
        """Fluorophore density of an unbleached field (float32, about 0-1)."""
        raise NotImplementedError

    def ground_truth(self, index: int, time: float) -> np.ndarray:
        """Noise-free emission per unit dose now: density times the surviving fraction."""
        return (self.density(index, time) * self.bleached_fraction(index)).astype(np.float32)

    def arrested(self, index: int, time: float) -> bool:
        """True when the field's cumulative dose before ``time`` exceeds the budget."""
        return self.light[index].dose_before(time) > self.toxicity_budget


class SampleSpecimen(Specimen):
    """Fields cut from the bundled nuclei image, each flipped/rotated at random.

    Parameters
    ----------
    n_fields : int
        Number of fields.
    size : int
        Field edge in pixels.
    seed : int
        Chooses the crops.
    half : {"top", "bottom"}
        Which half of the image to cut from: keep calibration runs on one half and
        evaluation runs on the other, so no field is seen twice.
    bleach_dose, toxicity_budget : float
        See :class:`Specimen`.
    """

    def __init__(self, n_fields: int, *, size: int = 96, seed: int = 0, half: str = "bottom",
                 bleach_dose: float = 20.0, toxicity_budget: float = 1e9) -> None:
        super().__init__(n_fields, bleach_dose=bleach_dose, toxicity_budget=toxicity_budget)
        from microsight.data.samples import sample_nuclei

        image = sample_nuclei().astype(np.float32)
        rows = image.shape[0] // 2
        part = image[:rows] if half == "top" else image[rows:]
        # The photograph carries its own camera noise; smoothing by about one pixel
        # keeps the nuclei and their texture and leaves a band-limited density, as a
        # microscope's optics would.
        part = ndimage.gaussian_filter(part, 1.0)
        # Background at zero, bright nuclei near one: density in photons per unit dose
        # is then set by the microscope's brightness.
        part = np.clip(part - np.percentile(part, 5), 0, None)
        part /= max(float(np.percentile(part, 99.9)), 1e-6)
        rng = np.random.default_rng(seed)
        self.shape = (size, size)
        self._fields = []
        for _ in range(n_fields):
            y = int(rng.integers(0, part.shape[0] - size + 1))
            x = int(rng.integers(0, part.shape[1] - size + 1))
            crop = np.rot90(part[y:y + size, x:x + size], int(rng.integers(4)))
            self._fields.append(np.ascontiguousarray(crop if rng.random() < 0.5 else crop[::-1]))

    def density(self, index: int, time: float) -> np.ndarray:
        """Fluorophore density of field ``index`` (static apart from bleaching)."""
        return self._fields[index]


@dataclass
class Cell:
    """One nucleus: where, how big, when born, when it divides (minutes)."""

    y: float
    x: float
    radius: float
    born: float
    cycle: float
    angle: float
    texture_seed: int
    generation: int = 0

    @property
    def division(self) -> float:
        """Time the daughters separate (end of mitosis)."""
        return self.born + self.cycle


@dataclass
class Mitosis:
    """One division event: the field, the cell, and when each stage starts and ends."""

    field: int
    start: float
    end: float
    y: float
    x: float

    def stage_times(self) -> dict[str, tuple[float, float]]:
        """Start and end (minutes) of each stage."""
        out, t = {}, self.start
        for name, share in STAGES:
            out[name] = (t, t + share * (self.end - self.start))
            t = out[name][1]
        return out


class CellCycleSpecimen(Specimen):
    """Synthetic nuclei that grow, go through mitosis and split into two daughters.

    Parameters
    ----------
    n_fields : int
        Number of fields.
    size : int
        Field edge in pixels.
    cells : int
        Nuclei per field at time 0.
    cycle : tuple of float
        Range of cell-cycle durations (minutes); a first division falls anywhere
        in the first cycle.
    mitosis : float
        Duration of mitosis (minutes), split into the :data:`STAGES`.
    seed : int
        Random seed for positions, cycle phases and textures.
    bleach_dose, toxicity_budget : float
        See :class:`Specimen`.
    """

    def __init__(self, n_fields: int, *, size: int = 96, cells: int = 4,
                 cycle: tuple[float, float] = (500.0, 900.0), mitosis: float = 40.0,
                 seed: int = 0, bleach_dose: float = 60.0,
                 toxicity_budget: float = 1e9) -> None:
        super().__init__(n_fields, bleach_dose=bleach_dose, toxicity_budget=toxicity_budget)
        self.shape = (size, size)
        self.mitosis = float(mitosis)
        self.cycle = cycle
        self.rng = np.random.default_rng(seed)
        self._founders = [self._place(cells, size) for _ in range(n_fields)]
        self._yy, self._xx = np.mgrid[0:size, 0:size].astype(np.float32)

    def _place(self, n: int, size: int) -> list[Cell]:
        cells: list[Cell] = []
        for _ in range(200 * n):
            if len(cells) == n:
                break
            radius = float(self.rng.uniform(7, 9))
            y, x = self.rng.uniform(radius + 10, size - radius - 10, 2)
            if all(np.hypot(c.y - y, c.x - x) > c.radius + radius + 14 for c in cells):
                cycle = float(self.rng.uniform(*self.cycle))
                # Born at a random point in its cycle: first divisions spread over time.
                born = -float(self.rng.uniform(0, cycle - self.mitosis))
                cells.append(Cell(float(y), float(x), radius, born, cycle,
                                  float(self.rng.uniform(0, np.pi)),
                                  int(self.rng.integers(1 << 30))))
        return cells

    def _daughters(self, cell: Cell) -> list[Cell]:
        rng = np.random.default_rng(cell.texture_seed)
        offset = cell.radius * 0.9
        dy, dx = np.sin(cell.angle) * offset, np.cos(cell.angle) * offset
        out = []
        for sign in (-1, 1):
            out.append(Cell(cell.y + sign * dy, cell.x + sign * dx, cell.radius * 0.8,
                            cell.division, float(rng.uniform(*self.cycle)),
                            float(rng.uniform(0, np.pi)), int(rng.integers(1 << 30)),
                            cell.generation + 1))
        return out

    def cells_at(self, index: int, time: float) -> tuple[list[Cell], list[Mitosis]]:
        """Cells alive at ``time`` in field ``index`` and every mitosis begun by then.

        A cell whose field received more than the toxicity budget before its mitosis
        would begin arrests in interphase and never divides.
        """
        alive, events, todo = [], [], list(self._founders[index])
        while todo:
            cell = todo.pop()
            start = cell.division - self.mitosis
            if start > time or self.arrested(index, start):
                alive.append(cell)
                continue
            events.append(Mitosis(index, start, cell.division, cell.y, cell.x))
            if cell.division > time:
                alive.append(cell)
            else:
                todo.extend(self._daughters(cell))
        return alive, sorted(events, key=lambda e: e.start)

    def mitoses(self, index: int, until: float) -> list[Mitosis]:
        """Mitoses of field ``index`` that began before ``until`` (given the light so far)."""
        return self.cells_at(index, until)[1]

    def _blob(self, cy: float, cx: float, ry: float, rx: float, angle: float) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        u = (self._xx - cx) * c + (self._yy - cy) * s
        v = -(self._xx - cx) * s + (self._yy - cy) * c
        r = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
        # A soft edge about one pixel wide.
        return np.clip((1.0 - r) * min(rx, ry) + 0.5, 0, 1).astype(np.float32)

    def _texture(self, cell: Cell, grain: float) -> np.ndarray:
        rng = np.random.default_rng(cell.texture_seed)
        noise = ndimage.gaussian_filter(rng.normal(size=self.shape).astype(np.float32), grain)
        return noise / max(float(noise.std()), 1e-6)

    def _render(self, cell: Cell, time: float) -> np.ndarray:
        start = cell.division - self.mitosis
        if time < start:
            # Interphase: the nucleus grows by a quarter over its cycle.
            grow = 0.8 + 0.2 * np.clip((time - cell.born) / cell.cycle, 0, 1)
            r = cell.radius * grow
            blob = self._blob(cell.y, cell.x, r, r * 1.15, cell.angle)
            return blob * (0.55 + 0.08 * self._texture(cell, 2.0))
        phase = (time - start) / self.mitosis
        pro, meta = STAGES[0][1], STAGES[0][1] + STAGES[1][1]
        if phase < pro:
            # Prophase: the nucleus rounds up and shrinks, chromatin condenses (brighter,
            # grainier).
            k = phase / pro
            r = cell.radius * (1.0 - 0.3 * k)
            blob = self._blob(cell.y, cell.x, r, r * (1.15 - 0.15 * k), cell.angle)
            return blob * (0.6 + 0.5 * k) * (1 + (0.1 + 0.25 * k) * self._texture(cell, 1.0))
        if phase < meta:
            # Metaphase: chromosomes in a bright plate across the division axis.
            return self._blob(cell.y, cell.x, cell.radius * 0.75, cell.radius * 0.3,
                              cell.angle) * 1.4
        # Anaphase and telophase: two sets of chromatin move apart along the axis.
        k = (phase - meta) / (1 - meta)
        sep = cell.radius * 0.9 * k
        out = np.zeros(self.shape, np.float32)
        for sign in (-1, 1):
            cy = cell.y + sign * np.sin(cell.angle) * sep
            cx = cell.x + sign * np.cos(cell.angle) * sep
            out = np.maximum(out, self._blob(cy, cx, cell.radius * 0.65,
                                             cell.radius * (0.3 + 0.25 * k), cell.angle) * 1.3)
        return out

    def density(self, index: int, time: float) -> np.ndarray:
        """Fluorophore density of field ``index`` at ``time`` (minutes)."""
        cells, _ = self.cells_at(index, time)
        image = np.zeros(self.shape, np.float32)
        for cell in cells:
            image = np.maximum(image, self._render(cell, time))
        return ndimage.gaussian_filter(image, 1.0)

    def in_mitosis(self, index: int, time: float) -> bool:
        """True when a cell of field ``index`` is dividing at ``time``."""
        return any(m.start <= time < m.end for m in self.mitoses(index, time))
