"""A report for every registered method: train briefly, evaluate, keep the HTML reports.

Not part of the test suite. The point is the reports (what a user gets from
``microsight train`` and ``microsight evaluate``), not the quality of the
models: every method trains for a few dozen steps on small data.

Methods come from the registry, so a new method shows up here by itself. Its
data come from a *recipe* chosen by method name, then by family; a method
with no recipe (or whose run fails) is listed with the reason instead of a
report.

Data
    - the bundled sample ``microsight/data/sample_files/nuclei.tif`` (DSB2018,
      CC0): crops of the top part for training, of the bottom part for
      testing, degraded with simulated Poisson-Gaussian noise (restoration),
      2x binning (super-resolution), a phase-contrast-like transform
      (label-free), or three anisotropic stacks (care-iso, scored on a fourth against its
      isotropic volume);
    - ``../shared/data/stardist-wheel-dsb2018-sample`` (image + instance
      labels, BSD-3) for detection and segmentation, when present;
    - ``../shared/data/epfl2013-bundled-tubes-hd-deepstorm`` (20-frame
      ThunderSTORM movie with its emitter table, MIT) to evaluate the SMLM
      methods, which train on simulated movies;
    - synthetic two-class crops (round / elongated cells) for classification
      and embedding.

Run (from the repository root; each method in its own process with a time
limit, so one slow method cannot stall the rest)::

    python benchmarks/reports.py                    # all methods, 20 steps each
    python benchmarks/reports.py --steps 10 --only care n2v

Outputs under ``bench_out/reports/``: ``<method>.html`` (evaluation report),
``<method>-training.html`` (the report the bundle got after training),
``index.md`` / ``index.json`` (status, time, summary line per method).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "bench_out" / "reports"
CROP = 128


def _clean_crops() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Training crops from the top of the sample image, test crops from the bottom."""
    from microsight.data.samples import sample_nuclei

    img = sample_nuclei().astype(np.float32)
    train = [img[y:y + CROP, x:x + CROP] for y in (0, 128) for x in (0, 128, 256, 384)]
    test = [img[384:512, x:x + CROP] for x in (0, 256)]
    return train, test


