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
