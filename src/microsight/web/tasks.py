"""What the background jobs do: train, evaluate and predict through :mod:`microsight.api`.

Each runner takes the job record, a cancel event and a progress callback, and
returns the result to store in the record. Paths come from the data folder
only; the API is imported here, on first use, because it starts PyTorch.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from microsight.engine.progress import ProgressEvent
from microsight.web.store import Store


def _api():
    from microsight import api

    return api


def run_train(store: Store, job: dict[str, Any], cancel: threading.Event,
              report: Callable[[ProgressEvent], None]) -> dict[str, Any]:
    """Train (or resume, or fine-tune) a model into ``models/<name>``."""
    api = _api()
    p = job["params"]
    out = store.path("models", p["model"])
    target = store.files_dir(p["target"]) if p.get("target") else None
    init = store.path("models", p["init_from"]) if p.get("init_from") else None
    api.train(p["method"], store.files_dir(p["input"]), target, out=out, config=p["config"],
              axes=p.get("axes"), resume=bool(p.get("resume")), init_from=init,
              progress=False, callback=report, cancel=cancel)
    qc = api.info(out)["qc"]
    return {"model": p["model"], "overfitting": qc.get("overfitting"),
            "best_epoch": qc.get("best_epoch"), "best_val_loss": qc.get("best_val_loss"),
            "best_val_psnr": qc.get("best_val_psnr"), "stopped_early": qc.get("stopped_early")}


def run_evaluate(store: Store, job: dict[str, Any], cancel: threading.Event,
                 report: Callable[[ProgressEvent], None]) -> dict[str, Any]:
    """Score a model on held-out pairs against classical baselines; write the report."""
    api = _api()
    p = job["params"]
    folder = store.path("results", job["id"])
    folder.mkdir(parents=True, exist_ok=True)
    result = api.evaluate(store.path("models", p["model"]), store.files_dir(p["input"]),
                          store.files_dir(p["target"]), axes=p.get("axes"),
                          report=folder / "report.html")
    rows = [{k: v for k, v in row.items() if _number(v) is not None or k == "source"}
            for row in result.summary]
    v = result.verdict
    verdict = ({"level": v.level, "text": f"{v.kind}: {v.text}", "kind": v.kind}
               if v is not None else {"level": "info", "text": "no verdict"})
    return {"summary": rows, "verdict": verdict,
            "report": f"results/{job['id']}/report.html"}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def output_name(image: str, outputs: tuple[str, ...]) -> str:
    """File name of a prediction: an image (TIFF / OME-Zarr) or a table (CSV)."""
    stem = image[:-len(".ome.zarr")] if image.endswith(".ome.zarr") else Path(image).stem
    stem = stem.removesuffix(".ome")
    if outputs and outputs[0] not in ("image", "labels"):
        return f"{stem}.result.csv"
    return f"{stem}.result.ome.zarr" if image.endswith(".zarr") else f"{stem}.result.tif"


def run_predict(store: Store, job: dict[str, Any], cancel: threading.Event,
                report: Callable[[ProgressEvent], None]) -> dict[str, Any]:
    """Apply a model to the chosen images of a data set, with their OOD records."""
    api = _api()
    p = job["params"]
    model = api.load_model(store.path("models", p["model"]))
    spec = api.get_method(model.method)
    folder = store.path("results", job["id"])
    folder.mkdir(parents=True, exist_ok=True)
    images = p["images"]
    items = []
    for i, name in enumerate(images):
        def tiles(event: ProgressEvent, i: int = i) -> None:
            if event.kind != "tiles":
                return
            report(ProgressEvent("tiles", event.done, event.total, epoch=i + 1,
                                 metrics={"images": len(images)}))

        out = folder / output_name(name, spec.outputs)
        wants = bool(p.get("uncertainty")) and spec.uncertainty_maps
        mode = None
        if wants:
            mode = "model" if getattr(model.config.method, "probabilistic", False) else "tta"
        api.predict(model, store.image_path(p["dataset"], name), out=out, axes=p.get("axes"),
                    uncertainty=mode, callback=tiles, cancel=cancel)
        sidecar = out.with_name(out.name + ".qc.json")
        qc = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
        umap = next((q.name for q in folder.glob(f"{out.name.split('.result')[0]}*uncert*")
                     if not q.name.endswith(".json")), None)
        items.append({"input": name, "output": out.name, "ood": qc.get("out_of_distribution"),
                      "uncertainty": umap, "image_output": out.suffix != ".csv"})
    return {"items": items, "model": p["model"], "dataset": p["dataset"]}
