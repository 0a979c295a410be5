"""Segmentation scores grouped by nucleus size, from a run's ``per_image.csv``.

Reads ``<run>/per_image.csv`` written by ``segmentation_dsb.py`` and the
ground-truth label images of the data set, and prints, per split and per bin
of the image's median nucleus diameter (the diameter of a disk with the
median object area), the number of images and nuclei and the AP@0.5 / AP@0.75
averaged over those images weighted by their nuclei. It shows where a model
loses: small dense nuclei or large ones. Run::

    python benchmarks/seg_by_size.py bench_out/seg_distmap_d4 --source distmap
    python benchmarks/seg_by_size.py bench_out/seg_distmap_d4 --by shape   # per image size

``--by shape`` groups by the image's height x width instead, which in DSB2018 stands
for the kind of sample (the 603 x 1272 images are whole embryos with small, dense
nuclei, for example).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from segmentation_dsb import DATA, median_diameter
from skimage.io import imread

BINS = (0, 10, 15, 20, 30, 50, 1000)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="output folder of segmentation_dsb.py")
    ap.add_argument("--source", default="distmap", help="row label in per_image.csv")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--by", choices=("diameter", "shape"), default="diameter")
    args = ap.parse_args(argv)
    with open(args.run / "per_image.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["source"] == args.source]
    if not rows:
        raise SystemExit(f"no rows with source {args.source!r} in {args.run / 'per_image.csv'}")
    print(f"{'split':5} {args.by:>9} {'images':>6} {'nuclei':>6} {'AP@0.5':>7} {'AP@0.75':>7}")
    for split in ("val", "test"):
        part = [r for r in rows if r["split"] == split]
        n = np.array([int(r["true_objects"]) for r in part])
        ap50 = np.array([float(r["ap@0.5"]) for r in part])
        ap75 = np.array([float(r["ap@0.75"]) for r in part])
        for name, m in groups(part, args.by, args.data):
            print(f"{split:5} {name:>9} {m.sum():6d} {n[m].sum():6d} "
                  f"{np.average(ap50[m], weights=n[m]):7.3f} "
                  f"{np.average(ap75[m], weights=n[m]):7.3f}")
    return 0


def groups(rows: list[dict], by: str, data: Path) -> list[tuple[str, np.ndarray]]:
    """(name, mask over rows) of each non-empty group of images."""
    if by == "shape":
        shape = np.array([f"{r['height']}x{r['width']}" for r in rows])
        return [(s, shape == s) for s in sorted(set(shape), key=lambda s: int(s.split("x")[0]))]
    d = np.array([median_diameter(imread(data / "labels" / f"{r['image_id']}.png"))
                  for r in rows])
    masks = [(f"{lo}-{hi}", (d >= lo) & (d < hi)) for lo, hi in zip(BINS[:-1], BINS[1:],
                                                                    strict=True)]
    return [(name, m) for name, m in masks if m.any()]


if __name__ == "__main__":
    raise SystemExit(main())
