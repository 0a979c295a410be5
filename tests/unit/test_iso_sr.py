"""Pair generators, SR networks, scaled tiled prediction and block-aligned patch sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from microsight.api import build_config
from microsight.data.degrade import (
    degrade_axis,
    make_iso_pairs,
    make_sr_pairs,
    resample_axis,
    upsample_nearest,
)
from microsight.data.pairs import split_items
from microsight.engine.predict import TiledPredictor, TileSettings
from microsight.engine.sampling import PatchSampler
from microsight.errors import MicrosightError
from microsight.methods.sr.module import SRModule, _align_single_split
from microsight.nn.rcan import RCAN

# --- care-iso pairs ------------------------------------------------------------------


def _lines(shape: tuple[int, int], axis: int) -> np.ndarray:
    """Stripes that vary along ``axis`` only (period 6 pixels)."""
    ramp = (np.arange(shape[axis]) % 6 < 2).astype(np.float32)
    return np.broadcast_to(ramp[:, None] if axis == 0 else ramp[None, :], shape).copy()


def test_iso_pairs_shapes_and_targets():
    rng = np.random.default_rng(0)
    stack = rng.random((4, 16, 24)).astype(np.float32)
    inputs, targets = make_iso_pairs(stack, 3.0, 1.5)
    assert len(inputs) == len(targets) == 8
    assert [t.shape for t in targets] == [(16, 24)] * 4 + [(24, 16)] * 4
    assert all(i.shape == t.shape and i.dtype == np.float32 for i, t in
               zip(inputs, targets, strict=True))
    np.testing.assert_array_equal(targets[1], stack[1])
    np.testing.assert_array_equal(targets[5], stack[1].T)
    channels_first = make_iso_pairs(stack[None], 3.0, 1.5, transpose=False)
    assert len(channels_first[0]) == 4 and channels_first[0][0].shape == (1, 16, 24)
    np.testing.assert_allclose(channels_first[0][2][0], inputs[2], atol=1e-6)


def test_iso_degradation_acts_along_one_axis_only():
    across = _lines((30, 36), axis=1)  # stripes varying along X: degraded
    along = _lines((30, 36), axis=0)  # stripes varying along Y: untouched by X blur
    stack = np.stack([across, along])
    inputs, targets = make_iso_pairs(stack, 3.0, 1.5)
    np.testing.assert_array_equal(targets[0], across)
    # Blurred along X: contrast lost, but still constant along Y (no blur along Y).
    assert np.ptp(inputs[0]) < 0.8 * np.ptp(across)
    np.testing.assert_allclose(inputs[0], inputs[0][:1].repeat(30, 0), atol=1e-6)
    np.testing.assert_allclose(inputs[1], along, atol=1e-5)
    # The transposed planes swap roles: now the Y stripes are degraded, the X ones are not.
    np.testing.assert_allclose(inputs[2], across.T, atol=1e-5)
    assert np.abs(inputs[3] - along.T).max() > 0.2


def test_resample_axis_pixel_area_grid():
    up = resample_axis(np.arange(4, dtype=np.float32), 0, 8, order=1)
    np.testing.assert_allclose(up, [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])
    nearest = resample_axis(np.arange(4, dtype=np.float32), 0, 8, order=0)
    np.testing.assert_array_equal(nearest, [0, 0, 1, 1, 2, 2, 3, 3])
    flat = np.full((5, 7), 2.5, np.float32)
    np.testing.assert_allclose(degrade_axis(flat, -1, 2.5, 1.0), flat, atol=1e-6)


# --- sr pairs, networks -------------------------------------------------------------


def test_sr_pairs_shapes_and_block_average():
    rng = np.random.default_rng(1)
    image = rng.random((1, 50, 41)).astype(np.float32)
    inputs, targets = make_sr_pairs([image], 4, 2.0)
    assert targets[0].shape == (1, 48, 40) and inputs[0].shape == (1, 12, 10)
    exact, _ = make_sr_pairs([image], 2, 0.0)
    np.testing.assert_allclose(exact[0][0, 0, 0], image[0, :2, :2].mean(), rtol=1e-6)
    assert upsample_nearest(inputs[0], 4).shape == targets[0].shape


def _sr_module(network: str, factor: int, depth: int = 2) -> SRModule:
    torch.manual_seed(0)
    cfg = build_config("sr", {"method": {"method": "sr", "network": network, "factor": factor,
                                         "depth": depth, "base_channels": 4, "channels": 8,
                                         "n_groups": 1, "n_blocks": 2, "reduction": 4}},
                       data={"patch_size": [factor * 8] * 2})
    return SRModule(cfg, 1, 1).eval()


@pytest.mark.parametrize("network", ["unet", "rcan"])
@pytest.mark.parametrize("factor", [2, 4])
def test_sr_network_output_shape(network, factor):
    module = _sr_module(network, factor)
    with torch.no_grad():
        out = module(torch.rand(2, 1, 12, 16))
    assert out.shape == (2, 1, 12 * factor, 16 * factor)
    assert module.output_scale == factor and module.divisor % factor == 0


def test_rcan_starts_as_bicubic_and_maps_channels():
    x = torch.rand(1, 1, 10, 10)
    with torch.no_grad():
        out = RCAN(factor=3, n_groups=1, n_blocks=1, channels=8, reduction=4)(x)
        multi = RCAN(2, 1, factor=2, n_groups=1, n_blocks=1, channels=8, residual=False)(
            torch.rand(1, 2, 10, 10))
    bicubic = F.interpolate(x, scale_factor=3, mode="bicubic", align_corners=False)
    torch.testing.assert_close(out, bicubic)
    assert multi.shape == (1, 1, 20, 20)


def test_sr_config_checks_patch_multiple():
    with pytest.raises(MicrosightError, match="multiples of 6"):
        build_config("sr", {"method": {"method": "sr", "factor": 3, "depth": 1}},
                     data={"patch_size": [32, 32]})
    assert build_config("care-iso").method.item_ndim == 3


# --- tiled prediction with an output scale --------------------------------------------


def _run_scaled(module, image, settings):
    k = module.output_scale
    out = np.zeros((1, *(s * k for s in image.shape[1:])), np.float32)

    def write(region, block):
        out[(slice(None),) + region] = block

    TiledPredictor(module, settings).run(image.shape[1:], lambda r: image[(slice(None),) + r],
                                         write)
    return out


@pytest.mark.parametrize("network", ["unet", "rcan"])
def test_scaled_single_tile_equals_whole_image(network):
    module = _sr_module(network, 2)
    image = np.random.default_rng(0).normal(size=(1, 18, 22)).astype(np.float32)
    tiled = _run_scaled(module, image, TileSettings((64, 64), (8, 8)))
    d = module.divisor
    pad = [(0, 0)] + [(0, -(-s // d) * d - s) for s in image.shape[1:]]
    with torch.no_grad():
        whole = module(torch.from_numpy(np.pad(image, pad, mode="reflect"))[None])[0].numpy()
    np.testing.assert_allclose(tiled, whole[:, :36, :44], atol=1e-4)


def test_scaled_many_tiles_shape_and_blend():
    module = _sr_module("unet", 2)
    image = np.random.default_rng(1).normal(size=(1, 28, 24)).astype(np.float32)
    whole = _run_scaled(module, image, TileSettings((64, 64), (8, 8)))
    tiled = _run_scaled(module, image, TileSettings((16, 16), (6, 6), batch_size=3))
    assert tiled.shape == whole.shape == (1, 56, 48)
    assert np.abs(tiled - whole).mean() < 0.05 * np.abs(whole).mean() + 1e-3


def test_default_tiles_are_output_sized_for_scaled_modules():
    default = TileSettings.default(2)
    assert default.for_scale(4).tile == tuple(t // 4 for t in default.tile)
    assert default.for_scale(4).overlap == tuple(o // 4 for o in default.overlap)
    assert default.for_scale(1) is default
    asked = TileSettings.default(2, tile=64)
    assert asked.for_scale(4).tile == (64, 64)


# --- training patches: low-resolution pixels aligned with the target ---------------------


@pytest.mark.parametrize("factor", [2, 3])
def test_block_aligned_sampling_after_flips_and_rotations(factor):
    rng = np.random.default_rng(2)
    low = rng.permutation(100).reshape(1, 10, 10).astype(np.float32)  # unique values
    high = upsample_nearest(low, factor)
    args = ([high.copy()], [high], (4 * factor,) * 2, 64)
    kw = {"flips": True, "rotations": True, "foreground_fraction": 0.5, "seed": 0}
    sampler = PatchSampler(*args, **kw, align=factor)
    for epoch in range(3):
        sampler.reseed(epoch)
        x, y = sampler.sample()
        x = x[..., ::factor, ::factor]
        assert x.shape == (64, 1, 4, 4) and y.shape == (64, 1, 4 * factor, 4 * factor)
        # Every low-resolution pixel is the block of the target it must explain.
        np.testing.assert_array_equal(upsample_nearest(x.numpy(), factor), y.numpy())
    # The plain sampler puts patch corners anywhere: blocks and targets then disagree.
    plain = PatchSampler(*args, **kw)
    x, y = plain.sample()
    f = factor
    assert not np.array_equal(upsample_nearest(x[..., ::f, ::f].numpy(), f), y.numpy())


def test_single_image_split_starts_validation_on_a_block():
    low = np.arange(25 * 12, dtype=np.float32).reshape(1, 25, 12)
    high = upsample_nearest(low, 2)
    data = split_items([high.copy()], [high], val_fraction=0.34, patch_size=[16, 16])
    assert data.train_inputs[0].shape[-2] % 2  # the engine cut inside a block
    _align_single_split(data, 2)
    val = data.val_inputs[0]
    assert val.shape[-2] % 2 == 0
    np.testing.assert_array_equal(val[..., ::2, :], val[..., 1::2, :])
