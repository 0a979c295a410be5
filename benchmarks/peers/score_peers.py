"""Score peer label predictions with StarDist's reference matching (``matching_dataset``).

Runs in the StarDist environment (``bench_out/peers-venvs/stardist``); it scores any
tool's predictions written in the layout of ``dsb_common.py``, so the Cellpose results
are scored by the same reference code as StarDist's and microsight's own metrics can be
cross-checked against it::

    bench_out/peers-venvs/stardist/bin/python benchmarks/peers/score_peers.py cellpose

Writes ``bench_out/seg_peers/<tool>/peer_scores.json``: for every split present and every
IoU threshold (0.5, 0.7, 0.75, 0.9) the pooled counts over the split (``by_image=False``:
TP/FP/FN summed over images, then precision, recall, F1 and "accuracy" =
TP / (TP + FP + FN), the DSB2018 / StarDist definition of average precision at one IoU
threshold) and the same scores averaged per image (``by_image=True``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dsb_common import DATA, IOU_THRESHOLDS, OUT, load_labels, read_labels, write_json

FIELDS = ("tp", "fp", "fn", "precision", "recall", "accuracy", "f1", "mean_true_score",
          "mean_matched_score", "panoptic_quality", "n_true", "n_pred")


def _as_dict(stats) -> dict:
    d = stats._asdict()
    return {k: (float(d[k]) if k not in ("tp", "fp", "fn", "n_true", "n_pred")
                else int(d[k])) for k in FIELDS}


def score_split(pred_dir: Path, data: Path = DATA) -> dict:
    """Reference scores of every ``<image_id>.tif`` in ``pred_dir`` against the truth.

    Parameters
    ----------
    pred_dir : Path
        Folder of predicted label TIFFs named by image id.
    data : Path
        Data set root (ground-truth labels in ``labels/``).

    Returns
    -------
    dict
        ``{"n_images": N, "pooled": {"0.5": {...}, ...}, "per_image_mean": {...}}``.
    """
    from stardist.matching import matching_dataset

    files = sorted(pred_dir.glob("*.tif"))
    y_pred = [read_labels(f) for f in files]
    y_true = [load_labels(f.stem, data) for f in files]
    out = {"n_images": len(files)}
    for key, by_image in (("pooled", False), ("per_image_mean", True)):
        stats = matching_dataset(y_true, y_pred, thresh=list(IOU_THRESHOLDS),
                                 by_image=by_image, show_progress=False)
        out[key] = {str(t): _as_dict(s) for t, s in zip(IOU_THRESHOLDS, stats, strict=True)}
    return out


def score_tool(tool_dir: Path, data: Path = DATA) -> dict:
    """Score every split folder (val, test) of one tool and write ``peer_scores.json``."""
    scores = {"reference": "stardist.matching.matching_dataset",
              "iou_thresholds": list(IOU_THRESHOLDS)}
    for split in ("val", "test"):
        if (tool_dir / split).is_dir():
            scores[split] = score_split(tool_dir / split, data)
    write_json(scores, tool_dir / "peer_scores.json")
    return scores


def summary(scores: dict) -> str:
    """One line per split: pooled AP (accuracy) at each threshold and F1 at 0.5."""
    lines = []
    for split in ("val", "test"):
        if split in scores:
            p = scores[split]["pooled"]
            aps = " ".join(f"AP@{t}={p[str(t)]['accuracy']:.3f}" for t in IOU_THRESHOLDS)
            lines.append(f"{split} (n={scores[split]['n_images']}): {aps} "
                         f"F1@0.5={p['0.5']['f1']:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tool", help="tool folder name under --out (stardist, cellpose, ...)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args(argv)
    scores = score_tool(args.out / args.tool, args.data)
    print(summary(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
