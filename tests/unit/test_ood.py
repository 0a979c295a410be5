"""Out-of-distribution descriptor and scores on tiny synthetic data (no training)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from microsight.api import build_config
from microsight.config import get_method
from microsight.engine.ood import (
    fit_descriptor,
    fit_ppca,
    patch_regions,
    ppca_distance,
    save_descriptor,
    stats_distance,
)
from microsight.metrics.ood import auroc, detection_rate, spearman
from tests.conftest import TINY_CONFIG, blobs, noisy


def _module():
    torch.manual_seed(0)
    cfg = build_config("care", {**TINY_CONFIG, "method": {**TINY_CONFIG["method"],
                                                          "residual": False}})
    return get_method("care").module_class(cfg, 1, 1).eval(), cfg


def _normalized(img: np.ndarray) -> np.ndarray:
    return (img / 200.0).astype(np.float32)[None]


def test_auroc_and_spearman():
    assert auroc([0, 1, 2], [3, 4]) == 1.0
    assert auroc([3, 4], [0, 1, 2]) == 0.0
    assert auroc([1, 1], [1, 1]) == 0.5
    assert spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    rates = detection_rate([0.5, 2.0], [3.0, 0.1, 4.0])
    assert rates == {"false_alarm_rate": 0.5, "detection_rate": pytest.approx(2 / 3)}


def test_patch_regions_are_evenly_spread_and_inside():
    regions = patch_regions((100, 60), (32, 32), 4, n=5)
    assert 1 <= len(regions) <= 5
    for r in regions:
        assert r[0].stop <= 100 and r[1].stop <= 60
        assert r[0].stop - r[0].start == 32
    assert patch_regions((3, 60), (32, 32), 4) == []  # smaller than the divisor


def test_ppca_distance_grows_away_from_the_training_cloud():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 10)) * np.linspace(3, 0.1, 10)
    model = fit_ppca(x, k=4)
    near = ppca_distance(model, rng.normal(size=(50, 10)) * np.linspace(3, 0.1, 10))
    far = ppca_distance(model, rng.normal(size=(50, 10)) + 5)
    assert near.mean() < 2 < far.min()
    z = stats_distance({"mean": [0.0, 0.0], "std": [1.0, 2.0]}, np.array([[1.0, -6.0]]))
    assert z[0] == pytest.approx(3.0)


def test_descriptor_separates_shifted_images(tmp_path):
    module, cfg = _module()
    train = [_normalized(noisy(blobs((48, 48), i), 10 + i)) for i in range(8)]
    desc = fit_descriptor(module, train, (16, 16), normalization_mode="dataset")
    assert desc["features"]["dim"] == 2 * 4 * 2 ** cfg.method.depth  # mean+std of bottleneck
    assert desc["intensity"]["threshold"] >= 3.0 and desc["features"]["threshold"] > 0
    path = save_descriptor(tmp_path, desc)
    stored = json.loads(path.read_text())
    assert stored["features"]["dim"] == desc["features"]["dim"]

    from microsight.engine.bundle import Model
    model = Model(cfg, module, {"mode": "dataset", "p_low": 1, "p_high": 99.8,
                                "input": {"low": [0.0], "high": [200.0]},
                                "target": {"low": [0.0], "high": [200.0]}}, {}, ood=stored)
    from microsight.engine.ood import score_item

    inside = [score_item(model, noisy(blobs((48, 48), 50 + i), 70 + i)[None])["score"]
              for i in range(4)]
    squares = np.kron(np.random.default_rng(1).integers(0, 2, (6, 6)), np.ones((8, 8))) * 200
    outside = [score_item(model, 10 * noisy(blobs((48, 48), 60), 80)[None])["score"],
               score_item(model, squares[None].astype(np.float32))["score"]]
    assert max(inside) < 1 < min(outside)
    assert auroc(inside, outside) == 1.0


def test_threshold_calibration_holds_out_whole_fields():
    from microsight.engine.ood import _cross_fitted, _threshold, fit_stats

    # 12 fields x 8 frames stored field by field: frames of a field differ by a little
    # noise, fields differ by much more. Cross-fitting must see the field-to-field
    # spread, or new fields of the same kind would all be flagged.
    rng = np.random.default_rng(0)
    fields = rng.normal(0, 1, (13, 3))
    rows = np.repeat(fields[:12], 8, axis=0) + rng.normal(0, 0.01, (96, 3))
    scores = _cross_fitted(rows, np.arange(96), fit_stats, stats_distance)
    threshold = _threshold(scores)
    new_field = fields[12] + rng.normal(0, 0.01, (8, 3))
    assert np.all(stats_distance(fit_stats(rows), new_field) < threshold)


def test_log_range_flags_dimmed_images_among_widely_varying_brightness():
    from microsight.engine.ood import intensity_stats

    # Training brightness spans 8x (multiplicatively): on a linear scale a 10x dimmer
    # image sits next to the dimmest training images; on the log scale it stands apart.
    rng = np.random.default_rng(0)
    gains = np.exp(rng.uniform(np.log(0.25), np.log(2.0), 40))
    train = np.stack([intensity_stats(g * _normalized(noisy(blobs((48, 48), i), i)))
                      for i, g in enumerate(gains)])
    names = ("p99", "log_range")
    model = {"mean": train.mean(0), "std": train.std(0)}
    dim = intensity_stats(0.1 * 0.25 * _normalized(noisy(blobs((48, 48), 99), 99)))
    z = np.abs((dim - model["mean"]) / model["std"])
    z_by_name = dict(zip(("p1", "p50", "p99", "mean", "std", "noise", "log_range"), z,
                         strict=True))
    assert z_by_name["log_range"] > 3 > z_by_name["p99"]
    # Descriptors written before log_range existed are scored on their own statistics.
    from microsight.engine.ood import descriptor_stat_names

    old = ("p1", "p50", "p99", "mean", "std", "noise")
    desc = {"intensity": {"names": [f"c{c}_{n}" for c in range(2) for n in old]}}
    assert descriptor_stat_names(desc) == (old, 2)
    two = np.concatenate([_normalized(blobs((48, 48), 1))] * 2)
    assert intensity_stats(two, names).shape == (4,)
