"""Benchmark: cell-cycle phase classification of Jurkat cells (imaging flow cytometry).

Not part of the test suite (outside ``tests/``; needs the external data set; trains for
minutes).

Data
    Blasi et al. 2016 / Eulenberg et al. 2017 Jurkat montages, read from ``--data``
    (default ``../shared/data/jurkat-ifc-cellcycle-blasi2016``; see its PROVENANCE.md):
    7 classes (folder names), per class three 1200x1200 montages Ch3 / Ch4 / Ch6, each a
    30x30 grid of 40x40 crops (row-major). Unused slots repeat a padding tile: the
    most frequent tile of a class (if it occurs more than once) is dropped with all its
    copies, and any other exact repeat keeps only its first slot (one Anaphase cell appears
    twice; keeping both could put the same cell in train and test). Ch4 is the DNA
    stain, Ch3/Ch6 brightfield/darkfield. The crops are written
    as CYX TIFFs to ``<out>/data/{train,val,test}/<class>/`` (never into the repository).

Split (fixed, stored in the repository)
    ``benchmarks/splits/jurkat_split.csv`` (class, montage, crop, split): stratified per
    class, 60 / 20 / 20 % train / validation / test, seed 0, made once by this script
    (re-used when present). Validation is used for best-epoch selection (and nothing
    else was tuned); the test split is only scored at the end.

Models
    - ``classify``: microsight's ResNet (widths 16/32/64, one block per stage), crops
      40x40, class-balanced sampling softened (power 0.5), label smoothing 0.05, flips,
      rotations, +-2 px shifts, +-10 % gain; test-time augmentation (8 dihedral views);
      30 epochs x 60 steps of 64 crops, Adam 2e-3 with a full cosine schedule, no early
      stopping (best epoch by the class-balanced validation loss).
      A first run with early stopping (patience 10) stopped at epoch 23 while the
      learning rate was still high (noisy validation loss; best epoch 12): val acc 0.842
      / balanced 0.880, test 0.798 / 0.850. It is kept in ``run1_early_stopped/``; the
      switch to a complete schedule was made from its validation curve, but after its
      test numbers had been printed, so say so when quoting the final numbers.
    - baseline: hand-crafted intensity/shape statistics per channel
      (``microsight.data.crops.handcrafted_features``) + random forest (scikit-learn,
      500 trees, balanced class weights).
    Channels: all three (Ch3, Ch4 = DNA stain, Ch6), and with ``--label-free`` also a
    second row with Ch3 + Ch6 only.

Run (from the repository root)::

    python benchmarks/classify_jurkat.py                 # -> bench_out/classify_jurkat/
    python benchmarks/classify_jurkat.py --label-free    # also the label-free rows
    python benchmarks/classify_jurkat.py --fast          # smoke run

Outputs: ``results.json``, ``results.md`` (table printed too), evaluation reports
``report_<channels>_{val,test}.html`` and model bundles ``model_<channels>/``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import command_line, write_result

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "jurkat-ifc-cellcycle-blasi2016"
SPLIT_CSV = ROOT / "benchmarks" / "splits" / "jurkat_split.csv"
CHANNELS = ("Ch3", "Ch4", "Ch6")
GRID, TILE = 30, 40
FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def load_montages(data: Path) -> dict[str, dict]:
    """Per class: montage id, crop indices and crops (N, 3, 40, 40) uint16, padding dropped."""
    out = {}
    for cdir in sorted(p for p in data.iterdir() if p.is_dir()):
        files = {ch: sorted(cdir.glob(f"{ch}_*.tif")) for ch in CHANNELS}
        if any(len(f) != 1 for f in files.values()):
            raise SystemExit(f"{cdir}: expected one montage per channel {CHANNELS}")
        montage = files["Ch3"][0].stem.split("_", 1)[1]
        stack = np.stack([tifffile.imread(files[ch][0]) for ch in CHANNELS])
        tiles = stack.reshape(3, GRID, TILE, GRID, TILE).transpose(1, 3, 0, 2, 4).reshape(
            GRID * GRID, 3, TILE, TILE)
        flat = tiles.reshape(len(tiles), -1)
        _, first, inverse, counts = np.unique(flat, axis=0, return_index=True,
                                              return_inverse=True, return_counts=True)
        inverse = inverse.ravel()
        keep = np.zeros(len(tiles), bool)
        keep[first] = True  # exact repeats of a cell (one in Anaphase) would leak across splits
        if counts.max() > 1:
            keep &= inverse != np.argmax(counts)
        idx = np.flatnonzero(keep)
        out[cdir.name] = {"montage": montage, "index": idx, "crops": tiles[idx]}
    return out


def make_or_read_split(classes: dict[str, dict]) -> dict[tuple[str, int], str]:
    from microsight.data.crops import stratified_split

    if SPLIT_CSV.is_file():
        with SPLIT_CSV.open() as fh:
            return {(r["class"], int(r["crop"])): r["split"] for r in csv.DictReader(fh)}
    names = sorted(classes)
    labels = np.concatenate([np.full(len(classes[c]["index"]), i) for i, c in enumerate(names)])
    split = stratified_split(labels, FRACTIONS, seed=0)
    rows, k = [], 0
    for c in names:
        for i in classes[c]["index"]:
            rows.append({"class": c, "montage": classes[c]["montage"], "crop": int(i),
                         "split": split[k]})
            k += 1
    SPLIT_CSV.parent.mkdir(parents=True, exist_ok=True)
    with SPLIT_CSV.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["class", "montage", "crop", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return {(r["class"], r["crop"]): r["split"] for r in rows}


def write_folders(classes: dict[str, dict], split: dict, root: Path, channels: list[int]
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Class folders per split; returns (crops, labels) per split for the baseline."""
    if root.exists():
        shutil.rmtree(root)
    arrays: dict[str, tuple[list, list]] = {s: ([], []) for s in FRACTIONS}
    for label, c in enumerate(sorted(classes)):
        info = classes[c]
        for i, crop in zip(info["index"], info["crops"], strict=True):
            s = split[(c, int(i))]
            folder = root / s / c
            folder.mkdir(parents=True, exist_ok=True)
            sel = crop[channels]
            tifffile.imwrite(folder / f"{info['montage']}_{int(i):03d}.tif", sel,
                             metadata={"axes": "CYX"})
            arrays[s][0].append(sel)
            arrays[s][1].append(label)
    return {s: (np.stack(x).astype(np.float32), np.asarray(y)) for s, (x, y) in arrays.items()}


