"""Simulate data with known ground truth (SMLM movies and their tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from microsight.config import (
    merge_overrides,
)
from microsight.engine.checks import (
    IncompleteModelWarning as IncompleteModelWarning,
)
from microsight.errors import MicrosightError
from microsight.io.image import image_stem
from microsight.io.outputs import check_output


def simulate_smlm(out: str | Path, table: str | Path | None = None, *,
                  config: str | Path | dict | None = None, sites: str | Path | None = None,
                  table_format: str = "native", overwrite: bool = False,
                  **overrides: Any) -> tuple[Path, Path]:
    """Simulate an SMLM movie and write it with its ground-truth localization table.

    Parameters
    ----------
    out : str or Path
        Movie to write (``.tif``, ``.ome.tif`` or ``.ome.zarr``; axes TYX, ADU).
    table : str or Path, optional
        Ground-truth CSV (default: ``out`` with ``.csv``).
    config : str, Path or dict, optional
        Simulation settings (YAML file or dict of
        :class:`microsight.data.smlm.SimulationConfig` fields).
    sites : str or Path, optional
        Localization table whose positions are the binding sites (structure
        ``table``).
    table_format : {"native", "thunderstorm"}
        Columns of the ground-truth CSV.
    overwrite : bool
        Replace an existing movie or table.
    **overrides
        Settings that replace those of ``config`` (``None`` values are ignored),
        e.g. ``density=2.0, frames=500``; ``camera`` takes a dict.

    Returns
    -------
    tuple of Path
        The movie and the table written.
    """
    from pydantic import ValidationError

    from microsight.config import format_errors
    from microsight.data.smlm import SimulationConfig, simulate
    from microsight.io import write_image
    from microsight.io.localizations import read_localizations, write_localizations

    if isinstance(config, (str, Path)):
        path = Path(config)
        if not path.is_file():
            raise MicrosightError(f"simulation config {path} not found")
        config = yaml.safe_load(path.read_text()) or {}
    settings = merge_overrides(dict(config or {}), overrides)
    if sites is not None:
        settings.setdefault("structure", "table")
    try:
        cfg = SimulationConfig.model_validate(settings)
    except ValidationError as exc:
        raise MicrosightError(f"invalid simulation settings: {format_errors(exc)}") from None
    out = Path(out)
    table = Path(table) if table is not None else out.with_name(image_stem(out) + ".csv")
    inputs = [sites, config if isinstance(config, (str, Path)) else None]
    check_output(out, inputs=inputs, kind="image", overwrite=overwrite)
    check_output(table, inputs=inputs, overwrite=overwrite, option="--table")
    sim = simulate(cfg, table=read_localizations(sites) if sites is not None else None)
    size = cfg.pixel_size / 1000
    movie = np.clip(np.round(sim.movie), 0, 65535).astype(np.uint16)
    written = write_image(out, movie, "TYX", {"Y": size, "X": size})
    return written, write_localizations(table, sim.truth, format=table_format)
