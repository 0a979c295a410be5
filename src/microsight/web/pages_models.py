"""Steps 4 and 5: a model's page, checking it on held-out data, predicting, downloads."""

from __future__ import annotations

import os
import secrets
import zipfile
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from microsight.errors import MicrosightError
from microsight.web.security import safe_name
from microsight.web.store import Store

router = APIRouter()


def _render(request: Request, template: str, **context: Any) -> HTMLResponse:
    from microsight.web.render import render

    return render(request, template, **context)


def _model(request: Request, name: str) -> str:
    store: Store = request.app.state.store
    if not store.path("models", safe_name(name), "config.yaml").is_file():
        raise KeyError(name)
    return name


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(name: str, request: Request, error: str = "") -> HTMLResponse:
    """What a model is and how it trained; forms to check it and to predict with it."""
    from microsight import api

    store: Store = request.app.state.store
    _model(request, name)
    try:
        info = api.info(store.path("models", name))
    except MicrosightError as exc:
        info = {"error": str(exc)}
    related = [j for j in request.app.state.jobs.all()
               if j["params"].get("model") == name]
    return _render(request, "model.html", step=4, name=name, info=info,
                   datasets=store.datasets(), related=related, error=error)


@router.post("/models/{name}/evaluate")
async def evaluate(name: str, request: Request, input: str = Form(...),
                   target: str = Form(...)) -> Response:
    """Queue an evaluation on held-out pairs (the report with its verdict follows)."""
    store: Store = request.app.state.store
    _model(request, name)
    axes = store.dataset(input).get("axes")
    store.dataset(target)
    job = request.app.state.jobs.submit(
        "evaluate", f"check {name} on {store.dataset(input)['name']}",
        {"model": name, "input": input, "target": target, "axes": axes})
    return RedirectResponse(f"/jobs/{job['id']}", status_code=303)


@router.post("/models/{name}/predict")
async def predict(name: str, request: Request, dataset: str = Form(...),
                  uncertainty: bool = Form(False)) -> Response:
    """Queue a prediction on every image of a data set."""
    store: Store = request.app.state.store
    _model(request, name)
    record = store.dataset(dataset)
    images = store.images(dataset)
    if not images:
        return RedirectResponse(f"/models/{name}?error=that+data+set+has+no+images",
                                status_code=303)
    job = request.app.state.jobs.submit(
        "predict", f"predict {record['name']} with {name}",
        {"model": name, "dataset": dataset, "images": images, "axes": record.get("axes"),
         "uncertainty": uncertainty})
    return RedirectResponse(f"/jobs/{job['id']}", status_code=303)


@router.get("/models/{name}/download")
def download_model(name: str, request: Request) -> FileResponse:
    """The model bundle as one .zip (what ``microsight predict`` and the API load)."""
    from microsight import api

    store: Store = request.app.state.store
    _model(request, name)
    final = store.path("exports", f"{name}.zip")
    tmp = store.path("exports", f"tmp-{secrets.token_hex(4)}.zip")
    api.export(store.path("models", name), tmp)
    os.replace(tmp, final)
    return FileResponse(final, filename=final.name)


@router.get("/jobs/{ident}/download")
def download_results(ident: str, request: Request) -> FileResponse:
    """Every file a prediction or evaluation job wrote, as one .zip."""
    store: Store = request.app.state.store
    request.app.state.jobs.get(safe_name(ident))
    folder = store.path("results", ident)
    if not folder.is_dir():
        raise KeyError(ident)
    final = store.path("exports", f"{ident}-results.zip")
    tmp = store.path("exports", f"tmp-{secrets.token_hex(4)}.zip")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                zf.write(path, path.relative_to(folder).as_posix())
    os.replace(tmp, final)
    return FileResponse(final, filename=final.name)




@router.get("/models", response_class=HTMLResponse)
async def models_page(request: Request, message: str = "") -> HTMLResponse:
    """Every model in the data folder, and the pretrained models shipped with microsight."""
    from microsight import api

    store: Store = request.app.state.store
    entries = [(f"/models/{m}", m, "") for m in store.models()]
    return _render(request, "models.html", step=4, heading="4 Check and 5 Predict: models",
                   entries=entries, shipped=api.pretrained(), message=message)


@router.post("/models/pretrained/{name}")
def add_pretrained(name: str, request: Request) -> Response:
    """Copy a shipped model into the data folder, where it is checked and used like any."""
    from microsight import api

    store: Store = request.app.state.store
    target = store.path("models", safe_name(name))
    if not target.exists():
        api.copy_pretrained(name, target)
    return RedirectResponse(f"/models/{safe_name(name)}", status_code=303)
