"""The measurements of ``gpu_suite.py``: data, timing helpers and one function per section.

Every section returns rows ``{"keys": [...], "value": v, "unit": u, ...details}``; the
suite guards each with its time budget and records an error instead of stopping.
"""

from __future__ import annotations

import gc
import json
import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import tifffile
import torch
from gpu_prepare import Data
from torch.utils.data import DataLoader

from microsight import api
from microsight.config import get_method
from microsight.engine.bundle import Model
from microsight.engine.predict import TiledPredictor, TileSettings
from microsight.engine.sampling import PatchSampler

HERE = Path(__file__).resolve().parent


@dataclass
class Context:
    size: dict
    device: torch.device
    data: Data
    work: Path
    careamics_python: str
    care: tuple | None = None  # (config, module) of the CARE timing, reused by prediction

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def precision(self) -> str:
        """Lightning's precision (the configuration's 'auto' on this device)."""
        return "bf16-mixed" if self.cuda else "32-true"


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class GpuMonitor:
    """Mean GPU utilization and memory from ``nvidia-smi`` sampled every 100 ms."""

    def __init__(self, on: bool):
        self.on = on and shutil.which("nvidia-smi") is not None
        self.samples: list[tuple[float, float]] = []

    def __enter__(self) -> GpuMonitor:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        if self.on:
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                 "--format=csv,noheader,nounits", "-lms", "100"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                util, mem = (float(v) for v in line.split(","))
                self.samples.append((util, mem))
            except ValueError:
                pass

    def __exit__(self, *exc) -> None:
        if self.on:
            self.proc.terminate()
            self.proc.wait(timeout=5)
            self.thread.join(timeout=2)

    def stats(self) -> dict:
        out = {"max_memory_allocated_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)
               if torch.cuda.is_available() else None}
        if not self.on:
            out["gpu_util"] = "nvidia-smi not present or not on CUDA"
        elif self.samples:
            util = [s[0] for s in self.samples[1:]] or [self.samples[0][0]]
            out.update(gpu_util_mean=round(statistics.mean(util), 1), gpu_util_samples=len(util),
                       nvidia_smi_memory_used_mib=max(s[1] for s in self.samples))
        return out


def timed(fn, reps: int, cuda: bool) -> float:
    """Median seconds of ``fn()`` over ``reps`` calls after one warm-up (device events)."""
    fn()
    sync()
    times = []
    for _ in range(reps):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def row(keys: dict, value: float, unit: str, **details) -> dict:
    return {**keys, "keys": list(keys), "value": float(value), "unit": unit, **details}


# --- ceilings -------------------------------------------------------------------
def ceilings(ctx: Context) -> list[dict]:
    n, dev = ctx.size["matmul"], ctx.device
    dtype = torch.bfloat16 if ctx.cuda else torch.float32
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    t = timed(lambda: a @ b, 10, ctx.cuda)
    src = torch.randn(ctx.size["copy_mib"] * 2**18, device=dev)
    dst = torch.empty_like(src)
    c = timed(lambda: dst.copy_(src), 10, ctx.cuda)
    return [row({"op": f"matmul {n}^3 {str(dtype)[6:]}"}, 2 * n**3 / t / 1e12, "TFLOP/s"),
            row({"op": f"copy {ctx.size['copy_mib']} MiB"}, 2 * src.numel() * 4 / c / 1e9,
                "GB/s (read+write)")]


# --- training -------------------------------------------------------------------
class StepTimer(L.Callback):
    """Seconds from the end of step ``warmup`` to the end of the last step (synced)."""

    def __init__(self, warmup: int, max_seconds: float, clock=time.perf_counter):
        self.warmup, self.max_seconds, self.clock = warmup, max_seconds, clock
        self.t0 = self.t1 = None
        self.steps = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        done = trainer.global_step
        if done == self.warmup:
            sync()
            self.t0 = self.clock()
        elif done > self.warmup:
            sync()
            self.t1, self.steps = self.clock(), done - self.warmup
            if self.t1 - self.t0 > self.max_seconds:
                trainer.should_stop = True


