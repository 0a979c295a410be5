"""GPU speed of microsight, measured side by side with CAREamics in one run (not a test).

One command turns a few minutes on one GPU into ``results/raw/gpu_<date>.json`` and a table::

    python benchmarks/gpu_suite.py --data .gl/data --out results     # ~5-8 min on a GPU
    python benchmarks/gpu_suite.py --dry-run --out /tmp/x           # seconds, on a CPU

Sections (each under a time budget; a failure records its error and the rest run):

- ``machine``: Python, torch, device, driver, clocks.
- ``ceilings``: a large bf16 matrix product (TFLOP/s) and a device-to-device copy
  (GB/s, bytes read plus written), the two rates every other number is read against.
- ``restoration_training``: CARE and N2V patches/s in steady state (after warm-up;
  batch 128 of 64x64, bf16 on CUDA) through microsight's own Lightning module, patch
  sampler and trainer settings, and through a bare loop of the same step (no
  Lightning) to show what the framework costs; on CUDA also the bare loop with a
  fused Adam and ``torch.compile``. Peak GPU memory and mean utilization (nvidia-smi).
- ``careamics``: the same for CAREamics 0.3.5 (``careamics_speed.py`` in a subprocess)
  and its tiled prediction of the same 4096x4096 image; "careamics not available"
  where it does not import.
- ``prediction``: ``api.predict`` on a 4096x4096 array (tile 512, overlap 64, the
  CUDA defaults; tiles per pass 8 and 32), and the tiling engine alone.
- ``roofline``: bare forward passes of the same U-Net over batches of 512x512 tiles
  (bf16 + channels_last; fp32 with TF32), FLOPs per pixel counted by torch, and a bare
  training step at batch 128.
- ``segmentation``: distmap and starconvex training patches/s and prediction seconds
  per image on DSB2018 test images (the models trained during the timing).
- ``localize``: training patches/s and frames/s of ``localize`` on a simulated 64x64
  movie.

Data: ``--data`` holds what ``gpu_prepare.py`` wrote (FMD frames, DSB images); without
it (and always with ``--dry-run``) synthetic images of the same kinds are made.
``gpu_run.sh`` is the one command for a bare GPU machine (wheels, then this).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_sections as S
from gpu_prepare import load_data

REPO = Path(__file__).resolve().parents[1]
GOALS = {"training_patches_per_s": 10_000, "training_vs_careamics": 5.0,
         "prediction_mpx_per_s": 120.0, "prediction_vs_careamics": 3.0}


def sizes(dry: bool) -> dict:
    """Problem sizes: the real run, or the tiny CPU dry run that exercises the same code."""
    if dry:
        return dict(batch=4, patch=32, warmup=2, steps=3, predict=256, tile=64, overlap=16,
                    tile_batches=(1, 4), roof_tile=64, roof_batch=2, roof_reps=2,
                    matmul=256, copy_mib=4, seg_test=2, seg_images=3, loc_frames=16,
                    loc_train_frames=16, careamics_timeout=120, compile=False)
    return dict(batch=128, patch=64, warmup=30, steps=300, predict=4096, tile=512, overlap=64,
                tile_batches=(8, 32), roof_tile=512, roof_batch=32, roof_reps=20,
                matmul=8192, copy_mib=2048, seg_test=20, seg_images=None, loc_frames=4000,
                loc_train_frames=1000, careamics_timeout=180, compile=True)


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "cpu_count": __import__("os").cpu_count(),
            "platform": platform.platform(), "device": "cpu"}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(device=props.name, capability=f"{props.major}.{props.minor}",
                    memory_gib=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count)
    if shutil.which("nvidia-smi"):
        q = "name,driver_version,clocks.sm,clocks.mem,clocks.max.sm,power.draw,temperature.gpu"
        res = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        info["nvidia_smi"] = res.stdout.strip() or res.stderr.strip()
    else:
        info["nvidia_smi"] = "not present"
    return info


class Runner:
    """Runs sections under a shared time budget; records rows, errors or skips."""

    def __init__(self, budget: float):
        self.deadline = time.perf_counter() + budget
        self.sections: dict[str, dict] = {}

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def run(self, name: str, fn, *, needs: float = 0.0) -> None:
        if self.left() < needs:
            self.sections[name] = {"skipped": f"time budget spent ({self.left():.0f} s left, "
                                              f"section needs ~{needs:.0f} s)"}
            print(f"[{name}] skipped: budget", flush=True)
            return
        t0 = time.perf_counter()
        print(f"[{name}] ...", flush=True)
        try:
            rows = fn()
            self.sections[name] = {"rows": rows, "seconds": round(time.perf_counter() - t0, 1)}
        except Exception as exc:  # one failure must not cost the other sections
            self.sections[name] = {"error": f"{type(exc).__name__}: {exc}",
                                   "traceback": traceback.format_exc(limit=8),
                                   "seconds": round(time.perf_counter() - t0, 1)}
            print(f"[{name}] error: {type(exc).__name__}: {exc}", flush=True)
        finally:
            S.free_memory()
        print(f"[{name}] done in {time.perf_counter() - t0:.1f} s", flush=True)


def comparisons(sections: dict) -> list[dict]:
    """microsight over CAREamics (same run, same GPU) and over the issue's goals."""
    def rows(name):
        return sections.get(name, {}).get("rows", [])

    out = []
    cm = {r["algorithm"]: r for r in rows("careamics") if "patches_per_s" in r}
    for r in rows("restoration_training"):
        if r.get("loop") != "lightning":
            continue
        c = cm.get(r["method"])
        out.append({"what": f"{r['method']} training patches/s", "microsight": r["value"],
                    "careamics": c and c["patches_per_s"],
                    "ratio": c and r["value"] / c["patches_per_s"],
                    "goal": f">= {GOALS['training_patches_per_s']} and >= "
                            f"{GOALS['training_vs_careamics']}x careamics"})
    pred = [r for r in rows("prediction") if r.get("path") == "api.predict"]
    if pred:
        best = max(pred, key=lambda r: r["value"])
        c = cm.get("care") or cm.get("n2v")
        out.append({"what": f"tiled prediction Mpx/s ({best['size']}^2)",
                    "microsight": best["value"],
                    "careamics": c and c["predict_mpx_per_s"],
                    "ratio": c and best["value"] / c["predict_mpx_per_s"],
                    "goal": f">= {GOALS['prediction_mpx_per_s']} and >= "
                            f"{GOALS['prediction_vs_careamics']}x careamics"})
    return out


