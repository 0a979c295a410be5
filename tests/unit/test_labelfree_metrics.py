"""Label-free metrics, losses and the PatchGAN discriminator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microsight.errors import MicrosightError
from microsight.methods.labelfree.losses import pixel_loss, ssim_loss
from microsight.metrics.labelfree import (
    abs_error_map,
    labelfree_metrics,
    pearson_r,
    per_target_metrics,
)
from microsight.nn.patchgan import PatchDiscriminator


def test_pearson_is_invariant_to_gain_and_offset():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(32, 32))
    assert pearson_r(3 * t + 7, t) == pytest.approx(1.0)
    assert pearson_r(-t, t) == pytest.approx(-1.0)
    assert pearson_r(np.ones_like(t), t) == 0.0
    noisy = t + rng.normal(size=t.shape)
    assert pearson_r(noisy, t) == pytest.approx(np.corrcoef(noisy.ravel(), t.ravel())[0, 1])


def test_pearson_rejects_bad_input():
    with pytest.raises(MicrosightError, match="shapes differ"):
        pearson_r(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(MicrosightError, match="NaN"):
        pearson_r(np.full((4, 4), np.nan), np.zeros((4, 4)))


def test_perfect_prediction_scores_perfectly_and_noise_lowers_it():
    rng = np.random.default_rng(1)
    t = rng.uniform(0, 100, (40, 40))
    perfect = labelfree_metrics(t, t)
    assert perfect["pearson"] == pytest.approx(1.0)
    assert perfect["ssim"] == pytest.approx(1.0)
    assert perfect["nrmse"] == pytest.approx(0.0)
    worse = labelfree_metrics(t + rng.normal(0, 30, t.shape), t)
    assert worse["pearson"] < 0.99 and worse["ssim"] < 0.9 and worse["nrmse"] > 0.05


def test_per_target_metrics_names_every_target():
    rng = np.random.default_rng(2)
    t = rng.uniform(0, 1, (2, 24, 24))
    pred = t.copy()
    pred[1] = rng.uniform(0, 1, (24, 24))  # second target unrelated
    m = per_target_metrics(pred, t, ["DAPI", "MAP2"])
    assert m["pearson DAPI"] == pytest.approx(1.0)
    assert abs(m["pearson MAP2"]) < 0.3
    assert m["pearson"] == pytest.approx((m["pearson DAPI"] + m["pearson MAP2"]) / 2)
    with pytest.raises(MicrosightError, match="one name per channel"):
        per_target_metrics(pred, t, ["DAPI"])


def test_abs_error_map():
    err = abs_error_map(np.array([[1.0, 5.0]]), np.array([[3.0, 5.0]]))
    assert err.dtype == np.float32 and err.tolist() == [[2.0, 0.0]]


@pytest.mark.parametrize("kind", ["mse", "l1", "ssim_l1"])
def test_pixel_losses_vanish_on_equal_images_and_have_gradients(kind):
    t = torch.rand(2, 3, 24, 24)
    assert float(pixel_loss(kind, t, t)) == pytest.approx(0.0, abs=1e-5)
    p = (t + 0.2 * torch.randn_like(t)).requires_grad_(True)
    loss = pixel_loss(kind, p, t)
    loss.backward()
    assert float(loss) > 0 and p.grad.abs().sum() > 0


def test_ssim_loss_in_3d_and_on_thin_stacks():
    t = torch.rand(1, 1, 5, 16, 16)
    assert float(ssim_loss(t, t)) == pytest.approx(0.0, abs=1e-5)
    assert float(ssim_loss(torch.rand_like(t), t)) > 0.5


@pytest.mark.parametrize("ndim", [2, 3])
def test_patch_discriminator_shapes(ndim):
    disc = PatchDiscriminator(ndim, 4, base_channels=4, layers=2)
    x = torch.rand((2, 4) + (16,) * ndim)
    out = disc(x)
    assert out.shape == (2, 1) + (4,) * ndim
    assert disc.min_size == 8
