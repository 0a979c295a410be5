"""Where the time of a CARE training step and of a tiled prediction goes, on this CPU.

    python benchmarks/profile_cpu.py [--steps 30] [--out results/raw/cpu_profile.json]

Training (CARE defaults: U-Net depth 2 / 32 channels, batch 16 of 64x64 from the FMD-like
synthetic images of ``gpu_prepare.load_data``; fp32 and channels_last as ``precision:
auto`` gives on a CPU without native bf16):

- steady-state seconds per step under Lightning (microsight's module, sampler and trainer
  settings) and in a bare loop of the same step, alternated twice, whose difference is
  what Lightning adds;
- the bare step split with CPU-time timers (a CPU runs every op synchronously):
  patch sampling (``engine/sampling.py``), forward + loss, backward, optimizer step;
- ``torch.profiler`` over the Lightning steps: the share of wall time spent inside aten
  operators (the arithmetic) against everything else (Python, dispatch, Lightning).

With ``--compare-src OLD/src`` (e.g. ``git archive HEAD~1 src | tar -x -C /tmp/old``) it
also times both trees' prediction and Lightning step alternately, twice each, in fresh
processes: the before/after of an engine change.

Prediction (``api.predict`` of a 1024x1024 array, CPU defaults: tile 256, one tile per
pass): cProfile's cumulative seconds of the network forward, the tiling engine's own
work (padding, blending, band bookkeeping) and ``api.predict``'s normalization and checks.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_sections as S
from gpu_prepare import load_data

from microsight import api
from microsight.engine.bundle import Model


def bare_phases(ctx: S.Context, steps: int) -> dict:
    """CPU seconds per phase of the bare CARE step (mean over ``steps`` after warm-up)."""
    noisy, clean = S._fmd_folders(ctx)
    _, _, _, module = S.build(ctx, "care", S.RESTORATION["care"], noisy, clean)
    module.sampler.to(ctx.device)
    net = module.network.to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    phases = {"sampling": 0.0, "forward_loss": 0.0, "backward": 0.0, "optimizer": 0.0}
    for i in range(steps + 3):
        t0 = CLOCK()
        x, y = module.prepare_batch(*module.sampler.sample())
        t1 = CLOCK()
        loss = module.loss(net(x), y)
        t2 = CLOCK()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = CLOCK()
        opt.step()
        t4 = CLOCK()
        if i >= 3:
            for k, a, b in (("sampling", t0, t1), ("forward_loss", t1, t2),
                            ("backward", t2, t3), ("optimizer", t3, t4)):
                phases[k] += (b - a) / steps
    total = sum(phases.values())
    return {"cpu_seconds_per_step": total, "patches_per_cpu_s": ctx.size["batch"] / total,
            "cpu_seconds": phases,
            "share": {k: v / total for k, v in phases.items()}}


def lightning_step(ctx: S.Context) -> float:
    """CPU seconds per steady-state step under Lightning."""
    noisy, clean = S._fmd_folders(ctx)
    _, _, _, module = S.build(ctx, "care", S.RESTORATION["care"], noisy, clean)
    return ctx.size["batch"] / S.fit(ctx, module, clock=CLOCK)["patches_per_s"]


def lightning_profile(ctx: S.Context, steps: int) -> dict:
    """The aten share of a Lightning fit's wall time, from torch.profiler."""
    noisy, clean = S._fmd_folders(ctx)
    _, _, _, module = S.build(ctx, "care", S.RESTORATION["care"], noisy, clean)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        S.fit(ctx, module)
        wall = time.perf_counter() - t0
    events = prof.key_averages()
    aten = sum(e.self_cpu_time_total for e in events if e.key.startswith("aten::")) / 1e6
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:12]
    # Reading a tensor's value on the host (.item(), float(), bool()) runs this op; on a
    # GPU each one waits for every queued kernel, so per step they serialize host and GPU.
    reads = sum(e.count for e in events if e.key == "aten::_local_scalar_dense")
    fitted = ctx.size["warmup"] + ctx.size["steps"]
    return {
        "profiled_fit_wall_seconds": wall,
        "aten_self_seconds": aten,
        "aten_share_of_profiled_wall": aten / wall,
        "host_reads_of_tensor_values": reads, "steps_in_profiled_fit": fitted,
        "host_reads_per_step": reads / fitted,
        "host_reads_note": "on a CPU, Adam's single-tensor path reads each parameter's step "
                           "count (host tensors, also on a GPU: no device wait); the one "
                           "read of a device value per step was the epoch-loss float(loss), "
                           "now summed on the device (MicrosightModule.add_train_loss)",
        "note": "the profiled fit includes Trainer set-up and warm-up steps; its non-aten "
                "share is Python, dispatch and Lightning (an upper bound for the steps alone)",
        "top_ops_self_seconds": {e.key: round(e.self_cpu_time_total / 1e6, 4) for e in top},
    }