def _write(folder: Path, images: list[np.ndarray], axes: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        meta = {"axes": axes} if axes else None
        tifffile.imwrite(folder / f"im{i}.tif", np.asarray(im, np.float32), metadata=meta)
    return folder


def _noisy(images: list[np.ndarray], seed: int) -> list[np.ndarray]:
    from microsight.data.samples import poisson_gaussian

    return [poisson_gaussian(im, peak_photons=8.0, seed=seed + i) for i, im in enumerate(images)]


def _unet(**extra: Any) -> dict[str, Any]:
    return {"depth": 2, "base_channels": 8, **extra}


# A recipe writes its data under ``work`` and returns the arguments of train and
# evaluate plus method-specific config fields.
Recipe = Callable[[Path], dict[str, Any]]


def pairs_recipe(kind: str) -> Recipe:
    def make(work: Path) -> dict[str, Any]:
        train, test = _clean_crops()
        noisy_a = _write(work / "train_in", _noisy(train, 0))
        target = {
            "care": _write(work / "train_gt", train),
            "n2n": _write(work / "train_b", _noisy(train, 100)),
            "n2v": None,
        }[kind]
        return {"train": (noisy_a, target), "method": _unet(),
                "evaluate": (_write(work / "test_in", _noisy(test, 200)),
                             _write(work / "test_gt", test))}
    return make


def sr_recipe(work: Path) -> dict[str, Any]:
    train, test = _clean_crops()

    def binned(ims: list[np.ndarray]) -> list[np.ndarray]:
        return [im.reshape(CROP // 2, 2, CROP // 2, 2).mean(axis=(1, 3)) for im in ims]

    return {"train": (_write(work / "train_lr", binned(train)), _write(work / "train_hr", train)),
            "method": _unet(),
            "evaluate": (_write(work / "test_lr", binned(test)), _write(work / "test_hr", test))}


def care_iso_recipe(work: Path) -> dict[str, Any]:
    from microsight.io import write_image

    rng = np.random.default_rng(0)
    folder = work / "stacks"
    folder.mkdir(parents=True)
    held_in, held_truth = work / "test_aniso", work / "test_iso"
    held_in.mkdir(parents=True)
    held_truth.mkdir(parents=True)
    for i in range(4):
        spots = np.zeros((32, 96, 96), np.float32)
        spots[tuple(rng.integers(2, [30, 94, 94], size=(40, 3)).T)] = 1000.0
        volume = ndimage.gaussian_filter(spots, (2.0, 2.0, 2.0)) + 5.0
        # Three stacks to train on; the fourth held out with its isotropic truth.
        target = folder if i < 3 else held_in
        write_image(target / f"stack{i}.ome.tif", volume[::4], "ZYX",
                    {"Z": 1.0, "Y": 0.25, "X": 0.25})
        if i == 3:
            write_image(held_truth / f"stack{i}.ome.tif", volume, "ZYX",
                        {"Z": 0.25, "Y": 0.25, "X": 0.25})
    return {"train": (folder, None), "method": _unet(), "evaluate": (held_in, held_truth)}


def labelfree_recipe(work: Path) -> dict[str, Any]:
    train, test = _clean_crops()

    def phase(ims: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for im in ims:
            edges = ndimage.gaussian_laplace(im, 2.0)
            out.append(np.stack([100 + (z - 1) * 3 * edges - 0.2 * im for z in range(3)]))
        return out

    return {"train": (_write(work / "train_phase", phase(train), "ZYX"),
                      _write(work / "train_fluo", train)),
            "method": _unet(z_as_channels=True),
            "evaluate": (_write(work / "test_phase", phase(test), "ZYX"),
                         _write(work / "test_fluo", test))}


def labelled_recipe(method: dict[str, Any]) -> Recipe:
    def make(work: Path) -> dict[str, Any]:
        folder = SHARED / "stardist-wheel-dsb2018-sample"
        if not (folder / "img2d.tif").is_file():
            raise FileNotFoundError(f"{folder} is missing (labelled nuclei)")
        img = tifffile.imread(folder / "img2d.tif").astype(np.float32)
        lab = tifffile.imread(folder / "mask2d.tif").astype(np.uint16)
        half = img.shape[0] // 2
        crops = [(slice(0, half), slice(0, half)), (slice(0, half), slice(half, None)),
                 (slice(half, None), slice(0, half))]
        test = [(slice(half, None), slice(half, None))]
        return {"train": (_write(work / "train_img", [img[c] for c in crops]),
                          _write(work / "train_lab", [lab[c] for c in crops])),
                "method": method,
                "evaluate": (_write(work / "test_img", [img[c] for c in test]),
                             _write(work / "test_lab", [lab[c] for c in test]))}
    return make


def crops_recipe(method: dict[str, Any]) -> Recipe:
    def make(work: Path) -> dict[str, Any]:
        rng = np.random.default_rng(0)
        for split, n in (("train", 40), ("test", 12)):
            for kind in ("round", "elongated"):
                folder = work / split / kind
                folder.mkdir(parents=True)
                for i in range(n):
                    im = rng.normal(0, 0.3, (32, 32)).astype(np.float32)
                    yy, xx = np.mgrid[:32, :32] - 16 + rng.normal(0, 2, 2)[:, None, None]
                    a, b = (6, 6) if kind == "round" else (11, 3)
                    im += 2.0 * (((yy / b) ** 2 + (xx / a) ** 2) < 1)
                    tifffile.imwrite(folder / f"{kind}{i}.tif", ndimage.gaussian_filter(im, 1))
        return {"train": (work / "train", None), "method": method,
                "data": {"patch_size": [32, 32]},
                "evaluate": (work / "test", work / "test")}
    return make


def smlm_recipe(work: Path) -> dict[str, Any]:
    folder = SHARED / "epfl2013-bundled-tubes-hd-deepstorm"
    movie = folder / "thunderstorm_sim_training_stack.tif"
    if not movie.is_file():
        raise FileNotFoundError(f"{movie} is missing (SMLM test movie)")
    return {"train": ("simulate", None), "method": {}, "data": None,
            "evaluate": (movie, folder / "thunderstorm_sim_training_positions.csv")}


RECIPES: dict[str, Recipe] = {
    "care": pairs_recipe("care"),
    "n2n": pairs_recipe("n2n"),
    "n2v": pairs_recipe("n2v"),
    "sr": sr_recipe,
    "care-iso": care_iso_recipe,
    "labelfree": labelfree_recipe,
    "starconvex": labelled_recipe(_unet(n_rays=16)),
    "classify": crops_recipe({"widths": [8, 16]}),
    "embed": crops_recipe({}),
}
FAMILY_RECIPES: dict[str, Recipe] = {
    "segmentation": labelled_recipe(_unet()),
    "detection": labelled_recipe(_unet()),
    "smlm": smlm_recipe,
    "restoration": pairs_recipe("care"),
}


def run_one(name: str, steps: int, out: Path) -> dict[str, Any]:
    """Train ``name`` briefly, evaluate it with a report; return the index entry."""
    from microsight import evaluate, train
    from microsight.config import available_methods

    info = available_methods()[name]
    recipe = RECIPES.get(name) or FAMILY_RECIPES.get(info.family)
    entry: dict[str, Any] = {"method": name, "family": info.family}
    if recipe is None:
        return {**entry, "status": "skipped", "note": f"no data recipe for family {info.family}"}
    work = out / "work" / name
    shutil.rmtree(work, ignore_errors=True)
    spec = recipe(work)
    data = spec.get("data", {"patch_size": [32, 32], "batch_size": 8})
    config: dict[str, Any] = {"name": f"report-{name}", "method": {"method": name,
                                                                   **spec["method"]},
                              # Four epochs, so the history has a trend to judge.
                              "training": {"val_tile": 64,
                                           "steps_per_epoch": max(1, steps // 4)}}
    if data:
        config["data"] = data
    start = time.perf_counter()
    model = train(name, *spec["train"], out=work / "model", config=config, steps=steps,
                  progress=False)
    entry["train_seconds"] = round(time.perf_counter() - start, 1)
    if (work / "model" / "report.html").is_file():
        shutil.copy(work / "model" / "report.html", out / f"{name}-training.html")
        entry["training_report"] = f"{name}-training.html"
    entry["verdict"] = model.qc.get("overfitting", {}).get("status")
    if spec.get("evaluate") is None:
        return {**entry, "status": "training report only",
                "note": "no held-out pairs for this method's evaluation here"}
    start = time.perf_counter()
    result = evaluate(model, *spec["evaluate"], report=out / f"{name}.html")
    entry["evaluate_seconds"] = round(time.perf_counter() - start, 1)
    entry["report"] = f"{name}.html"
    network = next((r for r in result.summary if r.get("source") == "network"), {})
    entry["summary"] = {k: v for k, v in network.items()
                        if isinstance(v, float) and "CI" not in k}
    return {**entry, "status": "ok"}


def _markdown(entries: list[dict[str, Any]], steps: int) -> str:
    lines = [f"Reports for every registered method ({steps} training steps each).", "",
             "| method | family | status | reports | network (test) | train s | eval s |",
             "|---|---|---|---|---|---|---|"]
    for e in entries:
        links = ", ".join(f"[{k.replace('_', ' ')}]({e[k]})" for k in ("report", "training_report")
                          if e.get(k))
        summary = ", ".join(f"{k} {v:.3g}" for k, v in list(e.get("summary", {}).items())[:4])
        status = e["status"] + (f": {e['note']}" if e.get("note") else "")
        lines.append(f"| {e['method']} | {e['family']} | {status} | {links} | {summary} | "
                     f"{e.get('train_seconds', '')} | {e.get('evaluate_seconds', '')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps per method")
    parser.add_argument("--only", nargs="*", help="methods to run (default: all registered)")
    parser.add_argument("--timeout", type=int, default=420, help="seconds per method")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # worker mode: one method
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.one:
        entry = run_one(args.one, args.steps, args.out)
        (args.out / "work" / f"{args.one}.json").write_text(json.dumps(entry, default=str))
        return 0
    from microsight.config import available_methods

    names = args.only or list(available_methods())
    entries = []
    for name in names:
        print(f"== {name}", flush=True)
        result_file = args.out / "work" / f"{name}.json"
        result_file.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--one", name, "--steps", str(args.steps),
               "--out", str(args.out)]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                                  env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if result_file.is_file():
                entry = json.loads(result_file.read_text())
            else:
                last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                entry = {"method": name, "family": available_methods()[name].family,
                         "status": "failed", "note": last[:200]}
        except subprocess.TimeoutExpired:
            entry = {"method": name, "family": available_methods()[name].family,
                     "status": "skipped", "note": f"over the {args.timeout} s limit"}
        entry["wall_seconds"] = round(time.perf_counter() - start, 1)
        print(f"   {entry['status']} {entry.get('note', '')} ({entry['wall_seconds']} s)",
              flush=True)
        entries.append(entry)
    (args.out / "index.json").write_text(json.dumps(
        {"steps": args.steps, "load_average": os.getloadavg(), "methods": entries},
        indent=2, default=str))
    (args.out / "index.md").write_text(_markdown(entries, args.steps))
    print(_markdown(entries, args.steps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
