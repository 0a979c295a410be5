"""Self-contained HTML quality-control reports.

A :class:`Report` is an ordered list of sections (text, tables, code, figures,
image panels, training curves). Each method and later modules append their own
sections, so there is no fixed template; :meth:`Report.to_html` renders one
standalone page with inline CSS and base64-embedded PNGs, which can be mailed
or archived and opened offline years later: no scripts, no CDN, no web fonts.
"""

from __future__ import annotations

import html
import math
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from microsight.errors import MicrosightError
from microsight.qc.figures import figure_to_png, history_figure, image_panels_figure

__all__ = ["Report", "format_value"]

_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg-alt: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 2rem 1.5rem 4rem; }
header { border-bottom: 1px solid var(--line); margin-bottom: 1.5rem; padding-bottom: 1rem; }
h1 { font-size: 1.8rem; margin: 0 0 .3rem; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .8rem; padding-bottom: .3rem;
  border-bottom: 1px solid var(--line); }
.subtitle { font-size: 1.05rem; color: var(--muted); margin: 0 0 .4rem; }
.meta { font-size: .85rem; color: var(--muted); margin: 0; }
nav.toc { background: var(--bg-alt); border: 1px solid var(--line); border-radius: 6px;
  padding: .6rem 1.2rem; display: inline-block; min-width: 16rem; }
nav.toc ol { margin: .3rem 0; padding-left: 1.3rem; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .92rem; }
th, td { border: 1px solid var(--line); padding: .3rem .7rem; text-align: left;
  vertical-align: top; }
