"""Tiny synthetic data and tiny models: the whole suite runs in minutes on 2 CPU cores."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

TINY_CONFIG = {
    "name": "tiny",
    "method": {"method": "care", "depth": 1, "base_channels": 4},
    "data": {"patch_size": [16, 16], "batch_size": 4},
    "training": {"epochs": 2, "steps_per_epoch": 3, "val_tile": 32},
}


def blobs(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Smooth bright blobs on a dark background, like nuclei (float32, 0-200)."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    img = np.zeros(shape, np.float32)
    for _ in range(6):
        centre = [rng.uniform(0, s) for s in shape]
        d2 = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True))
        img += 200 * np.exp(-d2 / (2 * rng.uniform(2, 5) ** 2))
    return np.clip(img, 0, 200)


def noisy(clean: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (clean + rng.normal(0, 20, clean.shape)).astype(np.float32)


def write_pairs(root: Path, n: int = 3) -> tuple[Path, Path]:
    """Folders low/ and high/ under ``root`` with ``n`` 48x48 pairs paired by name."""
    low, high = root / "low", root / "high"
    low.mkdir()
    high.mkdir()
    for i in range(n):
        clean = blobs((48, 48), i)
        tifffile.imwrite(low / f"im{i}.tif", noisy(clean, 10 + i))
        tifffile.imwrite(high / f"im{i}.tif", clean)
    return low, high


@pytest.fixture
def pair_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Folders low/ and high/ with three 48x48 pairs paired by name."""
    return write_pairs(tmp_path)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory):
    """A CARE model trained for a few steps on tiny data, shared by the tests."""
    from microsight import train

    root = tmp_path_factory.mktemp("tiny")
    low, high = write_pairs(root)
    model = train("care", low, high, out=root / "model", config=TINY_CONFIG, progress=False)
    return model, low, high


@pytest.fixture
def plugin_root(tmp_path, monkeypatch):
    """A model distribution holding one tiny distmap model called 'tiny-nuclei'."""
    root = tmp_path / "models_dist"
    folder = root / "tiny-nuclei"
    shutil.copytree(Path(__file__).parent / "data" / "bundles_cf7f17a" / "distmap", folder)
    card = {"name": "tiny-nuclei", "aliases": ["tiny"], "task": "nuclei (test)",
            "method": "distmap", "data": "synthetic blobs",
            "metrics": {"validation": {"img AP@0.5": 0.5}, "test": {"img AP@0.5": 0.25,
                                                                    "img AP@0.75": 0.125}}}
    (folder / "pretrained.yaml").write_text(yaml.safe_dump(card))
    import microsight.pretrained as pretrained

    monkeypatch.setattr(pretrained, "_plugin_roots", lambda: [root])
    return folder
