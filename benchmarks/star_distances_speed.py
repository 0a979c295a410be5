"""Time ``shapes.star_distances`` on training-like batches of DSB2018 labels.

Cuts 8 crops of 128 x 128 from the ground-truth label images of the data set,
each at least 30% nuclei (like the foreground-biased patches starconvex trains
on), and times the star distances (32 rays) of the batch, which starconvex
computes for every training step. Prints the best of ``--repeats`` runs::

    python benchmarks/star_distances_speed.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from segmentation_dsb import DATA
from skimage.io import imread

from microsight.data.shapes import star_distances


def dense_crops(n: int, size: int, least: float, seed: int = 0) -> np.ndarray:
    """``n`` label crops of ``size`` px, each with at least ``least`` of its pixels in nuclei."""
    rng = np.random.default_rng(seed)
    crops = []
    for path in sorted((DATA / "labels").glob("*.png")):
        lab = imread(path)
        if min(lab.shape) < size:
            continue
        for _ in range(20):
            y, x = (int(rng.integers(0, s - size + 1)) for s in lab.shape)
            crop = lab[y:y + size, x:x + size]
            if (crop > 0).mean() >= least:
                crops.append(crop)
                break
        if len(crops) == n:
            return np.stack(crops)
    raise SystemExit(f"found only {len(crops)} crops of {size} px with {least:.0%} nuclei")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--rays", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    batch = dense_crops(args.batch, args.size, 0.3)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        star_distances(batch, args.rays, max_steps=args.size)
        times.append(time.perf_counter() - start)
    print(f"{args.batch} x {args.size}^2 labels, {(batch > 0).mean():.0%} nuclei, "
          f"{args.rays} rays: {min(times):.3f} s per batch (best of {args.repeats})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
