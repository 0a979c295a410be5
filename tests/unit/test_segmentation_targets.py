"""Training targets derived per batch from label patches, and the losses on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microsight.api import build_config
from microsight.config import get_method


def module(method: str, **extra):
    config = build_config(method, {"method": {"method": method, "depth": 1,
                                              "base_channels": 4, **extra},
                                   "data": {"patch_size": [16, 16]}})
    return get_method(method).module_class(config, 1, 1)


def two_touching() -> np.ndarray:
    lab = np.zeros((2, 16, 16), np.int64)
    lab[0, 2:10, 2:8] = 5
    lab[0, 2:10, 8:14] = 9
    return lab  # second patch: background only


def test_unet_seg_classes_background_interior_boundary() -> None:
    m = module("unet-seg", class_weights=[1.0, 1.0, 3.0])
    t = m.make_targets(two_touching())
    assert t.shape == (2, 3, 16, 16) and np.allclose(t.sum(axis=1), 1)
    classes = t.argmax(axis=1)
    assert classes[0, 5, 7] == 2 and classes[0, 5, 8] == 2   # shared border
    assert classes[0, 5, 4] == 1 and classes[0, 0, 0] == 0
    assert (classes[1] == 0).all()
    logits = torch.from_numpy(np.log(t + 1e-3))
    good = m.loss(logits, torch.from_numpy(t))
    assert good < m.loss(torch.zeros_like(logits), torch.from_numpy(t))


def test_unet_seg_two_classes_and_class_maps() -> None:
    m = module("unet-seg", n_classes=2, class_weights="none")
    assert m.make_targets(two_touching()).shape == (2, 2, 16, 16)
    with pytest.raises(Exception, match="n_classes"):
        module("unet-seg", n_classes=4)
    m = module("unet-seg", n_classes=4, targets="classes", class_weights="none")
    classes = np.zeros((1, 16, 16), np.int64)
    classes[0, :4] = 3
    assert m.make_targets(classes).argmax(axis=1)[0, 0, 0] == 3


def test_starconvex_targets_follow_flips() -> None:
    """Targets computed on a flipped patch equal the flipped targets with rays mirrored."""
    m = module("starconvex", n_rays=8)
    lab = np.zeros((1, 16, 16), np.int64)
    lab[0, 3:9, 2:12] = 1
    t = m.make_targets(lab)
    assert t.shape == (1, 9, 16, 16)
    flipped = m.make_targets(lab[:, :, ::-1].copy())
    # Mirroring x maps ray angle a to pi - a: ray k -> ray (n/2 - k) mod n.
    perm = [(4 - k) % 8 for k in range(8)]
    assert np.allclose(flipped[0, 0], t[0, 0, :, ::-1])
    assert np.allclose(flipped[0, 1:], t[0, 1:][perm][:, :, ::-1])
    assert float(m.loss(torch.zeros(1, 9, 16, 16), torch.from_numpy(t))) > 0


def test_distmap_targets() -> None:
    m = module("distmap")
    t = m.make_targets(two_touching())
    assert t.shape == (2, 2, 16, 16)
    assert t[0, 0].sum() == 96 and t[0, 1].max() == pytest.approx(1.0)
    assert t[0, 1, 5, 7] < t[0, 1, 5, 5]


def test_labels_with_intensity_jitter_are_refused(tmp_path) -> None:
    from microsight.errors import MicrosightError

    cls = get_method("distmap").module_class
    config = build_config("distmap", {"data": {"intensity_jitter": 0.2}})
    with pytest.raises(MicrosightError, match="intensity_jitter"):
        cls.prepare_training(config, tmp_path, tmp_path)
