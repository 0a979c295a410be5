"""The label-free module: 2D/3D networks and the simultaneous generator/critic update."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from microsight.api import build_config
from microsight.engine.sampling import PatchSampler
from microsight.methods.labelfree.module import LabelfreeModule, _bce


def module(ndim: int, gan: bool, patch: list[int]) -> LabelfreeModule:
    method = {"method": "labelfree", "ndim": ndim, "depth": 1, "base_channels": 4}
    if gan:
        method.update(gan=True, refine_from="unused", disc_channels=4, disc_layers=2)
    cfg = build_config("labelfree", {"method": method,
                                     "data": {"patch_size": patch, "batch_size": 2}})
    return LabelfreeModule(cfg, in_channels=3, out_channels=2)


@pytest.mark.parametrize(("ndim", "patch"), [(2, [16, 16]), (3, [8, 16, 16])])
def test_multichannel_in_and_out_in_2d_and_3d(ndim, patch):
    mod = module(ndim, gan=False, patch=patch)
    x = torch.rand((1, 3, *patch))
    assert mod(x).shape == (1, 2, *patch)


def test_gan_step_gives_each_network_only_its_own_gradient():
    torch.manual_seed(0)
    mod = module(2, gan=True, patch=[16, 16])
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (3, 24, 24)).astype(np.float32)
    y = rng.uniform(0, 1, (2, 24, 24)).astype(np.float32)
    mod.attach_sampler(PatchSampler([x], [y], (16, 16), 2, seed=0))
    mod.sampler.reseed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log outside a Trainer
        mod.training_step(None, 0).backward()
    gen = {k: p.grad.clone() for k, p in mod.network.named_parameters()}
    disc = {k: p.grad.clone() for k, p in mod.discriminator.named_parameters()}
    assert all(p.grad is None for p in mod.reference.parameters())

    # Recompute each network's own objective on the same batch, separately.
    mod.zero_grad()
    mod.sampler.reseed(0)
    bx, by = mod.sampler.sample()
    fake = mod(bx)
    w = mod.config.method.gan_weight
    g_obj = mod.loss(fake, by) + w * _bce(mod.discriminator(torch.cat([bx, fake], 1)), True)
    g_grads = torch.autograd.grad(g_obj, list(mod.network.parameters()))
    d_obj = 0.5 * (_bce(mod.discriminator(torch.cat([bx, by], 1)), True)
                   + _bce(mod.discriminator(torch.cat([bx, fake.detach()], 1)), False))
    d_grads = torch.autograd.grad(d_obj, list(mod.discriminator.parameters()))
    for (k, _), g in zip(mod.network.named_parameters(), g_grads, strict=True):
        assert torch.allclose(gen[k], g, atol=1e-6), k
    for (k, _), g in zip(mod.discriminator.named_parameters(), d_grads, strict=True):
        assert torch.allclose(disc[k], g, atol=1e-6), k
