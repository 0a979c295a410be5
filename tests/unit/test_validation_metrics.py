"""Validation shows what fits the method: PSNR for restoration, AP for objects, else the loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microsight.config import available_methods, get_method, validate_config
from microsight.metrics.segmentation import pool_matching
from tests.integration.test_segmentation_methods import nuclei, tiny

PSNR_METHODS = {"care", "n2n", "sr", "care-iso", "labelfree"}


@pytest.mark.parametrize("method", sorted(available_methods()))
def test_psnr_is_shown_only_against_clean_targets(method: str) -> None:
    shown = get_method(method).module_class.val_metrics
    assert ("val_psnr" in shown) == (method in PSNR_METHODS)


@pytest.mark.parametrize("method, extra", [("distmap", {}), ("starconvex", {"n_rays": 16})])
def test_segmentation_validation_scores_objects(method: str, extra: dict) -> None:
    config = validate_config(tiny(method, **extra))
    module = get_method(method).module_class(config, 1, 1)
    assert module.val_metrics == ("val_ap@0.5",)
    images, labels = zip(*(nuclei((48, 48), seed) for seed in (3, 4)), strict=True)
    x = torch.from_numpy(np.stack(images)[:, None].astype(np.float32))
    y = torch.from_numpy(np.stack(labels)[:, None].astype(np.float32))
    # A network that answers with the exact targets finds every object.
    module.forward = lambda inputs: module.prepare_batch(x, y)[1].float()
    module.point_estimate = lambda output: output
    module.on_validation_epoch_start()
    module.validation_step((x, y), 0)
    assert pool_matching(module._val_matches)[0.5]["ap"] == pytest.approx(1.0)
    assert len(module._val_matches) == 2


def test_detection_validation_scores_points() -> None:
    from microsight.data.points import heatmap, make_points

    config = validate_config({**tiny("detect"), "method": {"method": "detect", "depth": 1,
                                                           "base_channels": 4}})
    module = get_method("detect").module_class(config, 1, 1)
    assert module.val_metrics == ("val_f1",)
    points = make_points(np.array([[8.0, 9.0], [30.0, 20.0], [40.0, 41.0]]))
    y = torch.from_numpy(heatmap(points, (48, 48))[None])
    x = torch.zeros_like(y)
    module.forward = lambda inputs: y
    module.point_estimate = lambda output: output
    module.on_validation_epoch_start()
    module.validation_step((x, y), 0)
    (scores,) = module._val_points
    assert scores["tp"] == 3 and scores["f1"] == pytest.approx(1.0)
    # Two of the three points missed.
    module.forward = lambda inputs: torch.from_numpy(heatmap(points[:1], (48, 48))[None])
    module.on_validation_epoch_start()
    module.validation_step((x, y), 0)
    assert module._val_points[0]["tp"] == 1 and module._val_points[0]["fn"] == 2


def test_localization_validation_scores_emitters() -> None:
    from tests.unit.test_method_contract import _tiny

    config = validate_config(_tiny("localize")[0])
    module = get_method("localize").module_class(config, 1, 1)
    assert module.val_metrics == ("val_jaccard", "val_rmse_lateral")
    y = torch.zeros(1, 5, 16, 16)
    for (i, j), (dx, dy) in (((4, 5), (0.2, -0.1)), ((10, 12), (-0.3, 0.25))):
        y[0, 0, i, j], y[0, 1, i, j], y[0, 2, i, j] = 1.0, dx, dy
    # Raw outputs that say exactly the targets: certain detections, the same offsets.
    out = torch.zeros(1, 8, 16, 16)
    out[:, 0] = torch.where(y[:, 0] > 0, 8.0, -8.0)
    out[:, 1:3] = y[:, 1:3]
    module.forward = lambda inputs: out
    module.loss = lambda prediction, target: torch.tensor(0.0)
    module.on_validation_epoch_start()
    module.validation_step((torch.zeros(1, 1, 16, 16), y), 0)
    found, true = (np.concatenate(t) for t in module._val_tables)
    assert len(found) == len(true) == 2
    np.testing.assert_allclose(np.sort(found["x"]), np.sort(true["x"]))
    px = config.method.simulation.pixel_size
    assert np.sort(true["x"])[0] == pytest.approx((5 + 0.5 + 0.2) * px)
