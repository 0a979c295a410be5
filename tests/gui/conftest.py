"""Fixtures of the napari plugin tests: tiny models and layers (napari imported lazily)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_CONFIG, blobs, noisy, write_pairs

# Without the napari extra these tests are not collected at all (each module also
# skips itself with importorskip when run directly).
if importlib.util.find_spec("napari") is None or importlib.util.find_spec("pytestqt") is None:
    collect_ignore_glob = ["test_*.py"]


def nuclei(shape: tuple[int, int], seed: int, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Bright noisy disks and their instance labels."""
    from skimage.draw import disk

    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    for i in range(n):
        centre = rng.uniform(6, np.array(shape) - 6)
        rr, cc = disk(tuple(centre), rng.uniform(3, 6), shape=shape)
        labels[rr, cc] = i + 1
    img = (labels > 0) * 150.0 + rng.normal(20, 10, shape)
    return img.astype(np.float32), labels


@pytest.fixture(scope="session")
def care_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CARE bundle trained for a few steps on tiny pairs."""
    from microsight import api

    root = tmp_path_factory.mktemp("care")
    low, high = write_pairs(root)
    api.train("care", low, high, out=root / "model", config=TINY_CONFIG, progress=False)
    return root / "model"


@pytest.fixture(scope="session")
def seg_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A distance-map instance segmentation bundle trained for a few steps."""
    import tifffile

    from microsight import api

    root = tmp_path_factory.mktemp("seg")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    for i in range(3):
        img, lab = nuclei((48, 48), i)
        tifffile.imwrite(root / "images" / f"n{i}.tif", img)
        tifffile.imwrite(root / "labels" / f"n{i}.tif", lab)
    config = {"name": "tiny-distmap",
              "method": {"method": "distmap", "depth": 1, "base_channels": 8},
              "data": {"patch_size": [32, 32], "batch_size": 4},
              "training": {"epochs": 2, "steps_per_epoch": 8, "val_tile": 32,
                           "learning_rate": 0.003}}
    with warnings.catch_warnings():
        # Three tiny images make a noisy validation set; that is expected here.
        warnings.simplefilter("ignore")
        api.train("distmap", root / "images", root / "labels", out=root / "model",
                  config=config, progress=False)
    return root / "model"


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A noisy 64 x 64 image and its clean version."""
    clean = blobs((64, 64), 3)
    return noisy(clean, 7), clean
