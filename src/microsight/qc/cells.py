"""Table cells of the reports: values in words, headers with their meaning as hover text."""

from __future__ import annotations

import html
import math
import re
from typing import Any

import numpy as np

from microsight.qc.glossary import describe, label

__all__ = ["MISSING", "cell", "format_value", "header", "missing_note"]

#: Longest list written out in a cell.
MAX_ITEMS = 8


def format_value(value: Any) -> str:
    """Format one table cell as plain (unescaped) words and numbers.

    Floats get 4 significant digits, infinities ``∞``/``-∞``; ``None`` and NaN
    an em dash (tables explain it in a footnote); booleans ``yes``/``no``;
    lists their items joined by commas and mappings ``key: value`` pairs,
    ``none`` when empty, so no Python notation reaches the page.

    Parameters
    ----------
    value : Any
        The cell value.

    Returns
    -------
    str
    """
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if math.isnan(value):
            return "—"
        return f"{float(value):.4g}"
    if isinstance(value, np.integer):
        return str(int(value))
    if isinstance(value, dict):
        if not value:
            return "none"
        return "; ".join(f"{label(str(k))}: {format_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set, np.ndarray)):
        items = list(value)
        if not items:
            return "none"
        if any(isinstance(v, dict) for v in items):
            return f"{len(items)} records (kept in the model's qc.json)"
        shown = ", ".join(format_value(v) for v in items[:MAX_ITEMS])
        return shown if len(items) <= MAX_ITEMS else f"{shown}, ... ({len(items)} values)"
    return str(value)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def missing_note(rows: list[dict[str, Any]], columns: list[str], reason: str) -> str:
    """Footnote saying why cells show an em dash, or '' when none does."""
    notes = []
    missing = {c for row in rows for c in columns if _is_missing(row.get(c, None))}
    if any(c.endswith("95% CI") for c in missing):
        notes.append("— in a 95% CI column: fewer than 3 test images, too few for an interval")
    if any(not c.endswith("95% CI") for c in missing):
        notes.append(f"— elsewhere: {reason}" if notes else f"—: {reason}")
    return "; ".join(notes) + "." if notes else ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


#: An interval such as ``0.83 - 1`` (kept on one line, like a number).
_INTERVAL = re.compile(r"^-?[\d.]+(e[+-]?\d+)? - -?[\d.]+(e[+-]?\d+)?$")


def cell(value: Any, tag: str = "td") -> str:
    """One table cell: numbers and intervals right-aligned on one line, long text wrapped."""
    text = format_value(value)
    numeric = _is_number(value) or bool(_INTERVAL.match(text))
    # Long words get room to wrap into a few lines, not one word per line.
    cls = ' class="num"' if numeric else ' class="long"' if len(text) > 24 else ""
    return f"<{tag}{cls}>{html.escape(text)}</{tag}>"


def header(name: str, tag: str = "th") -> str:
    """A header cell whose hover text says what the column means (if it is a known term)."""
    text = html.escape(name)
    meaning = describe(name)
    if meaning:
        text = f'<abbr title="{html.escape(meaning)}">{text}</abbr>'
    return f"<{tag}>{text}</{tag}>"


#: Why a cell is empty when the caller does not say.
MISSING = "no value for this row (nothing to measure, or the source does not give it)"
