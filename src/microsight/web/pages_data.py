"""Step 1, data: upload images or take the sample, see what was read, preview any plane."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from microsight.errors import MicrosightError
from microsight.web import preview
from microsight.web.security import UnsafeName, safe_name
from microsight.web.store import Store

router = APIRouter()
SAMPLE_SETS = (("train_low", "sample: noisy nuclei (training input)"),
               ("train_high", "sample: clean nuclei (training target)"),
               ("test_low", "sample: noisy nuclei (test input)"),
               ("test_high", "sample: clean nuclei (test ground truth)"))


def _render(request: Request, template: str, **context: Any) -> HTMLResponse:
    from microsight.web.render import render

    return render(request, template, **context)


@functools.lru_cache(maxsize=6)
def _read(path: str, stamp: float, axes: str | None):
    from microsight import api

    return api.read_image(path, axes=axes)


def open_image(path: Path, axes: str | None = None):
    """The image at ``path`` (cached while unchanged), through the API's readers."""
    return _read(str(path), path.stat().st_mtime, axes)


def describe(path: Path, axes: str | None) -> dict[str, Any]:
    """What the app read from an image, or the problem (e.g. unknown axes)."""
    try:
        image = open_image(path, axes)
    except MicrosightError as exc:
        return {"name": path.name, "error": str(exc), "needs_axes": "axes" in str(exc)}
    shape = tuple(int(s) for s in image.data.shape)
    shown = preview.display_axes(image.axes, shape, image.data.dtype)
    return {"name": path.name, "axes": image.axes, "shape": shape,
            "dtype": str(image.data.dtype), "pixel_sizes": image.pixel_sizes,
            "range": preview.intensity_range(image.data, shown),
            "planes": preview.plane_count(shown, shape)}


@router.get("/data", response_class=HTMLResponse)
def data_page(request: Request, message: str = "") -> HTMLResponse:
    """Upload form, sample data and the data sets so far."""
    store: Store = request.app.state.store
    return _render(request, "data.html", step=1, datasets=store.datasets(), message=message,
                   limit=request.app.state.settings.max_upload_mb)


@router.post("/data/upload")
def upload(request: Request, files: list[UploadFile], name: str = Form("")) -> Response:
    """Store uploaded images (TIFF, PNG, zipped OME-Zarr) as one new data set."""
    store: Store = request.app.state.store
    files = [f for f in files if f.filename]
    if not files:
        return RedirectResponse("/data?message=choose+one+or+more+files+first",
                                status_code=303)
    # A name with a folder in it (../x.tif, /etc/x) is refused, not trimmed.
    names = [safe_name(f.filename or "") for f in files]
    record = store.new_dataset(name or names[0])
    try:
        for upload_file, filename in zip(files, names, strict=True):
            store.add_upload(record["id"], filename, _chunks(upload_file))
    except UnsafeName:
        store.remove_dataset(record["id"])  # just made here: no half data set stays
        raise
    return RedirectResponse(f"/data/{record['id']}", status_code=303)


def _chunks(upload_file: UploadFile):
    while block := upload_file.file.read(2**20):
        yield block


@router.post("/data/sample")
def sample(request: Request) -> Response:
    """Make the bundled nuclei sample into training and test data sets (as the demo does)."""
    from microsight.demo import make_demo_data

    store: Store = request.app.state.store
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_demo_data(Path(tmp))
        for key, title in SAMPLE_SETS:
            record = store.new_dataset(title, note="bundled sample (DSB2018 nuclei, CC0) "
                                       "with simulated low-light noise")
            store.add_upload(record["id"], "nuclei.tif", [paths[key].read_bytes()])
    return RedirectResponse("/data?message=sample+data+added", status_code=303)


@router.get("/data/{ident}", response_class=HTMLResponse)
def dataset_page(ident: str, request: Request) -> HTMLResponse:
    """What each image of a data set holds, with a preview."""
    store: Store = request.app.state.store
    record = store.dataset(ident)
    infos = [describe(store.image_path(ident, n), record.get("axes"))
             for n in store.images(ident)]
    return _render(request, "dataset.html", step=1, dataset=record, infos=infos)


@router.post("/data/{ident}/axes")
async def set_axes(ident: str, request: Request, axes: str = Form(...)) -> Response:
    """Store the axes the user says the images have (e.g. ZYX or TYX)."""
    store: Store = request.app.state.store
    record = store.dataset(ident)
    axes = axes.strip().upper()
    if axes and (set(axes) - set("STCZYX") or len(set(axes)) != len(axes)
                 or not {"Y", "X"} <= set(axes)):
        raise UnsafeName(f"axes {axes!r}: use each of S, T, C, Z, Y, X at most once, "
                         "with Y and X")
    record["axes"] = axes or None
    store.save_dataset(record)
    return RedirectResponse(f"/data/{ident}", status_code=303)


def _image_file(request: Request, area: str, ident: str, name: str) -> tuple[Path, str | None]:
    store: Store = request.app.state.store
    if area == "data":
        return store.image_path(ident, name), store.dataset(ident).get("axes")
    if area == "result":
        path = store.path("results", ident, name)
        if not path.exists():
            raise KeyError(name)
        return path, None
    raise KeyError(area)


@router.get("/png/{area}/{ident}/{name}")
def png(area: str, ident: str, name: str, request: Request, plane: int = 0,
              low: float = 0.5, high: float = 99.8) -> Response:
    """PNG preview of one plane with percentile contrast."""
    path, axes = _image_file(request, area, ident, name)
    image = open_image(path, axes)
    low, high = sorted((min(max(low, 0.0), 100.0), min(max(high, 0.0), 100.0)))
    shown = preview.display_axes(image.axes, image.data.shape, image.data.dtype)
    body = preview.preview_png(image.data, shown, plane, low, high)
    return Response(body, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/view/{area}/{ident}/{name}", response_class=HTMLResponse)
def viewer(area: str, ident: str, name: str, request: Request, plane: int = 0,
                 low: float = 0.5, high: float = 99.8, title: str = "") -> HTMLResponse:
    """The viewer fragment: preview, plane slider and contrast inputs (htmx swaps it)."""
    path, axes = _image_file(request, area, ident, name)
    try:
        image = open_image(path, axes)
    except MicrosightError as exc:
        return HTMLResponse(f'<p class="bad">{exc}</p>')
    shape = tuple(int(s) for s in image.data.shape)
    shown = preview.display_axes(image.axes, shape, image.data.dtype)
    count = preview.plane_count(shown, shape)
    plane = min(max(plane, 0), count - 1)
    return _render(request, "_viewer.html", area=area, ident=ident, name=name, plane=plane,
                   planes=count, low=low, high=high, title=title or name,
                   label=preview.plane_label(shown, shape, plane), axes=image.axes,
                   shape=shape)
