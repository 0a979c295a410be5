"""The results files behind RESULTS.md: one ``results/<task>.json`` per benchmark task.

Benchmark scripts call :func:`write_result` (when run with ``--record``) to add or
replace their rows; ``benchmarks/results_page.py`` turns every file into one table of
RESULTS.md and :func:`validate` checks a file against the schema below. Only numpy
and the standard library are used, so the page can be rebuilt without torch.

Schema (version 1)
------------------
A task file is a JSON object::

    {
      "schema": 1,
      "task": "segmentation-dsb",          # equals the file name without .json
      "title": "Nucleus instance segmentation (DSB2018 fluorescence)",
      "data": "what the images are and where they come from",
      "split": "how train / validation / test were made (or why there is none)",
      "machine": "2-core CPU",            # every number was measured there
      "metrics": {"ap@0.5": "AP at IoU 0.5, pooled over the images", ...},
      "rows": [ROW, ...],
      "targets": {"ap@0.5": 0.87},         # optional: the goal a metric aims at
      "notes": ["one line each", ...]      # optional
    }

and a ROW is::

    {
      "model": "distmap depth 4, 16k steps, zoom 0.3",
      "kind": "microsight" | "peer" | "baseline" | "reference",
      "command": "python benchmarks/segmentation_dsb.py ...",  # what produced the numbers
      "recipe": "recipes/distmap-dsb.yaml",  # or null (baselines, peers, no training)
      "val": {"ap@0.5": 0.845, ...},         # validation numbers (may be empty)
      "test": {"ap@0.5": 0.819, ...},        # test numbers, never used to choose
      "measured": {...},                     # numbers of tasks without a split
      "ci95": {"test.ap@0.5": [0.80, 0.84]}, # optional 95% intervals, by "part.metric"
      "train_s": 6585,                       # training seconds, or null
      "conditions": "idle" | "load 4-8" ...  # optional: machine state during the run
    }

Every key of ``val`` / ``test`` / ``measured`` must be declared in ``metrics``;
values are numbers or null (not measured).
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
MACHINE = "2-core CPU"
KINDS = ("microsight", "peer", "baseline", "reference")
PARTS = ("val", "test", "measured")
_TASK_KEYS = {"schema", "task", "title", "data", "split", "machine", "metrics", "rows",
              "targets", "notes"}
_ROW_KEYS = {"model", "kind", "command", "recipe", "val", "test", "measured", "ci95",
             "train_s", "conditions"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate(record: dict, name: str | None = None, repo: Path = REPO) -> list[str]:
    """Problems of one task record against the schema (empty when it is valid).

    Parameters
    ----------
    record : dict
        The parsed ``results/<task>.json``.
    name : str, optional
        The file's stem; the record's ``task`` must equal it.
    repo : Path
        Repository root, against which recipe paths are checked.

    Returns
    -------
    list of str
        One line per problem.
    """
    problems = []
    missing = {"schema", "task", "title", "data", "split", "machine", "metrics", "rows"}
    missing -= set(record)
    if missing:
        return [f"missing keys {sorted(missing)}"]
    problems += [f"unknown key {k!r}" for k in sorted(set(record) - _TASK_KEYS)]
    if record["schema"] != SCHEMA_VERSION:
        problems.append(f"schema {record['schema']!r} is not {SCHEMA_VERSION}")
    if name is not None and record["task"] != name:
        problems.append(f"task {record['task']!r} differs from the file name {name!r}")
    for key in ("title", "data", "split", "machine"):
        if not isinstance(record[key], str) or not record[key].strip():
            problems.append(f"{key} must be a non-empty string")
    metrics = record["metrics"]
    if not isinstance(metrics, dict) or not metrics:
        return [*problems, "metrics must map metric names to descriptions"]
    for key, value in record.get("targets", {}).items():
        if key not in metrics or not _is_number(value):
            problems.append(f"target {key!r} must be a declared metric with a number")
    if not isinstance(record.get("notes", []), list):
        problems.append("notes must be a list of strings")
    if not isinstance(record["rows"], list) or not record["rows"]:
        return [*problems, "rows must be a non-empty list"]
    for i, row in enumerate(record["rows"]):
        problems += [f"row {i}: {p}" for p in _row_problems(row, metrics, repo)]
    return problems


def _row_problems(row: dict, metrics: dict, repo: Path) -> list[str]:
    if not isinstance(row, dict):
        return ["not an object"]
    problems = [f"unknown key {k!r}" for k in sorted(set(row) - _ROW_KEYS)]
    if not isinstance(row.get("model"), str) or not row.get("model"):
        problems.append("model must be a non-empty string")
    if row.get("kind") not in KINDS:
        problems.append(f"kind must be one of {KINDS}")
    if not isinstance(row.get("command"), str) or not row["command"].strip():
        problems.append("command must name what produced the numbers")
    recipe = row.get("recipe")
    if recipe is not None and not (repo / recipe).is_file():
        problems.append(f"recipe {recipe} does not exist")
    numbers = 0
    for part in PARTS:
        values = row.get(part, {})
        if not isinstance(values, dict):
            problems.append(f"{part} must be an object")
            continue
        for key, value in values.items():
            if key not in metrics:
                problems.append(f"{part}.{key} is not a declared metric")
            elif value is not None and not _is_number(value):
                problems.append(f"{part}.{key} must be a number or null")
            numbers += value is not None
    if not numbers:
        problems.append("no numbers in val, test or measured")
    for key, pair in row.get("ci95", {}).items():
        part, _, metric = key.partition(".")
        if part not in PARTS or metric not in metrics:
            problems.append(f"ci95 key {key!r} must be 'part.metric'")
        elif (not isinstance(pair, list) or len(pair) != 2
              or not all(_is_number(v) for v in pair) or pair[0] > pair[1]):
            problems.append(f"ci95 {key} must be [low, high]")
    if row.get("train_s") is not None and not _is_number(row["train_s"]):
        problems.append("train_s must be a number or null")
    return problems


def bootstrap_ci(values: Any, n: int = 1000, seed: int = 0) -> list[float] | None:
    """95% bootstrap interval of the mean of ``values`` (None for fewer than 3 values).

    Parameters
    ----------
    values : array-like
        One number per image (or per field, per cell...).
    n : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling, so a recorded interval can be recomputed.

    Returns
    -------
    list of float or None
        ``[low, high]``.
    """
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) < 3:
        return None
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(n, len(values)), replace=True).mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def _rounded(value: float) -> float:
    """A measured number with the digits a table shows (3 decimals below 1, fewer above;
    two significant digits for tiny values)."""
    size = abs(value)
    if 0 < size < 1e-3:
        return float(f"{value:.2g}")
    places = 3 if size < 1 else 2 if size < 100 else 1 if size < 10000 else 0
    return round(value, places)


def _finite(value: Any) -> Any:
    """``value`` with every NaN / infinity (not measured) turned into None, numpy
    numbers into Python ones, floats rounded to the digits a table shows."""
    if isinstance(value, dict):
        out = {k: _finite(v) for k, v in value.items()}
        if isinstance(out.get("train_s"), float):  # whole seconds are enough above 100 s
            out["train_s"] = round(out["train_s"], 1 if out["train_s"] < 100 else 0)
        return out
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return _rounded(float(value)) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_result(task: str, rows: list[dict], *, title: str | None = None,
                 data: str | None = None, split: str | None = None,
                 metrics: dict[str, str] | None = None, notes: list[str] | None = None,
                 folder: Path = RESULTS) -> Path:
    """Add or replace rows of ``<folder>/<task>.json`` and write it atomically.

    Rows are matched by their ``model`` name: a row of a new run replaces the row of
    the same model, other rows stay. ``title``, ``data``, ``split``, ``metrics`` and
    ``notes`` are needed when the file does not exist yet and update it when given
    (new metric names are added to the declared ones).

    Parameters
    ----------
    task : str
        File name without ``.json``.
    rows : list of dict
        Rows as described in this module's docstring; ``machine`` defaults to
        "2-core CPU".
    title, data, split : str, optional
        Task description.
    metrics : dict, optional
        Metric name -> description.
    notes : list of str, optional
        Replaces the task's notes.
    folder : Path
        Where the results files live (``results/`` of the repository).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ValueError
        When the updated record does not validate.
    """
    path = Path(folder) / f"{task}.json"
    if path.is_file():
        record = json.loads(path.read_text())
    else:
        record = {"schema": SCHEMA_VERSION, "task": task, "title": title, "data": data,
                  "split": split, "machine": MACHINE, "metrics": {}, "rows": []}
    for key, value in (("title", title), ("data", data), ("split", split),
                       ("notes", notes)):
        if value is not None:
            record[key] = value
    record["metrics"] = {**record["metrics"], **(metrics or {})}
    new = {r["model"]: _finite(r) for r in rows}
    kept = [r for r in record["rows"] if r["model"] not in new]
    record["rows"] = kept + list(new.values())
    problems = validate(record, task)
    if problems:
        raise ValueError(f"{path.name}: " + "; ".join(problems))
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary file in the same folder, then rename: a reader never sees a
    # half-written file and an interrupted run leaves the old one.
    fd, tmp = tempfile.mkstemp(prefix=f".{task}.", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def command_line(script: str | Path, args: list[str]) -> str:
    """The running command as a reader would type it, e.g. ``python benchmarks/x.py --a 1``.

    Parameters
    ----------
    script : str or Path
        The benchmark script (its ``__file__``).
    args : list of str
        Its arguments (``sys.argv[1:]``), quoted for a shell where needed.
    """
    path = Path(script).resolve()
    try:
        path = path.relative_to(REPO)
    except ValueError:
        pass
    return " ".join(["python", path.as_posix(), *(shlex.quote(a) for a in args)])
