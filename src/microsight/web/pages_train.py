"""Steps 2 and 3: the task in plain words, the settings form, training jobs and their pages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microsight.errors import MicrosightError
from microsight.web import forms
from microsight.web.charts import loss_chart
from microsight.web.security import UnsafeName, safe_name
from microsight.web.store import Store

router = APIRouter()


def _render(request: Request, template: str, **context: Any) -> HTMLResponse:
    from microsight.web.render import render

    return render(request, template, **context)


def _specs() -> dict[str, Any]:
    from microsight import api

    return api.available_methods()


@router.get("/task", response_class=HTMLResponse)
def task_page(request: Request) -> HTMLResponse:
    """The tasks in plain words, each with the method that does it."""
    specs = _specs()
    tasks = [(key, words, specs[m]) for key, words, m in forms.TASKS if m in specs]
    return _render(request, "task.html", step=2, tasks=tasks, specs=specs)


@router.get("/train", response_class=HTMLResponse)
def train_page(request: Request, method: str = "care", init_from: str = ""
                     ) -> HTMLResponse:
    """The training form of ``method``: data, name, and settings from its JSON Schema."""
    return train_form(request, method, init_from)


def train_form(request: Request, method: str, init_from: str = "", error: str = "",
               values: dict | None = None) -> HTMLResponse:
    """Render the training form, with the user's values and the problem after a refusal."""
    from microsight import api

    specs = _specs()
    if method not in specs:
        raise KeyError(method)
    store: Store = request.app.state.store
    fields = forms.schema_fields(api.config_schema(method))
    models = [m for m in store.models() if _method_of(store, m) == method]
    return _render(request, "train.html", step=2, method=method, spec=specs[method],
                   fields=fields, datasets=store.datasets(), models=models,
                   init_from=init_from, error=error, values=values or {})


def _method_of(store: Store, model: str) -> str | None:
    import yaml

    try:
        config = yaml.safe_load(store.path("models", model, "config.yaml").read_text())
        return config["method"]["method"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return None


@router.post("/train")
async def train_submit(request: Request) -> Response:
    """Check the form, queue the training job and show its page."""
    from microsight import api

    form = await request.form()
    method = str(form.get("method", ""))
    store: Store = request.app.state.store
    values = {k: form.getlist(k)[-1] for k in form}
    try:
        spec = _specs()[method]
        fields = forms.schema_fields(api.config_schema(method))
        config = forms.config_from_form(fields, form, method)
        model = safe_name(str(form.get("model", "")))
        config["name"] = model
        if store.path("models", model).exists():
            raise MicrosightError(f"a model named {model} exists; choose another name")
        source, target = str(form.get("input", "")), str(form.get("target", "")) or None
        if not source:
            raise MicrosightError("choose the training images")
        axes = store.dataset(source).get("axes")
        if target:
            store.dataset(target)
        init = str(form.get("init_from", "")) or None
        if init and not store.path("models", init).is_dir():
            raise MicrosightError(f"no model {init} to fine-tune from")
        api.build_config(method, config)  # refuse bad values now, not in the job
        if spec.needs_target is True and not target:
            raise MicrosightError(f"{method} learns from pairs: choose the target images")
    except (MicrosightError, ValueError, UnsafeName, KeyError) as exc:
        return train_form(request, method if method in _specs() else "care",
                          str(form.get("init_from", "")), str(exc).strip("'\""), values)
    params = {"method": method, "input": source, "target": target, "model": model,
              "config": config, "axes": axes, "init_from": init, "resume": False}
    title = f"train {model} ({method})" + (f", fine-tuned from {init}" if init else "")
    job = request.app.state.jobs.submit("train", title, params)
    return RedirectResponse(f"/jobs/{job['id']}", status_code=303)


def job_context(request: Request, ident: str) -> dict[str, Any]:
    """What the job page and its polled fragment show."""
    jobs = request.app.state.jobs
    job = jobs.get(ident)
    context: dict[str, Any] = {"job": job, "position": jobs.position(ident),
                               "active": job["status"] in ("queued", "running")}
    if job["kind"] == "train":
        context["chart"] = loss_chart(job["steps"], job["history"])
        context["resumable"] = job["status"] in ("stopped", "interrupted", "failed") and \
            request.app.state.store.path("models", job["params"]["model"], "config.yaml"
                                         ).is_file()
    return context


@router.get("/jobs/{ident}", response_class=HTMLResponse)
async def job_page(ident: str, request: Request) -> HTMLResponse:
    """A job's page: progress, live curves, verdicts and results."""
    context = job_context(request, safe_name(ident))
    step = {"train": 3, "evaluate": 4, "predict": 5}[context["job"]["kind"]]
    return _render(request, "job.html", step=step, **context)


@router.get("/jobs/{ident}/status", response_class=HTMLResponse)
async def job_status(ident: str, request: Request) -> HTMLResponse:
    """The polled part of the job page (polling stops once the job is finished)."""
    return _render(request, "_job.html", **job_context(request, safe_name(ident)))


@router.post("/jobs/{ident}/stop")
async def job_stop(ident: str, request: Request) -> Response:
    """Stop a job after its current step (a training stays resumable)."""
    request.app.state.jobs.stop(safe_name(ident))
    return RedirectResponse(f"/jobs/{ident}", status_code=303)


@router.post("/jobs/{ident}/resume")
async def job_resume(ident: str, request: Request) -> Response:
    """Continue a stopped or interrupted training from its bundle, in a new job."""
    jobs = request.app.state.jobs
    old = jobs.get(safe_name(ident))
    if old["kind"] != "train" or old["status"] in ("queued", "running"):
        raise UnsafeName("only a stopped or interrupted training can resume")
    params = {**old["params"], "resume": True}
    # Keep the curve up to the last complete epoch (what the bundle holds); the
    # resumed epochs continue it.
    last = max((r.get("step", 0) for r in old["history"]), default=0)
    job = jobs.submit("train", f"resume {params['model']} ({params['method']})", params,
                      history=old["history"], steps=[s for s in old["steps"] if s[0] <= last],
                      resumed_from=old["id"])
    return RedirectResponse(f"/jobs/{job['id']}", status_code=303)


@router.get("/jobs", response_class=HTMLResponse)
async def jobs_page(request: Request) -> HTMLResponse:
    """Every job, newest first."""
    entries = [(f"/jobs/{j['id']}", j["title"], j["status"])
               for j in request.app.state.jobs.all()]
    return _render(request, "list.html", step=3, heading="3 Training and other jobs",
                   entries=entries)
