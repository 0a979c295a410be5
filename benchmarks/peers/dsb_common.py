"""Data and output helpers shared by the segmentation peer runners (StarDist, Cellpose).

Imported by ``stardist_runner.py``, ``cellpose_runner.py`` and ``score_peers.py``, which
run in the peers' own virtual environments (``bench_out/peers-venvs/``), so this module
uses only numpy, tifffile and a PNG reader that both environments have (imageio, or
OpenCV where imageio is missing). It does not import microsight.

Output layout (read by the segmentation benchmark)::

    bench_out/seg_peers/<tool>/<split>/<image_id>.tif   uint16/uint32 instance labels
    bench_out/seg_peers/<tool>/times.json              budget, thresholds, timings
    bench_out/seg_peers/<tool>/peer_scores.json        StarDist matching_dataset scores
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import tifffile

REPO = Path(__file__).resolve().parents[2]
DATA = Path("/work/shared/data/dsb2018-stage1-train")
SPLIT = REPO / "benchmarks" / "splits" / "dsb_detect_split.csv"
OUT = REPO / "bench_out" / "seg_peers"
IOU_THRESHOLDS = (0.5, 0.7, 0.75, 0.9)


def read_split(path: Path = SPLIT, limit: int | None = None) -> dict[str, list[str]]:
    """Image ids per split (train/val/test) from the stored split CSV.

    Parameters
    ----------
    path : Path
        CSV with columns ``image_id, split``.
    limit : int, optional
        Keep only the first ``limit`` ids of every split (smoke runs).

    Returns
    -------
    dict
        ``{"train": [...], "val": [...], "test": [...]}`` in file order.
    """
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            out[row["split"]].append(row["image_id"])
    if limit:
        out = {k: v[:limit] for k, v in out.items()}
    return out


def _read_png(path: Path) -> np.ndarray:
    try:
        import imageio.v3 as iio
        return np.asarray(iio.imread(path))
    except ImportError:
        import cv2  # the Cellpose environment has OpenCV but not imageio
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise FileNotFoundError(path) from None
        return img


def load_image(image_id: str, data: Path = DATA) -> np.ndarray:
    """The 2D float32 image (channels averaged if a grayscale image was stored as RGB)."""
    img = _read_png(data / "images" / f"{image_id}.png").astype(np.float32)
    return img.mean(axis=-1) if img.ndim == 3 else img


def load_labels(image_id: str, data: Path = DATA) -> np.ndarray:
    """The 2D instance label image (0 = background)."""
    return _read_png(data / "labels" / f"{image_id}.png").astype(np.int32)


def write_labels(labels: np.ndarray, path: Path) -> None:
    """Write an instance label image as a compressed TIFF (uint16 when it fits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels)
    dtype = np.uint16 if labels.max(initial=0) < 65536 else np.uint32
    tifffile.imwrite(path, labels.astype(dtype), compression="zlib")


def read_labels(path: Path) -> np.ndarray:
    """Read a label TIFF written by :func:`write_labels`."""
    return tifffile.imread(path).astype(np.int32)


def predict_split(predict, ids: list[str], folder: Path, data: Path = DATA) -> dict:
    """Predict every image of one split, write its labels and time the predictions.

    Parameters
    ----------
    predict : callable
        ``predict(image) -> labels`` on a raw 2D float32 image.
    ids : list of str
        Image ids of the split.
    folder : Path
        Output folder of the split (``<tool>/<split>``).
    data : Path
        Data set root.

    Returns
    -------
    dict
        ``n_images``, ``megapixels``, ``seconds`` (prediction calls only, excluding file
        I/O) and ``mpx_per_s``.
    """
    seconds, pixels = 0.0, 0
    for image_id in ids:
        img = load_image(image_id, data)
        t0 = time.perf_counter()
        labels = predict(img)
        seconds += time.perf_counter() - t0
        pixels += img.size
        write_labels(labels, folder / f"{image_id}.tif")
    mpx = pixels / 1e6
    return {"n_images": len(ids), "megapixels": round(mpx, 3), "seconds": round(seconds, 2),
            "seconds_per_mpx": round(seconds / mpx, 3) if mpx else None,
            "mpx_per_s": round(mpx / seconds, 4) if seconds else None}


def write_json(obj: dict, path: Path) -> None:
    """Write ``obj`` as indented JSON (creating the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")