def table(result: dict) -> str:
    lines = [f"{'section':22} {'row':52} {'value':>12}  unit"]
    for name, sec in result["sections"].items():
        if "rows" not in sec:
            lines.append(f"{name:22} {sec.get('error') or sec.get('skipped')}"[:120])
            continue
        for r in sec["rows"]:
            if "note" in r:
                lines.append(f"{name:22} {r['note']}"[:120])
                continue
            label = " ".join(f"{k}={r[k]}" for k in r.get("keys", []))
            lines.append(f"{name:22} {label[:52]:52} {r['value']:12.4g}  {r['unit']}")
    for c in result["comparisons"]:
        ratio = f"{c['ratio']:.2f}x" if c.get("ratio") else "n/a"
        lines.append(f"{'vs careamics':22} {c['what'][:52]:52} {ratio:>12}  goal {c['goal']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None,
                        help="folder written by gpu_prepare.py (default: synthetic data)")
    parser.add_argument("--out", type=Path, default=REPO / "results")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all sections")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on any device")
    parser.add_argument("--careamics-python", default=sys.executable,
                        help="Python in which careamics imports ('none' skips CAREamics)")
    parser.add_argument("--sections", nargs="*", default=None, help="run only these")
    args = parser.parse_args(argv)
    size = sizes(args.dry_run)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*(workers|LeafSpec|litlogger).*")
    if args.dry_run:
        # Tiny tensors gain nothing from threads, and on a busy machine two spinning
        # threads per process slow them down many times over.
        torch.set_num_threads(1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    work = Path(tempfile.mkdtemp(prefix="gpu_suite_"))
    t_start = time.perf_counter()
    data = load_data(None if args.dry_run and args.data is None else args.data, work, size)
    ctx = S.Context(size=size, device=device, data=data, work=work,
                    careamics_python=args.careamics_python)
    runner = Runner(args.budget)
    plan = [
        ("ceilings", lambda: S.ceilings(ctx), 10),
        ("restoration_training", lambda: S.restoration_training(ctx, runner.left), 30),
        ("careamics", lambda: S.careamics(ctx, runner.left), 60),
        ("prediction", lambda: S.prediction(ctx), 20),
        ("roofline", lambda: S.roofline(ctx), 10),
        ("segmentation", lambda: S.segmentation(ctx), 40),
        ("localize", lambda: S.localize(ctx), 30),
    ]
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    path = args.out / f"gpu_{'dryrun_' if args.dry_run else ''}{stamp}.json"
    args.out.mkdir(parents=True, exist_ok=True)

    def snapshot() -> dict:
        result = {
            "task": "GPU speed, measured side by side (microsight vs CAREamics 0.3.5)",
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["python benchmarks/gpu_suite.py"] + (argv or sys.argv[1:])),
            "dry_run": args.dry_run, "machine": info, "settings": size,
            "data": data.describe(), "sections": runner.sections,
            "seconds": round(time.perf_counter() - t_start, 1), "goals": GOALS,
            "comparisons": comparisons(runner.sections)}
        # Written after every section: a run cut short still leaves what it measured.
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(result, indent=1, default=str))
        tmp.replace(path)
        return result

    info = machine()
    for name, fn, needs in plan:
        if args.sections is None or name in args.sections:
            runner.run(name, fn, needs=0 if args.dry_run else needs)
            snapshot()
    result = snapshot()
    print(table(result), flush=True)
    print(f"wrote {path} ({result['seconds']:.0f} s)", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return path


if __name__ == "__main__":
    main()