def run_baseline(arrays: dict, n_classes: int) -> dict[str, dict]:
    from sklearn.ensemble import RandomForestClassifier

    from microsight.data.crops import handcrafted_features
    from microsight.metrics.classification import classification_metrics, confusion_matrix

    feats = {s: handcrafted_features(x) for s, (x, _) in arrays.items()}
    rf = RandomForestClassifier(n_estimators=500, class_weight="balanced", random_state=0,
                                n_jobs=1).fit(feats["train"], arrays["train"][1])
    out = {}
    for s in ("val", "test"):
        pred = rf.predict(feats[s])
        out[s] = {**classification_metrics(arrays[s][1], pred, n_classes),
                  "confusion": confusion_matrix(arrays[s][1], pred, n_classes).tolist()}
    return out


def run_network(data_root: Path, out: Path, tag: str, fast: bool) -> dict[str, dict]:
    from microsight import evaluate, train

    cfg = {
        "name": f"jurkat-{tag}",
        "method": {"method": "classify", "widths": [16, 32, 64], "blocks": 1,
                   "balance": "sampling", "balance_power": 0.5, "label_smoothing": 0.05,
                   "dropout": 0.1, "max_shift": 2, "tta": True},
        "data": {"patch_size": [40, 40], "batch_size": 64, "intensity_jitter": 0.1},
        "training": {"epochs": 2 if fast else 30, "steps_per_epoch": 5 if fast else 60,
                     "learning_rate": 2e-3, "early_stopping_patience": None, "seed": 0},
    }
    model_dir = out / f"model_{tag}"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    t0 = time.time()
    model = train("classify", data_root, out=model_dir, config=cfg, progress=True)
    seconds = time.time() - t0
    res = {}
    for s in ("val", "test"):
        ev = evaluate(model, data_root / s, None, report=out / f"report_{tag}_{s}.html")
        res[s] = {**{k: v for k, v in ev.summary[0].items() if k not in ("source",)},
                  "confusion": ev.confusion.tolist(), "per_class": ev.per_class}
    res["train_seconds"] = round(seconds, 1)
    res["best_epoch"] = model.qc.get("best_epoch")
    res["epochs_run"] = model.qc.get("epochs_run")
    return res


