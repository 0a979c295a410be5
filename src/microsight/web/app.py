"""The FastAPI application: settings, shared helpers, the home page and file downloads.

``create_app`` builds the app around one data folder and one access token and
wraps it in :class:`~microsight.web.security.Guard`. The pages of each step
live in ``pages_data`` (1 data), ``pages_train`` (2 task and 3 train) and
``pages_models`` (4 check and 5 predict).
"""

from __future__ import annotations

import os
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from microsight.web.jobs import Jobs
from microsight.web.render import render
from microsight.web.security import Guard, UnsafeName
from microsight.web.store import Store

HERE = Path(__file__).parent
DEFAULT_MAX_UPLOAD_MB = 2048


@dataclass
class Settings:
    """What one running app serves.

    Attributes
    ----------
    data_dir : Path
        Folder for uploads, models, results and jobs (created if needed).
    token : str
        The access token every request must carry.
    max_upload_mb : int
        Largest request body (uploads) in megabytes; larger ones get 413.
    """

    data_dir: Path
    token: str
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB

    @classmethod
    def from_env(cls) -> Settings:
        """Settings passed by ``microsight serve`` through the environment."""
        return cls(Path(os.environ["MICROSIGHT_WEB_DATA_DIR"]),
                   os.environ["MICROSIGHT_WEB_TOKEN"],
                   int(os.environ.get("MICROSIGHT_WEB_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB)))


def _runners(store: Store) -> dict[str, Any]:
    from microsight.web import tasks

    return {name: (lambda job, cancel, report, f=f: f(store, job, cancel, report))
            for name, f in (("train", tasks.run_train), ("evaluate", tasks.run_evaluate),
                            ("predict", tasks.run_predict))}


def create_app(settings: Settings, *, warm: bool = True) -> Guard:
    """Build the app for ``settings``; the returned ASGI app checks every request.

    Parameters
    ----------
    settings : Settings
        Data folder, token and upload limit.
    warm : bool
        Import the API (PyTorch) in the background at once, so the first preview
        or job does not wait for it.
    """
    from microsight.web import pages_data, pages_models, pages_train

    store = Store(settings.data_dir)
    jobs = Jobs(store, _runners(store))

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        jobs.close()

    app = FastAPI(title="microsight", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.store, app.state.jobs, app.state.settings = store, jobs, settings
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for module in (pages_data, pages_train, pages_models):
        app.include_router(module.router)
    app.add_api_route("/", home, methods=["GET"], response_class=HTMLResponse)
    app.add_api_route("/files/{path:path}", download, methods=["GET"])
    app.add_exception_handler(UnsafeName, _bad_name)
    app.add_exception_handler(KeyError, _not_found)
    app.middleware("http")(_headers)
    jobs.start()
    if warm:
        threading.Thread(target=_warm_up, daemon=True).start()
    return Guard(app, settings.token, settings.max_upload_mb * 2**20)


def app_from_env() -> Guard:
    """App factory for uvicorn (``microsight serve`` sets the environment)."""
    return create_app(Settings.from_env())


def _warm_up() -> None:
    import microsight.api  # noqa: F401  (starts PyTorch once, in the background)


async def _headers(request: Request, call_next):
    response = await call_next(request)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'self'"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


async def _bad_name(request: Request, exc: Exception) -> PlainTextResponse:
    return PlainTextResponse(f"refused: {exc}", status_code=400)


async def _not_found(request: Request, exc: Exception) -> PlainTextResponse:
    return PlainTextResponse(f"not found: {exc}", status_code=404)


async def home(request: Request) -> HTMLResponse:
    """Start page: the five steps and what the data folder holds."""
    store = request.app.state.store
    return render(request, "index.html", step=0, datasets=store.datasets(),
                  models=store.models(), all_jobs=request.app.state.jobs.all()[:10])


async def download(path: str, request: Request) -> FileResponse:
    """A file from the app's results or models (reports, predictions), nothing else."""
    store: Store = request.app.state.store
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in ("results", "models", "exports"):
        raise UnsafeName("only results, models and exports can be downloaded")
    file = store.path(*parts)
    if not file.is_file():
        raise KeyError(path)
    inline = file.suffix in (".html", ".png", ".svg")
    return FileResponse(file, filename=None if inline else file.name,
                        content_disposition_type="inline" if inline else "attachment")
