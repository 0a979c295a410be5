"""Score a model against ground truth and classical baselines, with a verdict."""

from __future__ import annotations

from pathlib import Path

from microsight.api.models import ModelLike, _as_model
from microsight.api.prediction import _tile_settings
from microsight.config import (
    MethodSpec,
    get_method,
)
from microsight.engine.checks import (
    IncompleteModelWarning as IncompleteModelWarning,
)
from microsight.engine.checks import (
    check_tiling,
    require_label_images,
    warn_if_incomplete,
)
from microsight.engine.evaluate import Evaluation
from microsight.engine.progress import showing_progress
from microsight.engine.uncertainty import combine
from microsight.errors import MicrosightError
from microsight.io.outputs import check_output
from microsight.qc.verdict import network_verdict


def evaluate(
    model: ModelLike | list[ModelLike],
    input: str | Path,
    target: str | Path,
    *,
    report: str | Path | None = None,
    axes: str | None = None,
    tile: int | None = None,
    tta: bool = False,
    overwrite: bool = False,
    table: str | Path | None = None,
    progress: bool = False,
    tolerance: float | None = None,
) -> Evaluation:
    """Score a model on held-out pairs against classical baselines; write a report.

    Parameters
    ----------
    model : Model, str or Path, or a list of them
        Loaded model or bundle path; several models are scored as an ensemble
        (the mean of their predictions), e.g. to check that it beats its members.
    input, target : str or Path
        Held-out inputs and ground truth (files or folders paired by name).
    report : str or Path, optional
        Report to write: HTML, or a PDF when the path ends in ``.pdf``.
    axes : str, optional
        Axes override.
    tile : int, optional
        Prediction tile size.
    tta : bool
        Score the mean prediction over the 8 flips/rotations (as ``predict``).
    overwrite : bool
        Replace an existing ``report`` (and tables).
    table : str or Path, optional
        CSV file for every metric's mean per source, with a JSON file of the same
        name holding the per-image rows and the verdict too. With a ``report`` and
        no ``table``, both go next to the report (``report.metrics.csv``,
        ``report.metrics.json``).
    progress : bool
        Show a progress bar over the test images (removed when done).
    tolerance : float, optional
        Localization models: largest distance (nm) at which a localization matches a
        true emitter; default the model's ``tolerance`` (250 nm).

    Returns
    -------
    Evaluation
        Per-image rows and the mean of each metric per source; ``table_paths``
        names the tables written.
    """
    check_tiling(tile, None, None)
    sources = list(model if isinstance(model, (list, tuple)) else [model])
    inputs = [*sources, input, target]
    if report is not None:
        if Path(report).suffix.lower() not in (".html", ".htm", ".pdf"):
            raise MicrosightError(f"--report {report}: the report is HTML or PDF; give a path "
                                  "ending in .html or .pdf")
        check_output(report, inputs=inputs, overwrite=overwrite, option="--report")
    tables = table_paths(report, table)
    for path in tables:
        check_output(path, inputs=inputs, overwrite=overwrite,
                     option="--table" if table is not None else "--report")
    models = [_as_model(m) for m in sources]
    if not models:
        raise MicrosightError("no model given")
    warn_if_incomplete(models)
    # The first member's method scores the combined prediction.
    spec = get_method(models[0].method)
    if spec.outputs[0] == "labels":
        require_label_images(target, axes)
    extra = _tolerance(spec, tolerance)
    evaluator = spec.part("evaluator")
    model = combine(models, None, tta)
    settings = _tile_settings(model, tile, None, None)
    with showing_progress(progress):
        result = evaluator(model, input, target, axes=axes, report=report, settings=settings,
                           **extra)
    result.metrics = tuple(spec.metrics)
    result.verdict = network_verdict(result.rows, spec.metrics[0])
    if tables:
        result.write_tables(tables[0])
    return result


def table_paths(report: str | Path | None, table: str | Path | None) -> tuple[Path, ...]:
    """The CSV and JSON tables an evaluation writes: at ``table``, or next to ``report``.

    Parameters
    ----------
    report, table : str or Path, optional
        As given to :func:`evaluate`.

    Returns
    -------
    tuple of Path
        ``(csv, json)``, or empty when neither is given.
    """
    if table is not None:
        path = Path(table)
        if path.suffix.lower() not in (".csv", ".json"):
            raise MicrosightError(f"--table {table}: give a path ending in .csv (a .json "
                                  "file of the same name is written beside it)")
        path = path.with_suffix(".csv")
    elif report is not None:
        path = Path(report).with_suffix(".metrics.csv")
    else:
        return ()
    return path, path.with_suffix(".json")


def _tolerance(spec: MethodSpec, tolerance: float | None) -> dict[str, float]:
    """The evaluator's ``tolerance`` argument: localization models only, positive."""
    if tolerance is None:
        return {}
    if spec.outputs[0] != "localizations":
        raise MicrosightError(f"--tolerance sets the matching distance of localization models "
                              f"(localize); method {spec.name} does not take it")
    if not tolerance > 0:
        raise MicrosightError(f"--tolerance must be a positive distance in nm, got {tolerance:g}")
    return {"tolerance": float(tolerance)}
