"""Checkerboard artefacts of Noise2Void vs N2V2 (not part of the test suite).

Trains ``n2v`` (variant n2v) and ``n2v`` (variant n2v2: blur-pool, no top
skip, median replacement) on the same noisy FMD confocal frames (fields of
view 1-6, frames 0-3; ``../shared/data/fmd-confocal-bpae-b``), the same
steps, patch and batch, then measures the share of spectral power at the
2-pixel period (0.5 cycles/pixel, rows and columns of the spectrum) in each
network's prediction of a flat noisy image
(``microsight.methods.n2v.checks.flat_field_checkerboard``) and of a held-out
noisy frame (field 13). White noise scores about 2/size; a pure checkerboard 1.

    python benchmarks/checkerboard_n2v.py [--steps 400] [--out bench_out/checkerboard]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from microsight import predict, train
from microsight.io import write_image
from microsight.methods.n2v.checks import checkerboard_score, flat_field_checkerboard

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "fmd-confocal-bpae-b"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "bench_out" / "checkerboard")
    args = parser.parse_args()
    noisy = args.out / "noisy"
    if noisy.exists():
        shutil.rmtree(noisy)
    for fov in range(1, 7):
        frames = sorted((args.data / "raw" / str(fov)).glob("*.png"))[:4]
        for i, frame in enumerate(frames):
            write_image(noisy / f"fov{fov:02d}_f{i}.tif", iio.imread(frame).astype(np.float32),
                        "YX")
    test = iio.imread(sorted((args.data / "raw" / "13").glob("*.png"))[0]).astype(np.float32)
    rows = []
    for variant in ("n2v", "n2v2"):
        out = args.out / variant
        if out.exists():
            shutil.rmtree(out)
        config = {"name": f"checkerboard-{variant}",
                  "method": {"method": "n2v", "variant": variant},
                  "data": {"patch_size": [64, 64], "batch_size": 16},
                  "training": {"learning_rate": 1e-3, "early_stopping_patience": None}}
        model = train("n2v", noisy, out=out, config=config, steps=args.steps, progress=False)
        flat = flat_field_checkerboard(model.module, size=128)
        frame = checkerboard_score(predict(model, test))
        rows.append({"variant": variant, "flat_field_score": flat, "test_frame_score": frame})
        print(rows[-1], flush=True)
    rows.append({"variant": "noisy input (test frame)", "flat_field_score": None,
                 "test_frame_score": checkerboard_score(test)})
    record = {"steps": args.steps, "white_noise_reference": 2 / 128, "rows": rows}
    (args.out / "results.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