def predict_profile(ctx: S.Context, size: int) -> dict:
    noisy, clean = S._fmd_folders(ctx)
    cfg, _, norm, module = S.build(ctx, "care", S.RESTORATION["care"], noisy, clean)
    model = Model(cfg, module.eval(), norm, {})
    reps = -(-size // ctx.data.noisy.shape[-1])
    image = np.tile(ctx.data.noisy[0], (reps, reps))[:size, :size].copy()
    api.predict(model, image[:512, :512].copy(), check=False)  # warm-up
    t0 = CLOCK()
    api.predict(model, image, check=False)
    plain = CLOCK() - t0
    prof = cProfile.Profile(CLOCK)
    t0 = CLOCK()
    prof.enable()
    api.predict(model, image, check=False)
    prof.disable()
    wall = CLOCK() - t0
    stats = pstats.Stats(prof)
    cum = {}
    for (file, _, func), (_, _, _, ct, _) in stats.stats.items():
        cum[f"{Path(file).name}:{func}"] = max(cum.get(f"{Path(file).name}:{func}", 0.0), ct)

    def c(name):
        return round(cum.get(name, 0.0), 4)

    forward = c("module.py:predict_batch")
    run = c("predict.py:run")
    return {
        "size": size, "cpu_seconds": plain, "mpx_per_cpu_s": size * size / 1e6 / plain,
        "profiled_cpu_seconds": wall,
        "seconds": {"network forward (predict_batch)": forward,
                    "tiling engine besides the forward (pad, stack, blend, bands)":
                        round(run - forward, 4),
                    "api.predict besides the tiling (normalization, checks, copies)":
                        round(wall - run, 4)},
        "cumulative_seconds": {k: c(k) for k in (
            "predict.py:_forward", "predict.py:_pad", "inference.py:read_raw",
            "normalization.py:apply", "normalization.py:invert")},
        "note": "cProfile adds its own overhead to Python calls (small next to convolutions)",
    }


def probe(ctx: S.Context, size: int) -> dict:
    """CPU seconds of one prediction and of one Lightning step (for ``--compare-src``)."""
    noisy, clean = S._fmd_folders(ctx)
    cfg, _, norm, module = S.build(ctx, "care", S.RESTORATION["care"], noisy, clean)
    model = Model(cfg, module.eval(), norm, {})
    reps = -(-size // ctx.data.noisy.shape[-1])
    image = np.tile(ctx.data.noisy[0], (reps, reps))[:size, :size].copy()
    api.predict(model, image[:512, :512].copy(), check=False)  # warm-up
    t0 = CLOCK()
    api.predict(model, image, check=False)
    return {"predict_cpu_seconds": CLOCK() - t0, "lightning_step_cpu_seconds":
            lightning_step(ctx)}


def compare(old_src: Path, argv: list[str]) -> list[dict]:
    """Alternate fresh processes on the old tree and this one, twice."""
    here = Path(__file__).resolve()
    rows = []
    for _ in range(2):
        for label, src in (("before", old_src), ("after", here.parents[1] / "src")):
            res = subprocess.run([sys.executable, str(here), "--probe", *argv],
                                 capture_output=True, text=True, check=True,
                                 env={**os.environ, "PYTHONPATH": str(src)})
            rows.append({"tree": label, "src": str(src),
                         **json.loads(res.stdout.strip().splitlines()[-1])})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--predict-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: CPU seconds stay meaningful on a busy machine)")
    parser.add_argument("--out", type=Path, default=Path("results/raw/cpu_profile.json"))
    parser.add_argument("--compare-src", type=Path, default=None,
                        help="another tree's src folder to time against this one")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="profile_cpu_"))
    size = {**S_SIZES, "steps": args.steps}
    ctx = S.Context(size=size, device=torch.device("cpu"), data=load_data(None, work, size),
                    work=work, careamics_python="none")
    if args.probe:
        print(json.dumps(probe(ctx, args.predict_size)))
        return
    load0 = os.getloadavg()
    result = {
        "task": "CPU profile of a CARE training step and a tiled prediction",
        "command": "python benchmarks/profile_cpu.py " + " ".join(sys.argv[1:]),
        "machine": {"cpu": "2-core CPU", "cpu_count": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "python": platform.python_version()},
        "settings": {"threads": args.threads, "method": "care", "network": S.RESTORATION["care"],
                     "batch": size["batch"], "patch": size["patch"], "precision": "32-true",
                     "steps": args.steps,
                     "data": "synthetic FMD-like frames (3 x 128 x 128)"},
    }
    # Alternate the two loops: on a shared machine one run of each is not a comparison.
    rounds = []
    for _ in range(2):
        bare = bare_phases(ctx, args.steps)
        rounds.append({"bare": bare["cpu_seconds_per_step"], "lightning": lightning_step(ctx)})
    result["training_rounds_cpu_seconds_per_step"] = rounds
    result["training_bare"] = bare
    result["training_lightning"] = lightning_profile(ctx, args.steps)
    result["prediction"] = predict_profile(ctx, args.predict_size)
    if args.compare_src is not None:
        result["before_after"] = compare(args.compare_src, [
            "--steps", str(args.steps), "--predict-size", str(args.predict_size),
            "--threads", str(args.threads)])
    result["clock"] = ("time.process_time: CPU seconds of this process, so that other "
                       "work on the machine does not count; with one torch thread they are "
                       "the seconds an idle core would take")
    bare_s = sorted(r["bare"] for r in rounds)[0]
    light_s = sorted(r["lightning"] for r in rounds)[0]
    result["training_lightning_overhead_share"] = 1 - bare_s / light_s
    result["load_average"] = {"before": load0, "after": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("training_bare", "prediction")}, indent=1))
    print(f"best of 2: lightning {light_s * 1e3:.1f} ms/step, bare {bare_s * 1e3:.1f} ms/step, "
          f"lightning share {result['training_lightning_overhead_share']:.1%}; aten share of "
          f"profiled fit {result['training_lightning']['aten_share_of_profiled_wall']:.1%}; "
          f"wrote {args.out}")


CLOCK = time.process_time
S_SIZES = dict(batch=16, patch=64, warmup=5, steps=30, seg_images=2, seg_test=1)

if __name__ == "__main__":
    main()