th { background: var(--bg-alt); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { width: 14rem; }
.note, figcaption { font-size: .88rem; color: var(--muted); }
pre { background: var(--bg-alt); border: 1px solid var(--line); border-radius: 6px;
  padding: .8rem 1rem; overflow-x: auto; font-size: .85rem; line-height: 1.45; }
figure { margin: .5rem 0; }
figure img { max-width: 100%; height: auto; }
footer { margin-top: 3rem; font-size: .8rem; color: var(--muted); }
.verdict { border: 1px solid var(--line); border-left: 6px solid var(--muted);
  border-radius: 6px; padding: .6rem 1rem; margin: .5rem 0; background: var(--bg-alt); }
.verdict strong { text-transform: uppercase; font-size: .85rem; letter-spacing: .03em; }
.verdict.ok { border-left-color: #1a7f37; } .verdict.info { border-left-color: #0969da; }
.verdict.warn { border-left-color: #bf8700; } .verdict.bad { border-left-color: #cf222e; }
"""


def _microsight_version() -> str:
    try:
        return version("microsight")
    except PackageNotFoundError:
        return "unknown"


def format_value(value: Any) -> str:
    """Format one table cell as plain (unescaped) text.

    Floats get 4 significant digits, infinities ``∞``/``-∞``, ``None`` an em
    dash; everything else its ``str``.

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
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if math.isnan(value):
            return "NaN"
        return f"{float(value):.4g}"
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _cell(value: Any, tag: str = "td") -> str:
    cls = ' class="num"' if _is_number(value) else ""
    return f"<{tag}{cls}>{html.escape(format_value(value))}</{tag}>"


@dataclass(frozen=True)
class _Section:
    heading: str
    body: str  # already-rendered, already-escaped HTML


class Report:
    """An HTML report built from an ordered list of sections.

    Parameters
    ----------
    title : str
        Page title and top heading.
    subtitle : str, optional
        One line under the title, e.g. the run name.

    Examples
    --------
    >>> report = Report("CARE denoising", subtitle="run 2024-05-01")
    >>> report.add_table("Test metrics", [{"image": "a.tif", "psnr": 31.2}])
    >>> path = report.write(tmp_dir / "report.html")  # doctest: +SKIP
    """

    def __init__(self, title: str, *, subtitle: str = "") -> None:
        self.title = title
        self.subtitle = subtitle
        self._sections: list[_Section] = []

    @property
    def headings(self) -> list[str]:
        """Headings of the sections added so far, in order."""
        return [s.heading for s in self._sections]

    def add_html(self, heading: str, body: str) -> None:
        """Add a section from trusted, already-escaped HTML.

        The extension point for sections the other methods do not cover. The
        caller must escape every user string and must not reference external
        resources.

        Parameters
        ----------
        heading : str
            Section heading (escaped here).
        body : str
            HTML inserted as is.
        """
        self._sections.append(_Section(str(heading), body))

    def add_text(self, heading: str, text: str) -> None:
        """Add paragraphs of plain text; blank lines separate paragraphs.

        Parameters
        ----------
        heading : str
            Section heading.
        text : str
            Plain text, HTML-escaped here; single newlines become line breaks.
        """
        paragraphs = [p.strip() for p in str(text).split("\n\n") if p.strip()]
        body = "\n".join(
            "<p>" + html.escape(p).replace("\n", "<br>\n") + "</p>" for p in paragraphs
        )
        self.add_html(heading, body)

    def add_table(self, heading: str, rows: list[dict[str, Any]], *, note: str = "") -> None:
        """Add a table with one row per dict.

        Parameters
        ----------
        heading : str
            Section heading.
        rows : list of dict
            Columns are the union of keys in first-seen order; a missing key
            shows as an em dash. Floats get 4 significant digits, ``inf`` is
            shown as ``∞`` and ``None`` as ``—``.
        note : str, optional
            A short line under the table.
        """
        columns: list[str] = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        head = "<tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in columns) + "</tr>"
        body_rows = ["<tr>" + "".join(_cell(row.get(c)) for c in columns) + "</tr>" for row in rows]
        parts = ["<table>", f"<thead>{head}</thead>", "<tbody>", *body_rows, "</tbody>", "</table>"]
        if not rows:
            parts = ['<p class="note">(no rows)</p>']
        if note:
            parts.append(f'<p class="note">{html.escape(note)}</p>')
        self.add_html(heading, "\n".join(parts))

    def add_key_values(self, heading: str, items: dict[str, Any]) -> None:
        """Add a two-column table of names and values (e.g. run settings).

        Parameters
        ----------
        heading : str
            Section heading.
        items : dict
            Name to value, formatted like :meth:`add_table` cells.
        """
        rows = "\n".join(
            f"<tr><th>{html.escape(str(k))}</th>{_cell(v)}</tr>" for k, v in items.items()
        )
        self.add_html(heading, f'<table class="kv">\n{rows}\n</table>')

    def add_code(self, heading: str, text: str) -> None:
        """Add preformatted text, e.g. the run's YAML config.

        Parameters
        ----------
        heading : str
            Section heading.
        text : str
            Shown verbatim (escaped) in a ``<pre>`` block.
        """
        self.add_html(heading, f"<pre><code>{html.escape(str(text))}</code></pre>")

    def add_figure(self, heading: str, fig: Any, *, caption: str = "") -> None:
        """Add a matplotlib figure as an embedded PNG; the figure is closed.

        Parameters
        ----------
        heading : str
            Section heading.
        fig : matplotlib.figure.Figure
            The figure to embed.
        caption : str, optional
            Text under the figure.
        """
        png = figure_to_png(fig)
        alt = html.escape(caption or heading)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.add_html(
            heading, f'<figure><img src="data:image/png;base64,{png}" alt="{alt}">{cap}</figure>'
        )

    def add_image_panels(
        self,
        heading: str,
        panels: dict[str, np.ndarray],
        *,
        caption: str = "",
        shared_range: list[str] | None = None,
        cmaps: dict[str, str] | None = None,
    ) -> None:
        """Add one row of images side by side, each with a colorbar.

        Parameters
        ----------
        heading : str
            Section heading.
        panels : dict of str to numpy.ndarray
            Title to image, e.g. ``input``, ``prediction``, ``target``,
            ``|error|``. 3D stacks show their middle Z slice; large images are
            subsampled for display.
        caption : str, optional
            Text under the row.
        shared_range : list of str, optional
            Panels that share one display range (robust 1-99.8 percentiles
            over all of them) so their brightness is comparable.
        cmaps : dict of str to str, optional
            Colormap per panel; default ``gray``.
        """
        fig = image_panels_figure(panels, shared_range=shared_range, cmaps=cmaps)
        if shared_range:
            shared_note = "Same display range: " + ", ".join(shared_range) + "."
            caption = f"{caption} {shared_note}".strip()
        self.add_figure(heading, fig, caption=caption)

    def add_verdict(self, heading: str, status: str, message: str, *, level: str = "info"
                    ) -> None:
        """Add a highlighted box with a short status and its explanation.

        Parameters
        ----------
        heading : str
            Section heading.
        status : str
            A few words, e.g. ``over-fitting``; shown in capitals.
        message : str
            Plain text explanation; newlines become line breaks.
        level : {"ok", "info", "warn", "bad"}
            Colour of the box's edge.
        """
        if level not in ("ok", "info", "warn", "bad"):
            raise MicrosightError(f"verdict level must be ok, info, warn or bad, got {level!r}.")
        text = html.escape(str(message)).replace("\n", "<br>\n")
        self.add_html(heading, f'<div class="verdict {level}"><strong>{html.escape(status)}'
                               f"</strong><br>\n{text}</div>")

    def add_history(
        self, heading: str, history: list[dict[str, float]], *, keys: list[str] | None = None
    ) -> None:
        """Add training curves: losses on one axis, validation metrics on another.

        Parameters
        ----------
        heading : str
            Section heading.
        history : list of dict
            One row per epoch with an ``epoch`` key; every numeric column whose
            name contains ``loss`` is plotted (log scale if positive), other
            ``val_*`` columns on a second axis. The epoch with the lowest
            ``val_loss`` is marked.
        keys : list of str, optional
            Only plot these columns.
        """
        if not history:
            self.add_text(heading, "No training history was recorded.")
            return
        fig = history_figure(history, keys=keys)
        caption = ""
        if any("val_loss" in row for row in history):
            caption = "Dashed line: epoch with the lowest val_loss."
        self.add_figure(heading, fig, caption=caption)

    def to_html(self) -> str:
        """Render the complete standalone HTML page.

        Returns
        -------
        str
            The page, with inline CSS, a table of contents, the generation
            time (UTC) and the microsight version; no external resources.
        """
        esc = html.escape
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        meta = f"Generated {stamp} by microsight {esc(_microsight_version())}"
        ids = [f"sec-{i + 1}" for i in range(len(self._sections))]
        toc = "\n".join(
            f'<li><a href="#{sid}">{esc(s.heading)}</a></li>'
            for sid, s in zip(ids, self._sections, strict=True)
        )
        sections = "\n".join(
            f'<section id="{sid}">\n<h2>{esc(s.heading)}</h2>\n{s.body}\n</section>'
            for sid, s in zip(ids, self._sections, strict=True)
        )
        subtitle = f'<p class="subtitle">{esc(self.subtitle)}</p>' if self.subtitle else ""
        nav = f'<nav class="toc"><strong>Contents</strong><ol>\n{toc}\n</ol></nav>' if toc else ""
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="microsight {esc(_microsight_version())}">
<title>{esc(self.title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header>
<h1>{esc(self.title)}</h1>
{subtitle}
<p class="meta">{meta}</p>
</header>
{nav}
{sections}
<footer>{meta}</footer>
</main>
</body>
</html>
"""

    def write_pdf(self, path: str | os.PathLike[str]) -> Path:
        """Write the same sections as a PDF (matplotlib pages; no other dependency).

        Parameters
        ----------
        path : str or os.PathLike
            Destination ``.pdf`` file, written atomically.

        Returns
        -------
        pathlib.Path
        """
        from microsight.qc.pdf import write_pdf

        return write_pdf(self.title, self.subtitle,
                         [(s.heading, s.body) for s in self._sections], path)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the report atomically and return its path.

        The page goes to a hidden temporary file next to ``path`` first and is
        then renamed over it, so a reader never sees a half-written report.
        Missing parent folders are created.

        Parameters
        ----------
        path : str or os.PathLike
            Destination ``.html`` file; a ``.pdf`` suffix writes the PDF
            export instead (:meth:`write_pdf`).

        Returns
        -------
        pathlib.Path
        """
        path = Path(path)
        if path.suffix.lower() == ".pdf":
            return self.write_pdf(path)
        text = self.to_html()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MicrosightError(f"cannot create folder {path.parent}: {exc.strerror}.") from exc
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            # Mode "x" honours the umask, unlike tempfile's private 0600 files.
            with open(tmp, "x", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise MicrosightError(f"cannot write report {path}: {exc.strerror or exc}.") from exc
        return path
