"""Throughput of folder prediction over 1 and 2 Dask workers, and the scheduler's cost
per task with many small workers; writes results/raw/scale.json.

    python benchmarks/scale_dask.py [--images 16] [--size 256] [--tasks 2000]

A CARE model with the default network (weights from a few training steps: speed
does not depend on them) predicts a folder of synthetic images on a local cluster
of 1, then 2 worker processes (one thread each). Cluster start, model loading
(once per worker) and prediction are timed apart; peak memory (max RSS) is read
from every worker. Then 16 workers without models run many no-op tasks, which
measures what the scheduler costs per task.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile


def _noop(i: int) -> int:
    return i


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _images(folder: Path, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        img = rng.normal(100, 20, (size, size)).astype(np.float32)
        tifffile.imwrite(folder / f"img{i:03d}.tif", img)


def _model(root: Path) -> Path:
    from microsight import api

    rng = np.random.default_rng(1)
    low, high = root / "low", root / "high"
    low.mkdir()
    high.mkdir()
    for i in range(2):
        clean = rng.uniform(0, 200, (96, 96)).astype(np.float32)
        tifffile.imwrite(high / f"t{i}.tif", clean)
        tifffile.imwrite(low / f"t{i}.tif", clean + rng.normal(0, 20, clean.shape))
    cfg = {"name": "bench", "method": {"method": "care"},
           "data": {"patch_size": [64, 64], "batch_size": 4},
           "training": {"epochs": 1, "steps_per_epoch": 2, "val_tile": 64}}
    api.train("care", low, high, out=root / "model", config=cfg, progress=False)
    return root / "model"


def folder_run(model: Path, images: Path, out: Path, workers: int) -> dict:
    """Time one folder prediction on a fresh local cluster of ``workers`` processes."""
    import distributed

    from microsight import api
    from microsight.engine.distributed import cached_model

    t0 = time.perf_counter()
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(
            cluster) as client:
        started = time.perf_counter()
        client.run(cached_model, str(model))  # every worker loads the model once
        loaded = time.perf_counter()
        result = api.predict_folder(model, images, out, scheduler=cluster.scheduler_address,
                                    check=False)
        done = time.perf_counter()
        rss = client.run(_max_rss_mb)
    n = result.count("written")
    assert n and not result.failed, result.failed
    return {"workers": workers, "images": n, "cluster_start_s": round(started - t0, 2),
            "model_load_s": round(loaded - started, 2), "predict_s": round(done - loaded, 2),
            "images_per_s": round(n / (done - loaded), 3),
            "seconds_per_image_per_worker": round(workers * (done - loaded) / n, 3),
            "peak_rss_mb_per_worker": sorted(round(v, 1) for v in rss.values())}


def scheduler_run(workers: int, tasks: int) -> dict:
    """Scheduler cost per task: ``tasks`` no-op tasks over ``workers`` processes."""
    import distributed

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(
            cluster) as client:
        client.gather(client.map(_noop, range(workers * 4), pure=False))  # warm
        t0, cpu0 = time.perf_counter(), _cpu_seconds()
        futures = client.map(_noop, range(tasks), pure=False)
        for _ in distributed.as_completed(futures):
            pass
        seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    # The scheduler runs in this process: its CPU time per task (with the client's)
    # is what bounds the task rate of a big cluster, whatever the wall time here.
    return {"workers": workers, "tasks": tasks, "seconds": round(seconds, 3),
            "ms_per_task": round(1000 * seconds / tasks, 3),
            "tasks_per_s": round(tasks / seconds, 1),
            "scheduler_cpu_ms_per_task": round(1000 * cpu / tasks, 3)}


def _cpu_seconds() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--out", default="results/raw/scale.json")
    parser.add_argument("--scheduler-only", action="store_true",
                        help="Only measure the scheduler; update --out in place.")
    args = parser.parse_args()
    out = Path(args.out)
    if args.scheduler_only:
        record = json.loads(out.read_text())
        record["scheduler"] = [scheduler_run(w, args.tasks) for w in (2, 16)]
        record["scheduler_command"] = "python " + " ".join(sys.argv)
        out.write_text(json.dumps(record, indent=2) + "\n")
        print(json.dumps(record["scheduler"], indent=2))
        return
    root = Path(tempfile.mkdtemp(prefix="scale-"))
    try:
        model = _model(root)
        _images(root / "in", args.images, args.size)
        rows = [folder_run(model, root / "in", root / f"out{w}", w) for w in (1, 2)]
        speedup = rows[0]["predict_s"] / rows[1]["predict_s"]
        sched = [scheduler_run(w, args.tasks) for w in (2, 16)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    record = {
        "task": "folder prediction over Dask workers (CARE, default network, "
                f"{args.images} images of {args.size}x{args.size}); scheduler cost per task",
        "machine": "2-core CPU",
        "command": "python " + " ".join(sys.argv),
        "python": platform.python_version(),
        "note": "2 cores cap the speed-up of 2 workers; other jobs shared the CPU",
        "rows": rows, "speedup_2_vs_1": round(speedup, 2), "scheduler": sched}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