def record(results: dict, run: str) -> Path:
    """Add this run's rows to ``results/classify-jurkat.json`` (the table of RESULTS.md)."""
    rows = []
    for v in results["variants"].values():
        for label, kind, r in (("microsight classify", "microsight", v["network"]),
                               ("features + random forest", "baseline", v["baseline"])):
            rows.append({
                "model": f"{label}, {v['channels']} ({run})", "kind": kind,
                "command": command_line(__file__, sys.argv[1:]), "recipe": None,
                **{part: {"acc": r[part]["accuracy"], "bal. acc": r[part]["balanced_accuracy"]}
                   for part in ("val", "test")},
                "train_s": r.get("train_seconds")})
    return write_result("classify-jurkat", rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--fast", action="store_true", help="smoke run (a few steps)")
    ap.add_argument("--label-free", action="store_true", help="also Ch3+Ch6 only")
    ap.add_argument("--record", action="store_true",
                    help="also add this run's rows to results/classify-jurkat.json "
                         "(then run benchmarks/results_page.py)")
    args = ap.parse_args()
    if args.record and args.fast:
        ap.error("--record keeps full runs only, not --fast smoke runs")
    out = args.out or ROOT / "bench_out" / ("classify_jurkat_fast" if args.fast
                                            else "classify_jurkat")
    out.mkdir(parents=True, exist_ok=True)
    # Two shared cores: one intra-op thread avoids oversubscription (about 10x faster here).
    torch.set_num_threads(1)
    classes = load_montages(args.data)
    split = make_or_read_split(classes)
    names = sorted(classes)
    counts = {c: {s: sum(1 for i in classes[c]["index"] if split[(c, int(i))] == s)
                  for s in FRACTIONS} for c in names}
    variants = [("all3", [0, 1, 2], "Ch3 + Ch4 (DNA stain) + Ch6")]
    if args.label_free:
        variants.append(("labelfree", [0, 2], "Ch3 + Ch6 (label-free)"))
    results = {"classes": names, "counts": counts, "load_average": os.getloadavg(),
               "variants": {}}
    for tag, chans, desc in variants:
        data_root = out / f"data_{tag}"
        arrays = write_folders(classes, split, data_root, chans)
        base = run_baseline(arrays, len(names))
        net = run_network(data_root, out, tag, args.fast)
        results["variants"][tag] = {"channels": desc, "network": net, "baseline": base}
        (out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    lines = ["| channels | model | val acc | val bal. acc | test acc | test bal. acc |",
             "|---|---|---|---|---|---|"]
    for v in results["variants"].values():
        for label, r in (("microsight classify (ResNet, TTA)", v["network"]),
                         ("hand-crafted features + random forest", v["baseline"])):
            lines.append(f"| {v['channels']} | {label} | {r['val']['accuracy']:.3f} | "
                         f"{r['val']['balanced_accuracy']:.3f} | {r['test']['accuracy']:.3f} | "
                         f"{r['test']['balanced_accuracy']:.3f} |")
    lines += ["", "Samples per class (train/val/test): " + ", ".join(
        f"{c} {counts[c]['train']}/{counts[c]['val']}/{counts[c]['test']}" for c in names)]
    for v in results["variants"].values():
        lines += ["", f"Test confusion matrix, network, {v['channels']} (rows true, "
                  f"columns predicted; order {', '.join(names)}):", "```"]
        lines += [" ".join(f"{n:4d}" for n in row) for row in v["network"]["test"]["confusion"]]
        lines += ["```", f"training seconds: {v['network']['train_seconds']}, best epoch "
                  f"{v['network']['best_epoch']} of {v['network']['epochs_run']}"]
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    print(text)
    if args.record:
        print(f"recorded in {record(results, out.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
