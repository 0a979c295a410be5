"""Evaluation results as plain text that fits a terminal (80 columns and up).

The console shows the few numbers a person reads first: one row per source
(the network, each classical baseline) with the method's key metrics, the
first being the one the verdict is based on. Every metric goes to the full
tables (CSV, JSON) and the report.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from microsight.qc.epochs import shown_epoch
from microsight.qc.verdict import LOWER_IS_BETTER

#: At most this many metric columns on the console.
MAX_METRICS = 4
#: Spaces between columns.
GAP = 2


def format_number(value: Any) -> str:
    """A table cell: 4 significant digits; ``n/a`` for a missing or undefined value."""
    if value is None or isinstance(value, bool):
        return "n/a"
    if isinstance(value, int):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.4g}" if math.isfinite(number) else "n/a"


def key_columns(summary: Sequence[Mapping[str, Any]], metrics: Sequence[str],
                width: int = 80, max_metrics: int = MAX_METRICS) -> list[str]:
    """The declared metrics present in ``summary`` that fit ``width`` beside the sources.

    Parameters
    ----------
    summary : sequence of mapping
        One row per source (``Evaluation.summary``).
    metrics : sequence of str
        The method's declared metrics, the verdict's first.
    width : int
        Characters per line.
    max_metrics : int
        At most this many columns.

    Returns
    -------
    list of str
    """
    present = [m for m in metrics if any(m in row for row in summary)][:max_metrics]
    source_width = _source_width(summary, width)
    chosen: list[str] = []
    used = source_width
    for m in present:
        need = GAP + _column_width(summary, m)
        if used + need > width:
            break
        chosen.append(m)
        used += need
    return chosen


def metric_table(summary: Sequence[Mapping[str, Any]], metrics: Sequence[str],
                 width: int = 80) -> list[str]:
    """Lines of the compact table: sources down, the key metrics across.

    Long source names wrap within their column, so no line is longer than
    ``width`` and nothing is cut off.

    Parameters
    ----------
    summary : sequence of mapping
        One row per source with its mean metrics (``Evaluation.summary``).
    metrics : sequence of str
        The method's declared metrics, the verdict's first.
    width : int
        Characters per line (at least 40 are assumed).

    Returns
    -------
    list of str
    """
    width = max(width, 40)
    columns = key_columns(summary, metrics, width)
    source_width = _source_width(summary, width)
    widths = [_column_width(summary, m) for m in columns]
    header = "source".ljust(source_width) + "".join(
        " " * GAP + m.rjust(w) for m, w in zip(columns, widths, strict=True))
    lines = [header.rstrip(), "-" * len(header.rstrip())]
    for row in summary:
        name = wrap(str(row.get("source", "")), source_width, "  ")
        cells = "".join(" " * GAP + format_number(row.get(m)).rjust(w)
                        for m, w in zip(columns, widths, strict=True))
        lines.append((name[0].ljust(source_width) + cells).rstrip())
        lines += name[1:]
    return lines


def evaluation_lines(result: Any, width: int = 80) -> list[str]:
    """An evaluation for the console: key metrics, verdict, where the rest is.

    Parameters
    ----------
    result : Evaluation
        From ``api.evaluate`` (``summary``, ``metrics``, ``verdict``,
        ``report_path``, ``table_paths``).
    width : int
        Characters per line; only a path longer than that is not wrapped.

    Returns
    -------
    list of str
    """
    summary, metrics = result.summary, tuple(result.metrics)
    shown = key_columns(summary, metrics, width)
    images = max((row.get("images", 0) for row in summary), default=0)
    lines = wrap(f"Test metrics, mean over {plural(images, 'image')} "
                 f"({direction_note(shown)}):", width, "  ")
    lines += metric_table(summary, metrics, width)
    if result.verdict is not None:
        lines += wrap(f"verdict: {result.verdict.kind}. {result.verdict.text}", width, "  ")
    if result.report_path:
        lines += ["report:", f"  {result.report_path}"]
    every = [k for k in (summary[0] if summary else {}) if k not in ("source", "images")
             and not k.endswith("95% CI")]
    if result.table_paths:
        lines.append(f"all {plural(len(every), 'metric')} with 95% intervals "
                     "(per image in the .json):")
        lines += [f"  {p}" for p in result.table_paths]
    elif len(every) > len(shown):
        more = plural(len(every) - len(shown), "more metric")
        lines += wrap(f"{more} and 95% intervals: add --table FILE.csv (or --report, "
                      "which writes them beside the report)", width, "  ")
    return lines


def file_lines(files: Sequence[tuple[str | Path, str]], width: int = 80) -> list[str]:
    """Files written and what each holds: names aligned, descriptions wrapped.

    Parameters
    ----------
    files : sequence of (path, what)
        Main output first.
    width : int
        Characters per line.

    Returns
    -------
    list of str
    """
    folders = {str(Path(p).parent) for p, _ in files}
    # One folder: say it once and list the bare names.
    names = [Path(p).name if len(folders) == 1 else str(p) for p, _ in files]
    where = folders.pop() if len(folders) == 1 else "."
    lines = ["wrote:" if where == "." else f"wrote in {where}:"]
    column = min(max(map(len, names), default=0), width // 2)
    for name, (_, what) in zip(names, files, strict=True):
        if len(name) > column:
            lines.append(f"  {name}")
            name = ""
        lines += textwrap.wrap(what, width, initial_indent=f"  {name.ljust(column)}  ",
                               subsequent_indent=" " * (column + 4))
    return lines


def info_lines(details: Mapping[str, Any], width: int = 80) -> list[str]:
    """A model described for the console: what it is, how it trained, its history.

    Parameters
    ----------
    details : mapping
        From ``api.info`` (``model``, ``config``, ``data``, ``normalization``,
        ``qc``, ``history``); epochs stored from 0 are shown from 1.
    width : int
        Characters per line.

    Returns
    -------
    list of str
    """
    m, data, qc = details["model"], details["data"], details["qc"]
    lines = wrap(f"{details['config']['name']}: method {m['method']}, {m['ndim']}D, "
                 f"{m['in_channels']} -> {m['out_channels']} channel(s), microsight "
                 f"{m['microsight_version']}", width, "  ")
    lines += wrap(f"training data: {plural(int(data.get('items') or 0), 'item')}, axes "
                  f"{', '.join(data.get('axes', []))}, {data.get('split', '')}", width, "  ")
    norm = details["normalization"]
    text = f"{norm['mode']} percentiles {norm['p_low']}-{norm['p_high']}"
    for part in ("input", "target"):
        if part in norm:
            ranges = ", ".join(f"[{lo:.4g}, {hi:.4g}]" for lo, hi in
                               zip(norm[part]["low"], norm[part]["high"], strict=True))
            text += f"; {part} {ranges}"
    lines += wrap(f"normalization: {text}", width, "  ")
    for line in _quality(qc):
        lines += wrap(line, width, "  ")
    history = details.get("history") or []
    if history:
        lines += ["training history:", *history_table(history, width)]
    lines.append("everything: microsight info MODEL --json")
    return lines


def _quality(qc: Mapping[str, Any]) -> list[str]:
    """Sentences from a bundle's ``qc.json`` (epochs from 1)."""
    out = []
    run, best = qc.get("epochs_run"), shown_epoch(qc.get("best_epoch"))
    if run is not None:
        text = f"training: {plural(int(run), 'epoch')}"
        if qc.get("device"):
            text += f" on {qc['device']} ({qc.get('precision')})"
        if qc.get("stopped_early"):
            text += ", stopped early"
        if best is not None and qc.get("best_val_loss") is not None:
            text += f"; best epoch {best} of {run}, validation loss " \
                    f"{format_number(qc['best_val_loss'])}"
        if qc.get("complete") is False:
            text += "; its final steps are missing (finish them with train --resume)"
        out.append(text)
    verdict = qc.get("overfitting") or {}
    if verdict.get("status"):
        out.append(f"over-fitting check: {verdict['status']}. {verdict.get('message', '')}")
    validation = qc.get("validation") or {}
    if validation.get("warning"):
        out.append(f"validation: {validation['warning']}")
    for check in qc.get("data_checks") or []:
        out.append(f"data check: {check}")
    baseline = qc.get("baseline_check") or {}
    if baseline.get("worse_than_baseline"):
        scores = baseline.get("baseline_mse") or {}
        best_name = min(scores, key=scores.get) if scores else "a classical baseline"
        out.append(f"warning: on its validation data the model does worse than "
                   f"{best_name}: train longer or check the data")
    post = qc.get("postprocessing") or {}
    if post.get("params"):
        params = ", ".join(f"{k} {format_number(v)}" for k, v in post["params"].items())
        out.append(f"thresholds chosen on the validation images: {params}")
    return out


