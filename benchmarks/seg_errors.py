"""What kind of mistakes a segmentation run makes: missed, merged, split, poorly outlined.

Re-predicts one split with a run's model (no TTA) and the post-processing
parameters that run chose on validation (``<run>/results.json``), then sorts
every error at IoU 0.5 into a class:

ground-truth nuclei without a match
    ``missed`` (less than 30% of it is covered by predicted objects), ``merged``
    (its main predicted object also covers at least half of another nucleus),
    ``poor outline`` (the rest);
predicted objects without a match
    ``spurious`` (less than 30% of it lies on nuclei), ``split`` (its main
    nucleus is shared with other predicted objects, each over 20% of it),
    ``poor outline`` (the rest).

It prints the counts and the diameters of the nuclei in each class, the
evidence for choosing what to improve, then, by nucleus diameter, how well the
matched nuclei are outlined (median IoU, the share at IoU 0.75 or more, and the
median ratio of predicted to true area: below 1, objects come out too small). Run::

    python benchmarks/seg_errors.py bench_out/seg_distmap_d4 --split val
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from detect_dsb import SPLIT, link_folder, make_split
from segmentation_dsb import DATA, dense_maps

from microsight.data.pairs import load_items
from microsight.engine.bundle import load_model
from microsight.families.segmentation.tuning import extract_with, label_images
from microsight.metrics.segmentation import overlap_counts


def overlaps(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, ...]:
    """Overlap counts, true and predicted areas and IoU, background in row/column 0."""
    table = overlap_counts(truth, pred)
    true_area, pred_area = table.sum(1), table.sum(0)
    iou = table / np.maximum(true_area[:, None] + pred_area[None, :] - table, 1)
    return table, true_area, pred_area, iou


def error_classes(truth: np.ndarray, pred: np.ndarray) -> dict[str, list[float]]:
    """Diameters (px) of the nuclei in each class (predicted classes: the object's)."""
    table, true_area, pred_area, iou = overlaps(truth, pred)
    out: dict[str, list[float]] = defaultdict(list)
    for i in np.flatnonzero(true_area[1:]) + 1:
        diameter = 2 * np.sqrt(true_area[i] / np.pi)
        covered = table[i, 1:]
        if covered.size and iou[i, 1:].max() >= 0.5:
            kind = "matched"
        elif covered.sum() < 0.3 * true_area[i]:
            kind = "missed"
        else:
            j = covered.argmax() + 1
            others = table[1:, j] / np.maximum(true_area[1:], 1)
            others[i - 1] = 0
            kind = "merged" if others.max() >= 0.5 else "poor outline (true)"
        out[kind].append(diameter)
    for j in np.flatnonzero(pred_area[1:]) + 1:
        diameter = 2 * np.sqrt(pred_area[j] / np.pi)
        if table.shape[0] > 1 and iou[1:, j].max() >= 0.5:
            continue
        on_nuclei = table[1:, j]
        if on_nuclei.sum() < 0.3 * pred_area[j]:
            kind = "spurious"
        else:
            i = on_nuclei.argmax() + 1
            sharing = (table[i, 1:] > 0.2 * true_area[i]).sum()
            kind = "split" if sharing > 1 else "poor outline (predicted)"
        out[kind].append(diameter)
    return out


def matched_outlines(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``(diameter, IoU, predicted / true area)`` of every nucleus matched at IoU 0.5."""
    _, true_area, pred_area, iou = overlaps(truth, pred)
    if iou.shape[0] < 2 or iou.shape[1] < 2:
        return np.zeros((0, 3))
    best = iou[1:, 1:].argmax(1) + 1
    nuclei = np.arange(1, iou.shape[0])
    best_iou = iou[nuclei, best]
    keep = best_iou >= 0.5
    area = true_area[1:][keep].astype(np.float64)
    return np.stack([2 * np.sqrt(area / np.pi), best_iou[keep],
                     pred_area[best[keep]] / area], axis=1)


def outline_table(rows: np.ndarray, edges=(0, 10, 15, 20, 30, np.inf)) -> None:
    """Print, by nucleus diameter, how well matched nuclei are outlined."""
    print(f"{'diameter (px)':14} {'matched':>8} {'median IoU':>11} {'IoU >= 0.75':>12} "
          f"{'median area pred / true':>24}")
    for lo, hi in itertools.pairwise(edges):
        sel = rows[(rows[:, 0] >= lo) & (rows[:, 0] < hi)]
        if len(sel) == 0:
            continue
        print(f"{f'{lo:g}-{hi:g}':14} {len(sel):8d} {np.median(sel[:, 1]):11.3f} "
              f"{np.mean(sel[:, 1] >= 0.75):12.3f} {np.median(sel[:, 2]):24.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="output folder of segmentation_dsb.py")
    ap.add_argument("--method", default="distmap")
    ap.add_argument("--split", default="val", choices=("val", "test"))
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args(argv)
    params = json.loads((args.run / "results.json").read_text())["chosen"][args.method]
    ids = make_split(args.data, SPLIT)[args.split]
    folder = link_folder(args.data, ids, args.run / "data" / args.split)
    xs, targets = load_items(*folder, ndim=2)[:2]
    model = load_model(args.run / f"model_{args.method}")
    maps, _ = dense_maps(model, xs)
    classes: dict[str, list[float]] = defaultdict(list)
    outlines = []
    for truth, dense in zip(label_images(targets), maps, strict=True):
        pred = extract_with(model, dense, params)
        for kind, diameters in error_classes(truth, pred).items():
            classes[kind] += diameters
        outlines.append(matched_outlines(truth, pred))
    print(f"{args.run} {args.method} {args.split}, params {params}")
    print(f"{'class':26} {'count':>6} {'diameter p10 / p50 / p90 (px)':>30}")
    for kind in ("matched", "missed", "merged", "poor outline (true)", "spurious", "split",
                 "poor outline (predicted)"):
        d = classes.get(kind, [])
        spread = " / ".join(f"{v:.1f}" for v in np.percentile(d, [10, 50, 90])) if d else "-"
        print(f"{kind:26} {len(d):6d} {spread:>30}")
    print()
    outline_table(np.concatenate(outlines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
