"""Peak memory of instance segmentation (starconvex) on a large OME-Zarr image.

Not part of the tests. Makes an 8192 x 8192 float32 OME-Zarr of synthetic
nuclei (bright disks, many touching; 256 MiB), trains a small starconvex
model for a few dozen steps on a 512 x 512 crop of it (weights matter little
for memory, but the model must find objects so that the post-processing does
its full work), then runs ``microsight predict model big.ome.zarr --out
labels.ome.zarr`` in a child process and reports its peak resident memory
(ru_maxrss), time and the number of objects written.

    python benchmarks/seg_memory.py [--size 8192] [--out bench_out/seg_memory]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

from microsight import train
from microsight.io import open_image_writer


def nuclei_block(y0: int, x0: int, size: int, spacing: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Image and labels of one block: jittered grid of disks (radius 4-9), ids unique."""
    rng = np.random.default_rng([y0, x0])
    img = rng.normal(20, 8, (size, size)).astype(np.float32)
    labels = np.zeros((size, size), np.uint32)
    yy, xx = np.mgrid[0:size, 0:size]
    n = size // spacing
    base = (y0 // size * 10_000 + x0 // size) * n * n
    for i in range(n):
        for j in range(n):
            cy = i * spacing + spacing / 2 + rng.uniform(-4, 4)
            cx = j * spacing + spacing / 2 + rng.uniform(-4, 4)
            r = rng.uniform(4, 9)
            y_lo, y_hi = int(max(cy - r - 1, 0)), int(min(cy + r + 2, size))
            x_lo, x_hi = int(max(cx - r - 1, 0)), int(min(cx + r + 2, size))
            sub = ((yy[y_lo:y_hi, x_lo:x_hi] - cy) ** 2 + (xx[y_lo:y_hi, x_lo:x_hi] - cx) ** 2
                   <= r * r)
            labels[y_lo:y_hi, x_lo:x_hi][sub] = base + i * n + j + 1
    img += 120 * (labels > 0)
    return img, labels


def make_big_image(path: Path, size: int, block: int = 1024) -> None:
    """Write the synthetic nuclei image block by block (never whole in memory)."""
    with open_image_writer(path, (size, size), np.float32, "YX", {"Y": 0.3, "X": 0.3}) as w:
        for y in range(0, size, block):
            for x in range(0, size, block):
                w.write((slice(y, y + block), slice(x, x + block)), nuclei_block(y, x, block)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--out", type=Path, default=Path("bench_out/seg_memory"))
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    big = out / f"big{args.size}.ome.zarr"
    if not big.exists():
        make_big_image(big, args.size)
    model_dir = out / "model"
    if not (model_dir / "weights.safetensors").exists():
        (out / "train" / "images").mkdir(parents=True, exist_ok=True)
        (out / "train" / "labels").mkdir(parents=True, exist_ok=True)
        for k in range(2):
            img, lab = nuclei_block(100_000 + k * 512, 0, 512)
            tifffile.imwrite(out / "train" / "images" / f"c{k}.tif", img)
            ids = np.unique(lab, return_inverse=True)[1].reshape(lab.shape)
            tifffile.imwrite(out / "train" / "labels" / f"c{k}.tif", ids.astype(np.uint16))
        train("starconvex", out / "train" / "images", out / "train" / "labels", out=model_dir,
              # A short training leaves probabilities low: a lower centre threshold lets the
              # model find the objects, so that the post-processing does its full work.
              config={"method": {"method": "starconvex", "depth": 2, "base_channels": 8,
                                 "prob_threshold": 0.2},
                      "data": {"patch_size": [64, 64], "batch_size": 8},
                      "training": {"epochs": 2, "steps_per_epoch": args.steps // 2,
                                   "learning_rate": 2e-3}},
              progress=False)
    result = out / "labels.ome.zarr"
    cmd = [sys.executable, "-m", "microsight", "predict", str(model_dir), str(big), "--out",
           str(result), "--no-progress", "--no-check"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    n_objects = sum(1 for _ in open(out / "labels_objects.csv")) - 1
    record = {
        "command": " ".join(cmd[1:]),
        "image": f"{args.size}x{args.size} float32 OME-Zarr ({args.size**2 * 4 / 2**20:.0f} MiB)"
                 ", synthetic nuclei",
        "model": "starconvex, 32 rays, U-Net depth 2, 8 base channels",
        "outputs": "labels (uint32 OME-Zarr), probability (OME-Zarr), objects CSV, polygons "
                   "GeoJSON",
        "objects": n_objects,
        "peak_rss_mib": round(peak_mb, 1),
        "seconds": round(seconds, 1),
        "megapixels_per_second": round(args.size**2 / 1e6 / seconds, 2),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
    }
    (out / "results.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
