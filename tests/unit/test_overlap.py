"""Unit tests for microsight.data.overlap (train/validation duplicate patches)."""

from __future__ import annotations

import numpy as np

from microsight.data.overlap import check_split, find_overlap
from tests.conftest import blobs


def _item(seed: int, shape=(64, 64)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (blobs(shape, seed) + rng.normal(0, 5, shape)).astype(np.float32)[None]


def test_distinct_images_share_no_patch():
    train = [_item(0), _item(1)]
    val = [_item(2)]
    res = find_overlap(train, val, patch_size=(16, 16))
    assert res.val_patches == 16
    assert not res.found


def test_exact_duplicate_patch_is_found():
    train = [_item(0), _item(1)]
    val = _item(2)
    val[0, 16:32, 32:48] = train[1][0, 32:48, 0:16]  # one patch copied verbatim
    res = find_overlap(train, [val], patch_size=(16, 16))
    assert len(res.exact) == 1
    val_item, val_patch, train_item, train_patch = res.exact[0]
    assert (val_item, train_item) == (0, 1)
    assert val_patch == 1 * 4 + 2 and train_patch == 2 * 4 + 0  # row-major grid index
    assert res.near == []


def test_near_duplicate_another_noise_realization_is_found():
    rng = np.random.default_rng(5)
    clean = blobs((64, 64), 3)
    train = [(clean + rng.normal(0, 5, clean.shape)).astype(np.float32)[None], _item(1)]
    # The same field of view captured again: new noise, slight gain change.
    val = [(1.1 * clean + rng.normal(0, 5, clean.shape)).astype(np.float32)[None]]
    res = find_overlap(train, val, patch_size=(32, 32))
    assert not res.exact
    structured = [n for n in res.near if n[2] == 0 and n[1] == n[3]]
    assert len(structured) >= 2  # patches with blobs match their own position
    assert all(c >= 0.98 for *_, c in res.near)


def test_flat_background_is_not_a_duplicate():
    train = [np.zeros((1, 32, 32), np.float32)]
    val = [np.zeros((1, 32, 32), np.float32)]
    res = find_overlap(train, val, patch_size=(16, 16))
    assert res.val_patches == 0 and not res.found


def test_check_split_warns_about_leaks_and_small_validation():
    a, b = _item(0), _item(1)
    warnings, counts = check_split(
        [a, b], [a.copy()], patch_size=(16, 16), train_targets=[a, b], val_targets=[a.copy()]
    )
    # Checked in 32-pixel patches: four per 64x64 image.
    assert counts["inputs"]["exact_duplicates"] == 4
    assert counts["targets"]["exact_duplicates"] == 4
    assert any("identical" in w and "inputs" in w for w in warnings)
    small, _ = check_split([a, b], [a[:, :16, :32]], patch_size=(16, 16))
    assert any("validation set holds 2.0 patches" in w for w in small)
    clean, _ = check_split([a], [b], patch_size=(16, 16))
    assert clean == []
