"""The live training chart: an SVG drawn on the server from the job's record.

No plotting library in the browser: the page polls a fragment that holds
this SVG, so the curve is right after a reload or a server restart too.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def loss_chart(steps: list[list[float]], history: list[dict[str, Any]]) -> str:
    """SVG of the training loss per step and per epoch and the validation loss.

    Parameters
    ----------
    steps : list of [step, loss]
        Training loss after each (recorded) optimizer step.
    history : list of dict
        One row per epoch with ``step``, ``train_loss`` and ``val_loss``.

    Returns
    -------
    str
        An ``<svg>`` element (empty axes with a note before the first step).
    """
    series = {
        "training loss (steps)": [(s, v) for s, v in steps if _finite(v) is not None],
        "training loss (epoch)": _points(history, "train_loss"),
        "validation loss": _points(history, "val_loss"),
    }
    values = [v for pts in series.values() for _, v in pts]
    xs = [x for pts in series.values() for x, _ in pts]
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
             f'height="{HEIGHT}" role="img" aria-label="training curves">',
             f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
             f'height="{HEIGHT - TOP - BOTTOM}" fill="#fff" stroke="#bbb"/>']
    if not values:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
                     'fill="#666">the curve appears after the first steps</text></svg>')
        return "".join(parts)
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y0, y1 = min(values), max(values)
    pad = (y1 - y0) * 0.08 or abs(y1) * 0.1 or 1.0
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float, y: float) -> str:
        sx = LEFT + (x - x0) / (x1 - x0) * (WIDTH - LEFT - RIGHT)
        sy = TOP + (y1 - y) / (y1 - y0) * (HEIGHT - TOP - BOTTOM)
        return f"{sx:.1f},{sy:.1f}"

    styles = {"training loss (steps)": ("#9ec5f0", 1, False),
              "training loss (epoch)": ("#1f5fbf", 2, True),
              "validation loss": ("#d9480f", 2, True)}
    for name, pts in series.items():
        color, width, dots = styles[name]
        if len(pts) > 1:
            path = " ".join(px(x, y) for x, y in pts)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="{width}" '
                         f'points="{path}"/>')
        if dots:
            parts.extend(f'<circle cx="{px(x, y).split(",")[0]}" cy="{px(x, y).split(",")[1]}"'
                         f' r="3" fill="{color}"/>' for x, y in pts)
    parts.extend(_axes_text(x0, x1, y0, y1))
    for i, (name, (color, _, _)) in enumerate(styles.items()):
        x = LEFT + 8 + i * 190
        parts.append(f'<rect x="{x}" y="{HEIGHT - 14}" width="12" height="4" fill="{color}"/>'
                     f'<text x="{x + 16}" y="{HEIGHT - 8}" font-size="12">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _points(history: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    out = []
    for row in history:
        x, y = _finite(row.get("step")), _finite(row.get(key))
        if x is not None and y is not None:
            out.append((x, y))
    return out


def _axes_text(x0: float, x1: float, y0: float, y1: float) -> list[str]:
    bottom = HEIGHT - BOTTOM
    return [
        f'<text x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end" font-size="11">{y1:.3g}</text>',
        f'<text x="{LEFT - 4}" y="{bottom}" text-anchor="end" font-size="11">{y0:.3g}</text>',
        f'<text x="{LEFT}" y="{bottom + 14}" font-size="11">step {x0:.0f}</text>',
        f'<text x="{WIDTH - RIGHT}" y="{bottom + 14}" text-anchor="end" font-size="11">'
        f'step {x1:.0f}</text>',
        f'<text x="14" y="{(TOP + bottom) / 2}" font-size="11" '
        f'transform="rotate(-90 14 {(TOP + bottom) / 2})" text-anchor="middle">loss</text>',
    ]
