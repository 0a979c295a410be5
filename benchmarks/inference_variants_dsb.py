"""Benchmark: does changing how a shipped nucleus model is applied improve its outlines?

Not part of the test suite (it reads the DSB2018 data set).

Question
    ``nuclei-fluo`` loses most at IoU 0.75 (outlines) and on images of very small or
    very large nuclei. Without retraining, do these ways of applying it help?

    - ``tta``: the mean of the 8 flips and 90-degree rotations (``predict(tta=True)``);
    - ``upscale small``: a first pass measures the median nucleus diameter; an image
      whose nuclei are smaller than ``--small`` pixels is enlarged so that they are
      that size (at most 3 times), predicted, and its labels shrunk back (nearest);
    - ``shrink large``: the same for nuclei larger than ``--large`` pixels, shrunk to
      that size (at least 0.4 times).

Data and split: the folders ``benchmarks/segmentation_dsb.py`` wrote for the shipped
model (``RUN/data/{val,test}``, split ``benchmarks/splits/dsb_detect_split.csv``).
A variant would be adopted on validation only; test is reported apart.

Run::

    python benchmarks/inference_variants_dsb.py --run /work/runs/nuclei-fluo-b16
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from skimage import io as skio
from skimage.transform import resize

from microsight.api import load_model, predict
from microsight.metrics.segmentation import matching

REPO = Path(__file__).resolve().parents[1]


def median_diameter(labels: np.ndarray) -> float:
    """Diameter (pixels) of a disc of the median object area; 0 without objects."""
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas > 0]
    return float(2 * np.sqrt(np.median(areas) / np.pi)) if len(areas) else 0.0


def at_scale(model, image: np.ndarray, factor: float) -> np.ndarray:
    """Labels of ``image`` predicted at ``factor`` times its size, back on its grid."""
    shape = tuple(round(n * factor) for n in image.shape)
    scaled = resize(image.astype(np.float32), shape, order=1, preserve_range=True,
                    anti_aliasing=factor < 1)
    labels = predict(model, scaled, axes="YX", progress=False, check=False)
    return resize(labels, image.shape, order=0, preserve_range=True,
                  anti_aliasing=False).astype(np.int32)


def variants(model, image: np.ndarray, small: float, large: float) -> dict[str, np.ndarray]:
    """Labels of every variant for one image."""
    plain = predict(model, image, axes="YX", progress=False, check=False)
    out = {"plain": plain,
           "tta": predict(model, image, axes="YX", progress=False, check=False, tta=True)}
    d = median_diameter(plain)
    grow = min(small / d, 3.0) if d else 1.0
    out["upscale small"] = at_scale(model, image, grow) if grow > 1.15 else plain
    shrink = max(large / d, 0.4) if d else 1.0
    out["shrink large"] = at_scale(model, image, shrink) if shrink < 0.87 else plain
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="segmentation_dsb.py output")
    ap.add_argument("--model", default="nuclei-fluo")
    ap.add_argument("--small", type=float, default=20.0)
    ap.add_argument("--large", type=float, default=24.0)
    ap.add_argument("--out", type=Path, default=REPO / "results" / "raw" /
                    "inference-variants-dsb.json")
    args = ap.parse_args(argv)
    model = load_model(args.model)
    result = {"model": args.model, "small": args.small, "large": args.large,
              "machine": "2-core CPU", "parts": {}}
    for part in ("val", "test"):
        scores: dict[str, list] = {}
        t0 = time.perf_counter()
        for path in sorted((args.run / "data" / part / "images").iterdir()):
            image = skio.imread(path)
            image = image[..., :3].mean(-1) if image.ndim == 3 else image
            truth = skio.imread(args.run / "data" / part / "labels" / path.name)
            for name, labels in variants(model, image, args.small, args.large).items():
                scores.setdefault(name, []).append(matching(truth, labels, (0.5, 0.75)))
        result["parts"][part] = {
            name: {f"img AP@{t:g}": round(float(np.mean([r[t]["ap"] for r in rows])), 4)
                   for t in (0.5, 0.75)} for name, rows in scores.items()}
        print(part, f"({time.perf_counter() - t0:.0f} s)", json.dumps(result["parts"][part]),
              flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
