"""MkDocs hook: Sphinx cross-reference roles in docstrings, shown as plain code.

The docstrings name objects the Sphinx way (``:class:`~microsight.io.Image```),
which mkdocstrings renders literally as ``:class:`` before the code. This keeps
the code and drops the role (and the ``~`` that asks for the short name).
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):<code>~?([^<]*)</code>")


def _short(match: re.Match) -> str:
    name = match.group(1)
    if match.group(0).split("<code>", 1)[1].startswith("~"):
        name = name.rsplit(".", 1)[-1]
    return f"<code>{name}</code>"


def on_page_content(html, page, config, files):
    """Replace each role + code by the code alone."""
    return ROLE.sub(_short, html)
