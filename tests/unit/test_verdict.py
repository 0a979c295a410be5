"""The verdict rule on constructed evaluations: clearly better, within noise, worse."""

from __future__ import annotations

import numpy as np
import pytest

from microsight.qc.verdict import network_verdict


def _rows(network: list[float], baselines: dict[str, list[float]], metric: str = "psnr"
          ) -> list[dict]:
    rows = [{"image": f"im{i}", "source": "network", metric: v} for i, v in enumerate(network)]
    for name, values in baselines.items():
        rows += [{"image": f"im{i}", "source": name, metric: v} for i, v in enumerate(values)]
    return rows


def test_clearly_better_against_the_best_baseline():
    rng = np.random.default_rng(0)
    base = rng.normal(30, 2, 12)
    rows = _rows(list(base + 2 + rng.normal(0, 0.3, 12)),
                 {"gaussian": list(base), "input": list(base - 5)})
    v = network_verdict(rows, "psnr")
    assert v.kind == "clearly better" and v.baseline == "gaussian"
    assert v.ci95[0] > 0 and v.difference == pytest.approx(2, abs=0.3)
    assert "clearly better" in v.text and "gaussian" in v.text and v.level == "ok"


def test_within_noise_when_the_interval_contains_zero():
    rng = np.random.default_rng(1)
    base = rng.normal(30, 2, 12)
    rows = _rows(list(base + rng.normal(0, 1, 12)), {"gaussian": list(base)})
    v = network_verdict(rows, "psnr")
    assert v.kind == "within noise" and v.ci95[0] < 0 < v.ci95[1]


def test_worse_and_lower_is_better_metrics():
    base = np.linspace(0.1, 0.2, 8)
    # NRMSE: lower is better; the network's errors are larger.
    rows = _rows(list(base + 0.05), {"gaussian": list(base)}, metric="nrmse")
    v = network_verdict(rows, "nrmse")
    assert v.kind == "worse: do not use" and v.level == "bad" and v.difference < 0
    assert "lower is better" in v.text


def test_too_few_images_and_no_baseline():
    one = network_verdict(_rows([35.0], {"gaussian": [30.0]}), "psnr")
    assert one.kind == "within noise" and "no interval" in one.text
    none = network_verdict(_rows([35.0, 36.0, 37.0], {}), "psnr")
    assert none.kind == "no baseline"
