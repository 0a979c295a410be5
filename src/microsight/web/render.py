"""Pages from the Jinja2 templates, with the app's state at hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def render(request: Request, template: str, **context: Any) -> HTMLResponse:
    """Render a template with the app's store and jobs at hand."""
    return templates.TemplateResponse(request, template, {"store": request.app.state.store,
                                                      "jobs": request.app.state.jobs,
                                                      **context})
