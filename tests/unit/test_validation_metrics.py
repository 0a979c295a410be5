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
