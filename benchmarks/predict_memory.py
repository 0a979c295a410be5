"""Peak memory of `microsight predict` on a large OME-Zarr image (not part of the tests).

Makes an 8192 x 8192 float32 image (256 MB) as OME-Zarr, trains a CARE model
for a few steps on the bundled sample (weights do not matter for memory), then
runs ``microsight predict model big.ome.zarr --out restored.ome.zarr`` in a
child process and reports its peak resident memory (ru_maxrss) and speed.

    python benchmarks/predict_memory.py [--size 8192] [--out bench_out/predict_memory]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from microsight import train
from microsight.demo import make_demo_data
from microsight.io import open_image_writer


def make_big_image(path: Path, size: int, block: int = 1024) -> None:
    """Write a size x size float32 OME-Zarr block by block (never whole in memory)."""
    rng = np.random.default_rng(0)
    with open_image_writer(path, (size, size), np.float32, "YX", {"Y": 0.1, "X": 0.1}) as w:
        for y in range(0, size, block):
            for x in range(0, size, block):
                tile = rng.gamma(2.0, 40.0, (block, block)).astype(np.float32)
                w.write((slice(y, y + block), slice(x, x + block)), tile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--out", type=Path, default=Path("bench_out/predict_memory"))
    parser.add_argument("--tile", type=int, default=512)
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    big = out / "big.ome.zarr"
    if not big.exists():
        make_big_image(big, args.size)
    model_dir = out / "model"
    if not (model_dir / "weights.safetensors").exists():
        data = make_demo_data(out / "data")
        train("care", data["train_low"], data["train_high"], out=model_dir,
              config={"training": {"epochs": 1, "steps_per_epoch": 5}}, progress=False)
    result = out / "restored.ome.zarr"
    cmd = [sys.executable, "-m", "microsight", "predict", str(model_dir), str(big), "--out",
           str(result), "--tile", str(args.tile), "--no-progress"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    record = {
        "command": " ".join(cmd[1:]),
        "image": f"{args.size}x{args.size} float32 OME-Zarr ({args.size**2 * 4 / 2**20:.0f} MiB)",
        "model": "CARE default U-Net (depth 2, 32 base channels)",
        "tile": args.tile,
        "peak_rss_mib": round(peak_mb, 1),
        "seconds": round(seconds, 1),
        "megapixels_per_second": round(args.size**2 / 1e6 / seconds, 2),
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
    }
    (out / "results.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
