"""Cross-check microsight's segmentation metrics against StarDist's reference matching.

Runs in microsight's own environment, after a peer runner has written its label images
and ``peer_scores.json`` (computed by ``stardist.matching.matching_dataset``)::

    python benchmarks/peers/crosscheck_metrics.py stardist cellpose

For every tool and split it scores the same predictions with
``microsight.metrics.segmentation.matching_dataset`` and prints, per IoU threshold, the
pooled TP / FP / FN and AP of both implementations and whether they agree. Exits with
status 1 when any count differs. Writes ``bench_out/seg_peers/<tool>/crosscheck.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dsb_common import DATA, IOU_THRESHOLDS, OUT, load_labels, read_labels, write_json

from microsight.metrics.segmentation import matching_dataset


def crosscheck(tool_dir: Path, data: Path = DATA) -> dict:
    """Compare microsight's pooled counts with ``peer_scores.json`` for one tool.

    Parameters
    ----------
    tool_dir : Path
        ``bench_out/seg_peers/<tool>`` with ``peer_scores.json`` and split folders.
    data : Path
        Data set root (ground-truth labels).

    Returns
    -------
    dict
        ``{split: {threshold: {"microsight": {...}, "stardist": {...}, "agree": bool}}}``.
    """
    ref = json.loads((tool_dir / "peer_scores.json").read_text())
    out: dict = {}
    for split in ("val", "test"):
        if split not in ref:
            continue
        files = sorted((tool_dir / split).glob("*.tif"))
        ours = matching_dataset([load_labels(f.stem, data) for f in files],
                                [read_labels(f) for f in files], list(IOU_THRESHOLDS))
        out[split] = {}
        for thr in IOU_THRESHOLDS:
            theirs = ref[split]["pooled"][str(thr)]
            mine = ours[thr]
            counts_m = {k: int(mine[k]) for k in ("tp", "fp", "fn")}
            counts_s = {k: int(theirs[k]) for k in ("tp", "fp", "fn")}
            out[split][str(thr)] = {
                "microsight": {**counts_m, "ap": mine["ap"], "f1": mine["f1"]},
                "stardist": {**counts_s, "ap": theirs["accuracy"], "f1": theirs["f1"]},
                "agree": counts_m == counts_s,
            }
    write_json(out, tool_dir / "crosscheck.json")
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tools", nargs="+", help="tool folders under --out")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args(argv)
    all_agree = True
    for tool in args.tools:
        for split, rows in crosscheck(args.out / tool, args.data).items():
            for thr, r in rows.items():
                m, s = r["microsight"], r["stardist"]
                all_agree &= r["agree"]
                print(f"{tool:9s} {split:4s} IoU {thr:4s}  microsight TP/FP/FN "
                      f"{m['tp']}/{m['fp']}/{m['fn']} AP {m['ap']:.4f}  stardist "
                      f"{s['tp']}/{s['fp']}/{s['fn']} AP {s['ap']:.4f}  "
                      f"{'agree' if r['agree'] else 'DIFFER'}")
    return 0 if all_agree else 1


if __name__ == "__main__":
    sys.exit(main())
