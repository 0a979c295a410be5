"""Background jobs (train, evaluate, predict): one at a time, queued, kept on disk.

A single worker thread runs the jobs in the order they were asked for, so two
trainings never fight over the machine. Every job is a JSON record under
``jobs/`` in the data folder, rewritten as it progresses: a reloaded page reads
it back, and after a server restart a job that was running is marked
``interrupted`` (a training can then resume from its bundle).
"""

from __future__ import annotations

import queue
import secrets
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from microsight.engine.progress import ProgressEvent
from microsight.errors import Cancelled, MicrosightError
from microsight.web.store import Store, read_json, write_json

Runner = Callable[[dict[str, Any], threading.Event, Callable[[ProgressEvent], None]],
                  dict[str, Any]]
ACTIVE = ("queued", "running")
MAX_STEP_POINTS = 400
SAVE_EVERY_S = 2.0


class Jobs:
    """The job queue of one app.

    Parameters
    ----------
    store : Store
        The data folder (records go to ``jobs/<id>.json``).
    runners : dict
        Job kind -> function ``(job, cancel, report) -> result dict``.
    """

    def __init__(self, store: Store, runners: dict[str, Runner]) -> None:
        self.store, self.runners = store, runners
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._cancel: dict[str, threading.Event] = {}
        self._saved: dict[str, float] = {}
        self._jobs: dict[str, dict[str, Any]] = {}
        self._thread: threading.Thread | None = None
        for path in sorted((store.root / "jobs").glob("*.json")):
            job = read_json(path)
            if job["status"] == "running":
                # The server stopped while it ran (closed, crashed, machine off).
                job["status"] = "interrupted"
                job["message"] = "the server stopped during this job"
                write_json(path, job)
            self._jobs[job["id"]] = job
        for job in sorted(self._jobs.values(), key=lambda j: j["created"]):
            if job["status"] == "queued":
                self._queue.put(job["id"])

    def start(self) -> None:
        """Start the worker thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="microsight-jobs",
                                            daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the running job and the worker (the job stays resumable)."""
        for event in self._cancel.values():
            event.set()
        self._queue.put(None)

    def submit(self, kind: str, title: str, params: dict[str, Any], **extra: Any
               ) -> dict[str, Any]:
        """Queue a job and return its record (``extra``: more fields, e.g. a history)."""
        job = {"id": f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}",
               "kind": kind, "title": title, "params": params, "status": "queued",
               "created": time.time(), "started": None, "finished": None,
               "progress": {"done": 0, "total": 0, "epoch": 0}, "history": [],
               "steps": [], "message": "", "result": {}, **extra}
        with self._lock:
            self._jobs[job["id"]] = job
            self._save(job)
        self._queue.put(job["id"])
        return dict(job)

    def get(self, ident: str) -> dict[str, Any]:
        """A copy of job ``ident`` (KeyError when unknown)."""
        with self._lock:
            job = self._jobs[ident]
            return {**job, "history": list(job["history"]), "steps": list(job["steps"])}

    def all(self) -> list[dict[str, Any]]:
        """Every job, newest first."""
        with self._lock:
            return sorted((dict(j) for j in self._jobs.values()), key=lambda j: -j["created"])

    def position(self, ident: str) -> int:
        """How many jobs run or wait before ``ident`` (0: it runs now or is finished)."""
        with self._lock:
            job = self._jobs[ident]
            if job["status"] != "queued":
                return 0
            return sum(1 for j in self._jobs.values()
                       if j["status"] in ACTIVE and j["created"] < job["created"])

    def stop(self, ident: str) -> None:
        """Stop a running job after its current step, or take a queued one off the queue."""
        with self._lock:
            job = self._jobs[ident]
            if job["status"] == "queued":
                job.update(status="stopped", message="taken off the queue",
                           finished=time.time())
                self._save(job)
            elif job["status"] == "running" and ident in self._cancel:
                self._cancel[ident].set()
                job["message"] = "stopping after the current step..."

    # --- the worker -------------------------------------------------------------
    def _work(self) -> None:
        while (ident := self._queue.get()) is not None:
            with self._lock:
                job = self._jobs.get(ident)
                if job is None or job["status"] != "queued":
                    continue
                job.update(status="running", started=time.time(), message="")
                cancel = self._cancel[ident] = threading.Event()
                self._save(job)
            self._run(job, cancel)

    def _run(self, job: dict[str, Any], cancel: threading.Event) -> None:
        status, message, result = "done", "", {}
        try:
            result = self.runners[job["kind"]](job, cancel, lambda e: self._report(job, e))
        except Cancelled:
            status, message = "stopped", "stopped by you"
        except MicrosightError as exc:
            status, message = "failed", str(exc)
        except Exception as exc:  # a bug: keep the server alive and show it
            status, message = "failed", f"internal error: {exc!r}"
            traceback.print_exc()
        with self._lock:
            job.update(status=status, message=message, result=result or {},
                       finished=time.time())
            self._cancel.pop(job["id"], None)
            self._save(job)

    def _report(self, job: dict[str, Any], event: ProgressEvent) -> None:
        with self._lock:
            job["progress"] = {"done": event.done, "total": event.total,
                               "epoch": event.epoch, "kind": event.kind}
            if event.kind == "epoch":
                job["history"].append(_plain(event.metrics))
            elif event.kind == "step" and "train_loss" in event.metrics:
                job["steps"].append([event.done, float(event.metrics["train_loss"])])
                if len(job["steps"]) > MAX_STEP_POINTS:
                    job["steps"] = job["steps"][::2]  # keep the curve's shape, bounded
            if event.kind == "epoch" or time.time() - self._saved.get(job["id"], 0) > SAVE_EVERY_S:
                self._save(job)

    def update(self, ident: str, **values: Any) -> None:
        """Change fields of a job record (e.g. a runner's note) and save it."""
        with self._lock:
            self._jobs[ident].update(values)
            self._save(self._jobs[ident])

    def _save(self, job: dict[str, Any]) -> None:
        write_json(self.store.path("jobs", f"{job['id']}.json"), job)
        self._saved[job["id"]] = time.time()


def _plain(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in metrics.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            out[key] = str(value)
    return out