def build(ctx: Context, method: str, overrides: dict, inputs, targets, axes=None):
    """Configuration, training data and module as ``train_model`` builds them."""
    cfg = api.build_config(method, {"method": {"method": method, **overrides},
                                    "data": {"patch_size": [ctx.size["patch"]] * 2,
                                             "batch_size": ctx.size["batch"]},
                                    "training": {"precision": ctx.precision.replace("-true", "")}})
    cls = get_method(method).module_class
    data, norm = cls.prepare_training(cfg, inputs, targets, axes)
    module = cls(cfg, data.in_channels, data.out_channels)
    d = cfg.data
    module.attach_sampler(PatchSampler(
        data.train_inputs, data.train_targets, tuple(d.patch_size), d.batch_size,
        foreground_fraction=d.foreground_fraction, flips=d.flips, rotations=d.rotations,
        intensity_jitter=d.intensity_jitter, scale_jitter=d.scale_jitter,
        nearest_targets=module.zoom_targets == "nearest", seed=cfg.training.seed))
    return cfg, data, norm, module


def fit(ctx: Context, module, max_seconds: float = 60.0, clock=time.perf_counter) -> dict:
    """Steady-state patches/s of microsight's training step under Lightning."""
    warmup, steps = ctx.size["warmup"], ctx.size["steps"]
    timer = StepTimer(warmup, max_seconds, clock)
    trainer = L.Trainer(
        accelerator="gpu" if ctx.cuda else "cpu", devices=1, precision=ctx.precision,
        max_epochs=1, max_steps=warmup + steps, limit_val_batches=0, callbacks=[timer],
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0,
        log_every_n_steps=max(1, (warmup + steps) // 4))
    with GpuMonitor(ctx.cuda) as mon:
        trainer.fit(module, DataLoader(range(warmup + steps), batch_size=None))
    seconds = timer.t1 - timer.t0
    return {"patches_per_s": timer.steps * ctx.size["batch"] / seconds,
            "timed_steps": timer.steps, "timed_seconds": round(seconds, 3), **mon.stats()}


def bare_steps(ctx: Context, module, method: str, *, fused: bool = False,
               compiled: bool = False, max_seconds: float = 60.0) -> dict:
    """The same training step without Lightning: sample, forward, loss, backward, Adam."""
    module.to(ctx.device).train()
    module.sampler.to(ctx.device)
    net = module.network.to(memory_format=torch.channels_last)
    forward = torch.compile(net) if compiled else net
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, fused=fused or None)

    def step():
        if method == "n2v":
            x, _ = module.sampler.sample()
            inp, mask = module.mask(x, module.sampler.generator)
            with torch.autocast(ctx.device.type, torch.bfloat16, enabled=ctx.cuda):
                loss = module.loss(forward(inp), x, mask)
        else:
            x, y = module.prepare_batch(*module.sampler.sample())
            with torch.autocast(ctx.device.type, torch.bfloat16, enabled=ctx.cuda):
                loss = module.loss(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(ctx.size["warmup"]):
        step()
    with GpuMonitor(ctx.cuda) as mon:
        sync()
        t0, n = time.perf_counter(), 0
        while n < ctx.size["steps"] and time.perf_counter() - t0 < max_seconds:
            step()
            n += 1
        sync()
        seconds = time.perf_counter() - t0
    return {"patches_per_s": n * ctx.size["batch"] / seconds, "timed_steps": n,
            "timed_seconds": round(seconds, 3), **mon.stats()}


def _fmd_folders(ctx: Context) -> tuple[Path, Path]:
    root = ctx.work / "fmd"
    if not root.exists():
        for sub, stack in (("noisy", ctx.data.noisy), ("clean", ctx.data.clean)):
            (root / sub).mkdir(parents=True)
            for i, frame in enumerate(stack):
                tifffile.imwrite(root / sub / f"f{i:03d}.tif", frame)
    return root / "noisy", root / "clean"


RESTORATION = {"care": {"depth": 2, "base_channels": 32}, "n2v": {"depth": 2, "base_channels": 32}}


def restoration_training(ctx: Context, left) -> list[dict]:
    noisy, clean = _fmd_folders(ctx)
    rows = []
    for method, net in RESTORATION.items():
        loops = [("lightning", {}), ("bare", {})]
        if ctx.cuda:
            loops.append(("bare fused-adam", {"fused": True}))
            if ctx.size["compile"] and left() > 330:  # a cold compile takes about a minute
                loops.append(("bare fused-adam compiled", {"fused": True, "compiled": True}))
            elif ctx.size["compile"]:
                rows.append({"note": f"{method}: torch.compile row skipped (time budget)"})
        else:
            rows.append({"note": f"{method}: fused Adam and torch.compile rows run on CUDA only"})
        for loop, opts in loops:
            if left() < 90:
                rows.append({"note": f"{method} {loop}: skipped (time budget)"})
                continue
            cfg, _, _, module = build(ctx, method, net, noisy, clean if method == "care" else None)
            t0 = time.perf_counter()
            try:
                res = fit(ctx, module) if loop == "lightning" else bare_steps(
                    ctx, module, method, **opts)
            except Exception as exc:  # e.g. torch.compile failing: keep the other rows
                rows.append({"note": f"{method} {loop} failed: {type(exc).__name__}: {exc}"})
                continue
            params = sum(p.numel() for p in module.network.parameters())
            rows.append(row({"method": method, "loop": loop}, res.pop("patches_per_s"),
                            "patches/s", method=method, loop=loop, params=params,
                            batch=ctx.size["batch"], patch=ctx.size["patch"],
                            precision=ctx.precision, wall_seconds=round(time.perf_counter() - t0,
                                                                        1), **res))
            if method == "care" and loop == "lightning":
                ctx.care = (cfg, module)
            free_memory()
    return rows


# --- prediction -----------------------------------------------------------------
def prediction(ctx: Context) -> list[dict]:
    if ctx.care is None:
        noisy, clean = _fmd_folders(ctx)
        cfg, _, _, module = build(ctx, "care", RESTORATION["care"], noisy, clean)
        ctx.care = (cfg, module)
    cfg, module = ctx.care
    module = module.to(ctx.device).eval()
    lo, hi = np.percentile(ctx.data.noisy, [1, 99.8])
    norm = {"mode": "dataset", "p_low": 1.0, "p_high": 99.8,
            "input": {"low": [float(lo)], "high": [float(hi)]},
            "target": {"low": [float(lo)], "high": [float(hi)]}}
    model = Model(cfg, module, norm, {})
    n, tile, overlap = ctx.size["predict"], ctx.size["tile"], ctx.size["overlap"]
    reps = -(-n // ctx.data.noisy.shape[-1])
    image = np.tile(ctx.data.noisy[0], (reps, reps))[:n, :n].copy()
    normalized = ((image - lo) / (hi - lo)).astype(np.float32)[None]

    def read(region):
        return normalized[(slice(None),) + region]

    rows = []
    for batch in ctx.size["tile_batches"]:
        kw = dict(tile=tile, overlap=overlap, batch_size=batch, check=False)
        api.predict(model, image[: 2 * tile, : 2 * tile].copy(), **kw)  # warm-up
        with GpuMonitor(ctx.cuda) as mon:
            sync()
            t0 = time.perf_counter()
            out = api.predict(model, image, **kw)
            sync()
            seconds = time.perf_counter() - t0
        assert out.shape == image.shape and np.isfinite(out).all()
        rows.append(row({"path": "api.predict", "tiles_per_pass": batch}, n * n / 1e6 / seconds,
                        "Mpx/s", path="api.predict", size=n, tile=tile, overlap=overlap,
                        seconds=round(seconds, 3), mpx_per_s=n * n / 1e6 / seconds,
                        **mon.stats()))
        predictor = TiledPredictor(module, TileSettings((tile, tile), (overlap, overlap), batch))
        sync()
        t0 = time.perf_counter()
        predictor.run(image.shape, read, lambda region, block: None)
        sync()
        seconds = time.perf_counter() - t0
        rows.append(row({"path": "TiledPredictor.run", "tiles_per_pass": batch},
                        n * n / 1e6 / seconds, "Mpx/s", path="TiledPredictor.run", size=n,
                        seconds=round(seconds, 3),
                        detail="tiling engine alone: no normalization, output dropped"))
    return rows


# --- roofline -------------------------------------------------------------------
def roofline(ctx: Context) -> list[dict]:
    from torch.utils.flop_counter import FlopCounterMode

    from microsight.nn import UNet

    net = UNet(2, 1, 1, depth=2, base_channels=32, residual=True).to(ctx.device).eval()
    with FlopCounterMode(display=False) as counter:
        net(torch.randn(1, 1, 64, 64, device=ctx.device))
    flops_px = counter.get_total_flops() / 64 / 64
    t, b = ctx.size["roof_tile"], ctx.size["roof_batch"]
    x = torch.randn(b, 1, t, t, device=ctx.device)
    rows = []
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    variants = [("bf16 channels_last", True, True), ("fp32 tf32", False, False)]
    for name, bf16, nhwc in variants:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = not bf16
        fmt = torch.channels_last if nhwc else torch.contiguous_format
        net.to(memory_format=fmt)
        xin = x.contiguous(memory_format=fmt)

        def fwd(net=net, xin=xin, bf16=bf16):
            with torch.inference_mode(), torch.autocast(ctx.device.type, torch.bfloat16,
                                                        enabled=bf16 and ctx.cuda):
                net(xin)

        s = timed(fwd, ctx.size["roof_reps"], ctx.cuda)
        rows.append(row({"forward": name, "batch": f"{b}x{t}^2"}, x.numel() / 1e6 / s, "Mpx/s",
                        flops_per_pixel=flops_px, tflops=x.numel() * flops_px / s / 1e12))
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    net.train().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), fused=True if ctx.cuda else None)
    xb = torch.randn(ctx.size["batch"], 1, ctx.size["patch"], ctx.size["patch"],
                     device=ctx.device).contiguous(memory_format=torch.channels_last)

    def train_step():
        with torch.autocast(ctx.device.type, torch.bfloat16, enabled=ctx.cuda):
            loss = torch.nn.functional.mse_loss(net(xb).float(), xb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    s = timed(train_step, ctx.size["roof_reps"], ctx.cuda)
    rows.append(row({"train_step": "fixed batch, fused Adam", "batch": ctx.size["batch"]},
                    ctx.size["batch"] / s, "patches/s",
                    tflops=3 * xb.numel() * flops_px / s / 1e12))
    return rows


# --- segmentation and SMLM ------------------------------------------------------
def segmentation(ctx: Context) -> list[dict]:
    from microsight.io import read_image

    rows = []
    train, test = ctx.data.dsb / "train", ctx.data.dsb / "test"
    tests = sorted((test / "images").iterdir())[: ctx.size["seg_test"]]
    for method in ("distmap", "starconvex"):
        cfg, _, norm, module = build(ctx, method, {}, train / "images", train / "labels")
        res = fit(ctx, module)
        rows.append(row({"method": method, "what": "training"}, res.pop("patches_per_s"),
                        "patches/s", batch=ctx.size["batch"], precision=ctx.precision, **res))
        model = Model(cfg, module.eval().to(ctx.device), norm, {})
        images = [read_image(p) for p in tests]
        api.predict(model, images[0], check=False)  # warm-up
        seconds, objects = [], []
        for image in images:
            sync()
            t0 = time.perf_counter()
            labels = api.predict(model, image, check=False)
            sync()
            seconds.append(time.perf_counter() - t0)
            objects.append(int(len(np.unique(np.asarray(labels))) - 1))
        rows.append(row({"method": method, "what": "prediction"}, statistics.median(seconds),
                        "s/image (median)", images=len(images), mean_seconds=statistics.mean(
                            seconds), objects_per_image=statistics.mean(objects),
                        shapes=sorted({tuple(i.shape) for i in images})[:5]))
        free_memory()
    return rows


def localize(ctx: Context) -> list[dict]:
    from microsight.data.smlm import SimulationConfig, simulate

    sim = {"frames": 100, "shape": [64, 64]}
    cfg_overrides = {"simulation": sim, "train_frames": ctx.size["loc_train_frames"],
                     "val_frames": 8}
    cfg, _, _, module = build(ctx, "localize", cfg_overrides, None, None)
    res = fit(ctx, module)
    rows = [row({"what": "training"}, res.pop("patches_per_s"), "patches/s", **res)]
    model = Model(cfg, module.eval().to(ctx.device), {}, {})
    movie = simulate(SimulationConfig(**{**cfg.method.simulation.model_dump(),
                                         "frames": ctx.size["loc_frames"], "seed": 7})).movie
    cls = get_method("localize").module_class
    for frame_batch in (cfg.method.frame_batch, 256):
        model.config.method.frame_batch = frame_batch
        cls.localize_movie(model, movie[:8])  # warm-up
        sync()
        t0 = time.perf_counter()
        table = cls.localize_movie(model, movie)
        sync()
        s = time.perf_counter() - t0
        rows.append(row({"what": "localize_movie", "frame_batch": frame_batch}, len(movie) / s,
                        "frames/s", frames=len(movie), shape="64x64",
                        localizations=int(len(table))))
    return rows


# --- CAREamics ------------------------------------------------------------------
def careamics(ctx: Context, left) -> list[dict]:
    if ctx.careamics_python == "none":
        return [{"note": "careamics skipped: --careamics-python none"}]
    probe = subprocess.run([ctx.careamics_python, str(HERE / "careamics_speed.py"), "--probe"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return [{"note": f"careamics not available: {last}"}]
    np.save(ctx.work / "noisy.npy", ctx.data.noisy)
    np.save(ctx.work / "clean.npy", ctx.data.clean)
    rows = []
    for algorithm in ("n2v", "care"):
        out = ctx.work / f"careamics_{algorithm}.json"
        spec = {"algorithm": algorithm, "noisy": str(ctx.work / "noisy.npy"),
                "clean": str(ctx.work / "clean.npy"), "batch": ctx.size["batch"],
                "patch": ctx.size["patch"], "warmup": ctx.size["warmup"],
                "steps": ctx.size["steps"], "precision": ctx.precision,
                "predict_size": ctx.size["predict"], "tile": ctx.size["tile"],
                "overlap": ctx.size["overlap"], "out": str(out)}
        (ctx.work / "spec.json").write_text(json.dumps(spec))
        timeout = max(10.0, min(ctx.size["careamics_timeout"], left() - 5))
        res = subprocess.run([ctx.careamics_python, str(HERE / "careamics_speed.py"),
                              str(ctx.work / "spec.json")], capture_output=True, text=True,
                             timeout=timeout)
        if res.returncode != 0 or not out.exists():
            tail = (res.stderr.strip().splitlines() or ["?"])[-3:]
            rows.append({"note": f"careamics {algorithm} failed: {' | '.join(tail)}"})
            continue
        r = json.loads(out.read_text())
        rows.append(row({"method": algorithm, "what": "training"}, r["patches_per_s"],
                        "patches/s", **r))
        rows.append(row({"method": algorithm, "what": f"predict {r['predict_size']}^2"},
                        r["predict_mpx_per_s"], "Mpx/s"))
    return rows