def history_table(history: Sequence[Mapping[str, Any]], width: int = 80) -> list[str]:
    """One line per epoch (from 1): losses, the validation metrics recorded, speed.

    Columns that do not fit ``width`` are left out (``--json`` has them all).
    """
    keys = ["train_loss", "val_loss"]
    keys += [k for k in dict.fromkeys(k for row in history for k in row)
             if k.startswith("val_") and k != "val_loss"
             and any(row.get(k) is not None for row in history)]
    keys.append("patches_per_second")
    heads = {"patches_per_second": "patches/s"}
    rows = [[str(shown_epoch(r.get("epoch", i)))] + [format_number(r.get(k)) for k in keys]
            for i, r in enumerate(history)]
    names = ["epoch"] + [heads.get(k, k) for k in keys]
    widths = [max(len(n), *(len(r[c]) for r in rows)) for c, n in enumerate(names)]
    used, keep = widths[0], [0]
    for c in range(1, len(names)):
        if used + GAP + widths[c] <= width:
            keep.append(c)
            used += GAP + widths[c]

    def line(cells: Sequence[str]) -> str:
        return (" " * GAP).join(cells[c].rjust(widths[c]) for c in keep)
    return [line(names), *(line(r) for r in rows)]


def direction_note(metrics: Sequence[str]) -> str:
    """Which way the metrics are better, e.g. ``higher is better, except nrmse``."""
    lower = [m for m in metrics if m in LOWER_IS_BETTER]
    higher = [m for m in metrics if m not in LOWER_IS_BETTER]
    if not lower:
        return "higher is better"
    if not higher:
        return "lower is better"
    if len(lower) <= len(higher):
        return f"higher is better, except {', '.join(lower)}"
    return f"lower is better, except {', '.join(higher)}"


def plural(n: int, word: str) -> str:
    """``1 image``, ``3 images``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def wrap(text: str, width: int = 80, indent: str = "") -> list[str]:
    """``text`` as lines of at most ``width`` characters, broken between words."""
    return textwrap.wrap(" ".join(str(text).split()), width, subsequent_indent=indent,
                         break_long_words=True, break_on_hyphens=False) or [""]


def _column_width(summary: Sequence[Mapping[str, Any]], metric: str) -> int:
    cells = [format_number(row.get(metric)) for row in summary]
    return max([len(metric), *map(len, cells)])


def _source_width(summary: Sequence[Mapping[str, Any]], width: int) -> int:
    """The source column: the longest name, but at most 40% of the line."""
    longest = max([len("source"), *(len(str(r.get("source", ""))) for r in summary)])
    return min(longest, max(len("source"), int(width * 0.4)))
