"""Tiling grid, blending and equality of tiled and whole-image prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microsight.api import build_config
from microsight.data.tiling import blend_weights, tile_starts
from microsight.engine.predict import TiledPredictor, TileSettings
from microsight.methods.care import CareModule


@pytest.mark.parametrize(("size", "tile", "overlap"), [(100, 32, 8), (64, 64, 8), (10, 32, 4),
                                                       (257, 64, 16)])
def test_tiles_cover_axis_with_overlap(size, tile, overlap):
    starts = tile_starts(size, tile, overlap)
    covered = np.zeros(size, bool)
    for s in starts:
        covered[s:s + min(tile, size)] = True
    assert covered.all()
    assert starts[-1] + min(tile, size) == size
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False))


def test_blend_weights_positive():
    w = blend_weights((16, 16), (4, 4))
    assert w.min() > 0 and w.max() == 1


def _module(ndim: int, residual: bool = False) -> CareModule:
    torch.manual_seed(0)
    patch = [16] * ndim
    cfg = build_config("care", {"method": {"method": "care", "ndim": ndim, "depth": 2,
                                           "base_channels": 4, "residual": residual}},
                       data={"patch_size": patch})
    return CareModule(cfg, 1, 1).eval()


def _run(module, image, settings):
    out = np.zeros_like(image)

    def write(region, block):
        out[(slice(None),) + region] = block

    TiledPredictor(module, settings).run(image.shape[1:], lambda r: image[(slice(None),) + r],
                                         write)
    return out


@pytest.mark.parametrize("ndim", [2, 3])
def test_single_tile_equals_whole_image(ndim):
    module = _module(ndim)
    rng = np.random.default_rng(0)
    shape = (1, 40, 48) if ndim == 2 else (1, 12, 20, 24)
    image = rng.normal(size=shape).astype(np.float32)
    tiled = _run(module, image, TileSettings((64,) * ndim, (8,) * ndim))
    pad = [(0, 0)] + [(0, -(-s // 4) * 4 - s) for s in shape[1:]]
    whole = module(torch.from_numpy(np.pad(image, pad, mode="reflect"))[None])[0]
    whole = whole.detach().numpy()[(slice(None),) + tuple(slice(0, s) for s in shape[1:])]
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


def test_many_tiles_close_to_whole_image():
    module = _module(2)
    rng = np.random.default_rng(1)
    image = rng.normal(size=(1, 96, 80)).astype(np.float32)
    whole = _run(module, image, TileSettings((128, 128), (8, 8)))
    tiled = _run(module, image, TileSettings((32, 32), (12, 12), batch_size=3))
    # Tiles see less context at their borders; blending keeps the difference small.
    assert np.abs(tiled - whole).mean() < 0.05 * np.abs(whole).mean() + 1e-3
    assert tiled.shape == whole.shape


class _Box(torch.nn.Module):
    """A 3x3 mean with zero padding: wrong by its border pixel on a tile without context."""

    divisor, output_scale, prediction_channels = 1, 1, 1

    def predict_batch(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=True)


def test_halo_makes_tiles_exact():
    rng = np.random.default_rng(2)
    image = rng.normal(size=(1, 50, 37)).astype(np.float32)
    # The whole image with the mirrored border the halo reads beyond it.
    padded = torch.from_numpy(np.pad(image, ((0, 0), (1, 1), (1, 1)), mode="symmetric"))
    whole = _Box().predict_batch(padded[None])[0, :, 1:-1, 1:-1].numpy()
    seen = []

    def run(halo):
        out = np.zeros_like(image)

        def read(region):
            seen.append(tuple(r.stop - r.start for r in region))
            return image[(slice(None),) + region]

        def write(region, block):
            out[(slice(None),) + region] = block

        TiledPredictor(_Box(), TileSettings((16, 16), (4, 4)), torch.device("cpu"),
                       halo=halo).run(image.shape[1:], read, write)
        return out

    np.testing.assert_allclose(run((1, 1)), whole, atol=1e-6)
    # Inner tiles read one more pixel on each side, edge tiles only towards the image.
    assert (18, 18) in seen and (17, 17) in seen
    assert np.abs(run(None) - whole).max() > 0.01
