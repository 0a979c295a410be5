"""Pages from the Jinja2 templates, with the app's state at hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from microsight.qc.epochs import shown_epoch

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# Stored epochs count from 0; pages show them from 1.
templates.env.filters["epoch"] = shown_epoch


def render(request: Request, template: str, **context: Any) -> HTMLResponse:
    """Render a template with the app's store and jobs at hand."""
    return templates.TemplateResponse(request, template, {"store": request.app.state.store,
                                                      "jobs": request.app.state.jobs,
                                                      **context})
