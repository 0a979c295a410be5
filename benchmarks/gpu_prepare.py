"""Prepare what ``gpu_suite.py`` needs on a machine that can reach nothing: data and wheels.

Run once, from the repository root, on a machine that has ``../shared/data`` (or
``--shared``) and can reach PyPI::

    python benchmarks/gpu_prepare.py            # data into .gl/data, wheels into .whl
    python benchmarks/gpu_prepare.py --no-wheels

Data (``.gl/data``, ignored by git, about 12 MiB):

- ``fmd/noisy.npy`` and ``fmd/clean.npy``: uint8 ``(S, 512, 512)`` FMD Confocal_BPAE_B
  noisy frames of fields 1-12 (the training fields of ``care_fmd.py``; two frames per
  field) and, for each, its field's 50-frame average. FMD states no license: it is
  used here as benchmark input only and never enters the repository.
- ``dsb/train/{images,labels}`` and ``dsb/test/{images,labels}``: DSB2018 fluorescence
  images (CC0) of the stored split ``splits/dsb_detect_split.csv``, PNG as published.

``load_data`` reads that folder back for ``gpu_suite.py``, or makes small synthetic
stand-ins of the same kinds (``--dry-run`` and the test).

Wheels (``.whl``, ignored by git): Python 3.12 manylinux wheels of the packages a bare
GPU machine lacks (its image has torch, lightning, numpy, scipy, scikit-image, tifffile,
rich, typer, safetensors...): microsight's pydantic and zarr, and CAREamics 0.3.5 with
the dependencies it imports (``bioimageio.spec`` / ``bioimageio.core`` among them;
their optional ``imagecodecs``, 28 MB, is left out). Sizes are printed; everything
that travels must stay under 64 MiB.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

REPO = Path(__file__).resolve().parents[1]

# Versions seen installing and running together on the GPU machine's Python 3.12
# (microsight's needs), then CAREamics 0.3.5 and what it imports there.
WHEELS = [
    "pydantic==2.12.5", "pydantic-core==2.41.5", "annotated-types==0.8.0",
    "typing-inspection==0.4.5", "zarr==3.1.6", "numcodecs==0.16.6", "donfig==0.8.1.post1",
    "google-crc32c==1.9.0",
    "careamics==0.3.5", "bioimageio.core==0.11.0", "bioimageio.spec==0.5.12.0",
    "microssim==0.0.5", "genericache==0.5.2", "loguru==0.7.3", "email-validator==2.4.0",
    "dnspython==2.9.2", "pydantic-settings==2.16.3", "python-dotenv==1.2.4",
    "ruyaml==0.91.0", "distro==1.9.0", "platformdirs==4.14.9", "exceptiongroup==1.3.2",
]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]


def prepare_fmd(shared: Path, out: Path, frames_per_field: int) -> None:
    import imageio.v3 as iio

    root = shared / "fmd-confocal-bpae-b"
    noisy, clean = [], []
    for fov in range(1, 13):
        gt = iio.imread(root / "gt" / str(fov) / "avg50.png")
        for path in sorted((root / "raw" / str(fov)).glob("*.png"))[:frames_per_field]:
            noisy.append(iio.imread(path))
            clean.append(gt)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "noisy.npy", np.stack(noisy).astype(np.uint8))
    np.save(out / "clean.npy", np.stack(clean).astype(np.uint8))


def prepare_dsb(shared: Path, out: Path, n_train: int, n_test: int) -> None:
    root = shared / "dsb2018-stage1-train"
    with open(REPO / "benchmarks" / "splits" / "dsb_detect_split.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    chosen = {"train": [r["image_id"] for r in rows if r["split"] == "train"][:n_train],
              "test": [r["image_id"] for r in rows if r["split"] == "test"][:n_test]}
    for split, ids in chosen.items():
        for sub in ("images", "labels"):
            folder = out / split / sub
            folder.mkdir(parents=True, exist_ok=True)
            for i in ids:
                shutil.copyfile(root / sub / f"{i}.png", folder / f"{i}.png")


@dataclass
class Data:
    noisy: np.ndarray  # (S, Y, X) float32
    clean: np.ndarray
    dsb: Path  # folder with train/{images,labels} and test/{images,labels}
    source: str

    def describe(self) -> dict:
        return {"source": self.source, "fmd_frames": list(self.noisy.shape),
                "dsb_train": len(list((self.dsb / "train" / "images").iterdir())),
                "dsb_test": len(list((self.dsb / "test" / "images").iterdir()))}


def _synthetic_dsb(folder: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """Bright disks on a dark background with their label images (DSB fluorescence-like)."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        for sub in ("images", "labels"):
            (folder / split / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            yy, xx = np.mgrid[:96, :96]
            labels = np.zeros((96, 96), np.uint16)
            for k in range(1, 9):
                cy, cx, r = rng.uniform(10, 86), rng.uniform(10, 86), rng.uniform(4, 9)
                labels[((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) & (labels == 0)] = k
            image = (labels > 0) * 150.0 + rng.normal(20, 8, labels.shape)
            tifffile.imwrite(folder / split / "images" / f"s{i}.tif",
                             image.clip(0, 255).astype(np.uint8))
            tifffile.imwrite(folder / split / "labels" / f"s{i}.tif", labels)


def load_data(folder: Path | None, work: Path, size: dict) -> Data:
    """The prepared folder of ``gpu_prepare.py``, or small synthetic stand-ins."""
    if folder is not None:
        noisy = np.load(folder / "fmd" / "noisy.npy").astype(np.float32)
        clean = np.load(folder / "fmd" / "clean.npy").astype(np.float32)
        return Data(noisy, clean, folder / "dsb", f"prepared: {folder}")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128]
    clean = np.stack([100 + 80 * np.sin(xx / (5 + k)) * np.cos(yy / (7 + k)) for k in range(3)])
    noisy = clean + rng.normal(0, 20, clean.shape)
    _synthetic_dsb(work / "dsb", size["seg_images"] or 4, size["seg_test"])
    return Data(noisy.astype(np.float32), clean.astype(np.float32), work / "dsb", "synthetic")


def download_wheels(dest: Path) -> None:
    dest.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.12", "--implementation", "cp", "-d", str(dest)]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    subprocess.run(cmd + WHEELS, check=True)
    wanted = {w.split("==")[0].replace("-", "_").replace(".", "_").lower() for w in WHEELS}
    for wheel in dest.glob("*.whl"):
        # One version of each package: two would stop the whole install there.
        name = wheel.name.split("-")[0].replace(".", "_").lower()
        version = wheel.name.split("-")[1]
        pinned = [w for w in WHEELS
                  if w.split("==")[0].replace("-", "_").replace(".", "_").lower() == name]
        if name not in wanted or (pinned and pinned[0].split("==")[1] != version):
            print(f"removing {wheel.name} (not in the list)")
            wheel.unlink()


def size_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--data", type=Path, default=REPO / ".gl" / "data")
    parser.add_argument("--wheels", type=Path, default=REPO / ".whl")
    parser.add_argument("--no-wheels", action="store_true")
    parser.add_argument("--frames-per-field", type=int, default=2)
    parser.add_argument("--dsb-train", type=int, default=60)
    parser.add_argument("--dsb-test", type=int, default=20)
    args = parser.parse_args()
    if not args.shared.is_dir():
        args.shared = Path("/work/shared/data")
    prepare_fmd(args.shared, args.data / "fmd", args.frames_per_field)
    prepare_dsb(args.shared, args.data / "dsb", args.dsb_train, args.dsb_test)
    print(f"data: {args.data} {size_mib(args.data):.1f} MiB")
    if not args.no_wheels:
        download_wheels(args.wheels)
        print(f"wheels: {args.wheels} {size_mib(args.wheels):.1f} MiB")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                             check=True).stdout.split(b"\0")
    tree = sum((REPO / f.decode()).stat().st_size for f in tracked
               if f and (REPO / f.decode()).is_file()) / 2**20
    total = tree + size_mib(args.data.parent) + (0 if args.no_wheels else size_mib(args.wheels))
    print(f"tracked files {tree:.1f} MiB; with .gl and .whl {total:.1f} MiB (limit 64)")


if __name__ == "__main__":
    main()
