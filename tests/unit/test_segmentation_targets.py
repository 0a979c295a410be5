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
    assert t.shape == (2, 3, 16, 16)
    assert t[0, 0].sum() == 96 and t[0, 1].max() == pytest.approx(1.0)
    assert t[0, 1, 5, 7] < t[0, 1, 5, 5]
    assert (t[:, 2] == 1).all()  # no contact weighting by default
    assert float(m.loss(torch.zeros(2, 2, 16, 16), torch.from_numpy(t))) > 0


def test_contact_zones_mark_where_touching_objects_meet() -> None:
    from microsight.data.shapes import contact_zones

    lab = two_touching()[0]
    zone = contact_zones(lab, radius=2)
    # Columns 6-9 lie within 2 px of both objects (rows 2-9), up to 2 rows beyond them.
    assert zone[0:12, 6:10].all() and zone.sum() == 12 * 4
    alone = np.zeros((16, 16), np.int64)
    alone[2:10, 2:8] = 3
    assert not contact_zones(alone).any()

    m = module("distmap", contact_weight=4.0)
    t = m.make_targets(two_touching())
    assert t[0, 2, 5, 7] == 5.0 and t[0, 2, 5, 3] == 1.0 and (t[1, 2] == 1).all()
    # The weighted loss counts a mistake at the contact more than one elsewhere.
    out = torch.full((1, 2, 16, 16), -8.0)
    out[:, :, 2:10, 2:14] = 8.0
    target = torch.from_numpy(t[:1])
    at_contact, elsewhere = out.clone(), out.clone()
    at_contact[0, 0, 5, 7] = -8.0
    elsewhere[0, 0, 5, 3] = -8.0
    assert float(m.loss(at_contact, target)) > float(m.loss(elsewhere, target))


def test_labels_with_intensity_jitter_are_refused(tmp_path) -> None:
    from microsight.errors import MicrosightError

    cls = get_method("distmap").module_class
    config = build_config("distmap", {"data": {"intensity_jitter": 0.2}})
    with pytest.raises(MicrosightError, match="intensity_jitter"):
        cls.prepare_training(config, tmp_path, tmp_path)
