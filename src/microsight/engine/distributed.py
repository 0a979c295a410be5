"""Prediction over many workers of a Dask cluster: folders of images, one image per task.

The engine does not schedule anything itself: images are handed to a Dask
``distributed`` cluster (a ``LocalCluster`` on this machine, or an existing
scheduler such as one started by dask-jobqueue on SLURM) with
``client.submit``, failed tasks are retried by Dask, and a worker that dies
has its tasks moved to the others by the scheduler.

Each worker process loads a model bundle once (:func:`cached_model`) and
keeps it for every later image. Each image is written into a hidden staging
folder next to the outputs and its files are moved into place when it is
finished, the main output last: a main output that exists is therefore a
finished image, which is what ``resume`` relies on.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from microsight.engine.bundle import Model, load_model
from microsight.engine.progress import Callback, ProgressEvent
from microsight.errors import MicrosightError
from microsight.io.image import image_format

#: Models loaded in this process, by resolved bundle path (one load per worker).
_MODELS: dict[str, Model] = {}

# ``predict(model, image_path, out_path, **options)``: one image, as ``api.predict`` does.
PredictFn = Callable[..., Any]


def require_dask() -> Any:
    """The ``distributed`` package, or one clear error saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise MicrosightError('prediction on several workers needs Dask; pip install '
                              '"microsight[dask]"') from None
    return distributed


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A Dask client: on a new local cluster of ``workers`` processes, or on ``scheduler``.

    The local cluster listens on 127.0.0.1 only, runs one thread per worker
    (torch uses the core) and shows no dashboard.
    """
    distributed = require_dask()
    if scheduler is not None and workers is not None:
        raise MicrosightError("give --workers (a local cluster) or --scheduler (an existing "
                              "one), not both")
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except OSError as exc:
            raise MicrosightError(f"cannot reach the Dask scheduler at {scheduler} ({exc}); "
                                  "check the address and that the scheduler runs") from None
        with client:
            yield client
        return
    if workers is None or workers < 1:
        raise MicrosightError(f"--workers must be at least 1, got {workers}")
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(
            cluster) as client:
        yield client


def cached_model(path: str | Path) -> Model:
    """Load a bundle once per process and reuse it (the model of every task of a worker)."""
    key = str(Path(path).resolve())
    model = _MODELS.get(key)
    if model is None:
        import torch

        # One thread per worker process: workers share the cores, not each thread.
        if os.environ.get("OMP_NUM_THREADS") == "1":
            torch.set_num_threads(1)
        model = _MODELS[key] = load_model(path)
    return model


def bundle_path(model: Model | str | Path) -> Path:
    """The bundle a worker loads for ``model``; a model made in memory has none."""
    if isinstance(model, Model):
        if model.path is None:
            raise MicrosightError("a model held only in memory cannot be sent to workers; "
                                  "load it from its bundle folder or .zip")
        return Path(model.path)
    return Path(model)


@dataclass
class ImageResult:
    """What became of one input image."""

    input: Path
    status: str  # written, skipped, failed
    outputs: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    worker: str = ""
    note: str = ""


@dataclass
class FolderResult:
    """Summary of a folder prediction: one row per input file."""

    rows: list[ImageResult]
    out_folder: Path

    def count(self, status: str) -> int:
        """Number of inputs with ``status`` (written, skipped, failed, not an image)."""
        return sum(r.status == status for r in self.rows)

    @property
    def failed(self) -> list[ImageResult]:
        """The images that could not be predicted."""
        return [r for r in self.rows if r.status == "failed"]


def folder_plan(in_folder: str | Path, out_folder: str | Path, resume: bool
                ) -> tuple[list[Path], list[ImageResult]]:
    """Images to predict, and rows for the entries skipped (not images, finished).

    Raises :class:`MicrosightError` when an output exists and ``resume`` is off:
    outputs are never overwritten.
    """
    src, dst = Path(in_folder), Path(out_folder)
    if not src.is_dir():
        raise MicrosightError(f"{src}: folder not found; give a folder of images")
    if dst.resolve() == src.resolve():
        raise MicrosightError(f"--out {dst} is the input folder; outputs are named after "
                              "their inputs, so give another folder")
    todo, rows, existing = [], [], []
    for p in sorted(src.iterdir()):
        if p.name.startswith("."):
            continue
        if image_format(p) is None:
            rows.append(ImageResult(p, "not an image", note="skipped: not an image"))
        elif (dst / p.name).exists():
            existing.append(p.name)
            rows.append(ImageResult(p, "skipped", [dst / p.name], note="finished before"))
        else:
            todo.append(p)
    if existing and not resume:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise MicrosightError(f"{dst / existing[0]}{more} already exist; pass --resume to "
                              "skip finished images, or choose another --out")
    if not todo and not existing:
        raise MicrosightError(f"{src}: no images (.tif, .ome.zarr, .png...) in the folder")
    return todo, rows


def predict_one(predict: PredictFn, model: Model | str, source: str, out_folder: str,
                options: dict[str, Any], resume: bool) -> dict[str, Any]:
    """Predict one image into ``out_folder`` (runs on a worker); returns its row's facts.

    The image's files are written into a hidden staging folder and moved into
    place once all exist, the main output last.
    """
    start = time.perf_counter()
    name = Path(source).name
    dst = Path(out_folder)
    stage = dst / f".{name}.part-{secrets.token_hex(4)}"
    stage.mkdir(parents=True)
    loaded = cached_model(model) if not isinstance(model, Model) else model
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            predict(loaded, source, stage / name, **options)
        outputs = _move_outputs(stage, dst, name, resume)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    notes = sorted({str(w.message) for w in caught if "Warning" in w.category.__name__
                    and w.category.__module__.startswith("microsight")})
    return {"outputs": [str(p) for p in outputs], "seconds": time.perf_counter() - start,
            "worker": f"{os.uname().nodename}:{os.getpid()}", "note": "; ".join(notes)}


def _move_outputs(stage: Path, dst: Path, main: str, resume: bool) -> list[Path]:
    """Move the staged files to ``dst``, the main output last; never replace a finished one."""
    names = sorted(p.name for p in stage.iterdir() if p.name != main) + [main]
    for n in names:
        # A side file without its main output is left from an interrupted image:
        # with resume it is finished now; without, it is refused like any output.
        if (dst / n).exists() and not (resume and n != main):
            raise MicrosightError(f"{dst / n} already exists; pass --resume or choose "
                                  "another --out")
    moved = []
    for n in names:
        target = dst / n
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(stage / n, target)
        moved.append(target)
    return [moved[-1], *moved[:-1]]


def _bar(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total} images"), TimeRemainingColumn(),
                    disable=not enabled, transient=False)


def predict_folder(predict: PredictFn, model: Model | str | Path, in_folder: str | Path,
                   out_folder: str | Path, *, workers: int | None = None,
                   scheduler: str | None = None, resume: bool = False, retries: int = 2,
                   options: dict[str, Any] | None = None, progress: bool = False,
                   callback: Callback | None = None) -> FolderResult:
    """Predict every image of a folder, in this process or over a Dask cluster.

    Parameters
    ----------
    predict : callable
        ``predict(model, image_path, out_path, **options)`` for one image.
    model : Model, str or Path
        The model (its bundle path is sent to workers, which load it once each).
    in_folder, out_folder : str or Path
        Inputs; outputs named after them (same format), with their side files.
    workers : int, optional
        Start a local cluster of this many worker processes.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:port``).
    resume : bool
        Skip images whose output exists (else they are refused).
    retries : int
        Times a failed image is tried again on the cluster.
    options : dict, optional
        Keyword arguments of ``predict``.
    progress : bool
        Show one progress bar over the images.
    callback : callable, optional
        Called with ``ProgressEvent("images", done, total)`` as images finish.

    Returns
    -------
    FolderResult
    """
    todo, rows = folder_plan(in_folder, out_folder, resume)
    out = Path(out_folder)
    out.mkdir(parents=True, exist_ok=True)
    options = dict(options or {})
    with _bar(progress) as bar:
        task = bar.add_task(f"predicting {Path(in_folder).name}/", total=len(todo))

        def finished(path: Path, facts: dict[str, Any] | None, error: str = "") -> None:
            if facts is None:
                rows.append(ImageResult(path, "failed", note=error))
            else:
                rows.append(ImageResult(path, "written", [Path(p) for p in facts["outputs"]],
                                        facts["seconds"], facts["worker"], facts["note"]))
            bar.advance(task, 1)
            if callback is not None:
                callback(ProgressEvent("images", int(bar.tasks[0].completed), len(todo)))

        if workers is None and scheduler is None:
            loaded = model if isinstance(model, Model) else load_model(model)
            for path in todo:
                try:
                    facts = predict_one(predict, loaded, str(path), str(out), options, resume)
                except (MicrosightError, OSError, ValueError, RuntimeError) as exc:
                    finished(path, None, str(exc))
                else:
                    finished(path, facts)
        elif todo:
            _run_on_cluster(predict, str(bundle_path(model)), todo, out, options, resume,
                            retries, workers, scheduler, finished)
    order = {p: i for i, p in enumerate(sorted(Path(in_folder).iterdir()))}
    rows.sort(key=lambda r: order.get(r.input, 0))
    return FolderResult(rows, out)


def _run_on_cluster(predict: PredictFn, bundle: str, todo: list[Path], out: Path,
                    options: dict[str, Any], resume: bool, retries: int, workers: int | None,
                    scheduler: str | None, finished: Callable) -> None:
    distributed = require_dask()
    with dask_client(workers, scheduler) as client:
        tag = secrets.token_hex(4)
        futures = {client.submit(predict_one, predict, bundle, str(p), str(out), options,
                                 resume, retries=retries, pure=False,
                                 key=f"predict-{p.name}-{tag}"): p for p in todo}
        for future in distributed.as_completed(futures):
            path = futures[future]
            if future.status == "finished":
                finished(path, future.result())
            else:
                exc = future.exception()
                finished(path, None, f"{type(exc).__name__}: {exc}")
