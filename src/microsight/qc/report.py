"""Self-contained HTML quality-control reports.

A :class:`Report` is an ordered list of sections (text, tables, code, figures,
image panels, training curves). Each method and later modules append their own
sections, so there is no fixed template; :meth:`Report.to_html` renders one
standalone page with inline CSS and base64-embedded PNGs, which can be mailed
or archived and opened offline years later: no scripts, no CDN, no web fonts.
"""

from __future__ import annotations

import html
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from microsight.errors import MicrosightError
from microsight.qc.cells import MISSING, cell, format_value, header, missing_note
from microsight.qc.crop import crop_region, describe_crop
from microsight.qc.figures import (
    display_plane,
    figure_to_png,
    history_figure,
    image_panels_figure,
    panel_reference,
)
from microsight.qc.glossary import glossary_entries, label
from microsight.qc.style import CSS

__all__ = ["Report", "format_value"]



def _microsight_version() -> str:
    try:
        return version("microsight")
    except PackageNotFoundError:
        return "unknown"


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
        self._columns: list[str] = []  # table headers shown, for the glossary

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

    def add_table(self, heading: str, rows: list[dict[str, Any]], *, note: str = "",
                  missing: str = MISSING) -> None:
        """Add a table with one row per dict.

        Parameters
        ----------
        heading : str
            Section heading.
        rows : list of dict
            Columns are the union of keys in first-seen order. Floats get 4
            significant digits, ``inf`` is shown as ``∞``; a missing key,
            ``None`` or NaN as ``—``, explained in a footnote. Known metric
            names get their meaning as hover text and a glossary entry.
        note : str, optional
            A short line under the table.
        missing : str, optional
            Why a cell can be empty (the footnote of ``—`` outside interval columns).
        """
        columns: list[str] = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        self._columns.extend(c for c in columns if c not in self._columns)
        head = "<tr>" + "".join(header(str(c)) for c in columns) + "</tr>"
        body_rows = ["<tr>" + "".join(cell(row.get(c)) for c in columns) + "</tr>" for row in rows]
        parts = ['<div class="scroll"><table>', f"<thead>{head}</thead>", "<tbody>", *body_rows,
                 "</tbody>", "</table></div>"]
        if not rows:
            parts = ['<p class="note">(no rows)</p>']
        notes = [note, missing_note(rows, columns, missing)]
        parts += [f'<p class="note">{html.escape(n)}</p>' for n in notes if n]
        self.add_html(heading, "\n".join(parts))

    def add_key_values(self, heading: str, items: dict[str, Any], *, note: str = "",
                       missing: str = MISSING) -> None:
        """Add a two-column table of names and values (e.g. run settings).

        Parameters
        ----------
        heading : str
            Section heading.
        items : dict
            Name to value, formatted like :meth:`add_table` cells; names such
            as ``pixel_sizes_um`` are shown in words.
        note : str, optional
            A short line under the table.
        missing : str, optional
            Why a value can be empty (the footnote of ``—``).
        """
        names = [label(str(k)) for k in items]
        # Settings and facts, not metrics: no glossary ("precision" here is numeric precision).
        rows = "\n".join(f"<tr><th>{html.escape(n)}</th>{cell(v)}</tr>"
                         for n, v in zip(names, items.values(), strict=True))
        notes = [note, missing_note([items], list(items), missing)]
        tail = "".join(f'\n<p class="note">{html.escape(n)}</p>' for n in notes if n)
        self.add_html(heading, f'<div class="scroll"><table class="kv">\n{rows}\n</table></div>'
                               f"{tail}")

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
        labels: dict[str, str] | None = None,
        reference: str | None = None,
        from_zero: list[str] | None = None,
    ) -> None:
        """Add images in a grid, each with a colour bar, cropped to a readable region.

        Parameters
        ----------
        heading : str
            Section heading.
        panels : dict of str to numpy.ndarray
            Title to image, e.g. ``input``, ``prediction``, ``target``,
            ``|prediction - target|``. 3D stacks show their middle Z slice;
            images larger than 256 pixels or very elongated show a region of
            interest (where the reference varies most), said in the caption.
        caption : str, optional
            Text under the images.
        shared_range : list of str, optional
            Panels that share one display range (robust 1-99.8 percentiles of
            the reference panel) so their brightness is comparable.
        cmaps : dict of str to str, optional
            Colormap per panel; default ``gray``.
        labels : dict of str to str, optional
            Colour bar label per panel; shared panels default to
            ``intensity (same display range)``.
        reference : str, optional
            Panel setting the shared range and the crop; default ``target``
            if shared, else the first shared panel, else the first panel.
        from_zero : list of str, optional
            Panels whose range starts at 0, e.g. error maps.
        """
        shared = list(shared_range or [])
        ref = reference or panel_reference(list(panels), shared)
        if ref not in panels:
            raise MicrosightError(f"unknown panel name(s) {[ref]}; panels are {list(panels)}.")
        ref_image = display_plane(panels[ref], ref)
        region = crop_region(ref_image)
        labels = {**{n: "intensity (same display range)" for n in shared}, **(labels or {})}
        fig = image_panels_figure(panels, shared_range=shared, cmaps=cmaps, labels=labels,
                                  reference=ref, region=region, from_zero=from_zero or ())
        notes = [caption]
        if len(shared) > 1:
            notes.append(f"{', '.join(shared)}: one display range, the 1st-99.8th percentiles "
                         f"of {ref}.")
        notes.append(describe_crop(region, ref_image.shape))
        self.add_figure(heading, fig, caption=" ".join(n for n in notes if n))

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
        lines = [html.escape(t.strip()) for t in str(message).split("\n") if t.strip()]
        first = f"<p><strong>{html.escape(status)}.</strong> {lines[0] if lines else ''}</p>"
        rest = "".join(f'\n<p class="rule">{t}</p>' if t.startswith("Rule:") else f"\n<p>{t}</p>"
                       for t in lines[1:])
        self.add_html(heading, f'<div class="verdict {level}">{first}{rest}</div>')

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

    def _glossary(self) -> _Section | None:
        """The closing glossary of the metric names the tables used, if any."""
        entries = glossary_entries(self._columns)
        if not entries:
            return None
        items = "\n".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>"
                          for k, v in entries.items())
        return _Section("Glossary", '<p class="note">What the numbers in the tables mean '
                                    "(in the HTML page, also shown when the pointer rests on "
                                    "a column name)."
                                    f'</p>\n<dl class="glossary">\n{items}\n</dl>')

    def _all_sections(self) -> list[_Section]:
        glossary = self._glossary()
        return [*self._sections, *([glossary] if glossary else [])]

    def to_html(self) -> str:
        """Render the complete standalone HTML page.

        Returns
        -------
        str
            The page, with inline CSS, the first section (the verdict of an
            evaluation) before the table of contents, a closing glossary of
            the metrics shown, the generation time (UTC) and the microsight
            version; no external resources.
        """
        esc = html.escape
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        meta = f"Generated {stamp} by microsight {esc(_microsight_version())}"
        all_sections = self._all_sections()
        ids = [f"sec-{i + 1}" for i in range(len(all_sections))]
        toc = "\n".join(
            f'<li><a href="#{sid}">{esc(s.heading)}</a></li>'
            for sid, s in zip(ids, all_sections, strict=True)
        )
        blocks = [f'<section id="{sid}">\n<h2>{esc(s.heading)}</h2>\n{s.body}\n</section>'
                  for sid, s in zip(ids, all_sections, strict=True)]
        subtitle = f'<div class="subtitle">{esc(self.subtitle)}</div>' if self.subtitle else ""
        nav = (f'<nav class="toc"><strong>Contents</strong><ol>\n{toc}\n</ol></nav>'
               if len(all_sections) > 2 else "")
        # The first section (an evaluation's verdict) is the first thing read.
        body = "\n".join([*blocks[:1], nav, *blocks[1:]])
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="microsight {esc(_microsight_version())}">
<title>{esc(self.title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header>
<h1>{esc(self.title)}</h1>
{subtitle}
<div class="meta">{meta}</div>
</header>
{body}
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
                         [(s.heading, s.body) for s in self._all_sections()], path)

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
