"""Noise2Void: blind-spot masking, N2V2 network options, checkerboard measure, config."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
import torch
from torch import nn

from microsight.config import config_to_yaml, validate_config
from microsight.errors import MicrosightError
from microsight.methods.n2v.checks import checkerboard_score, flat_field_checkerboard
from microsight.methods.n2v.masking import mask_and_manipulate, masked_mse
from microsight.methods.n2v.module import N2VModule
from microsight.nn import UNet
from microsight.nn.blurpool import MaxBlurPool


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: intra-op threads only add overhead (a lot on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _gen(seed: int = 0) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _masked_points(mask: torch.Tensor) -> list[tuple[int, ...]]:
    return [tuple(p) for p in torch.nonzero(mask).tolist()]


def _window(x: np.ndarray, point: tuple[int, ...], r: int, exclude=()) -> dict:
    """In-bounds window values around ``point = (b, c, *spatial)`` by offset, centre excluded."""
    b, c, *centre = point
    out = {}
    for off in product(range(-r, r + 1), repeat=len(centre)):
        q = tuple(p + o for p, o in zip(centre, off, strict=True))
        if any(off) and off not in exclude and all(0 <= v < s for v, s in
                                                    zip(q, x.shape[2:], strict=True)):
            out[off] = x[(b, c, *q)]
    return out


def _unique_background(shape, seed=0) -> torch.Tensor:
    """Distinct values in [0, 1): any value identifies the pixel it came from."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.permutation(np.prod(shape)).reshape(shape) / np.prod(shape)
                            ).float()


# --- masking ------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(64, 1, 64, 64), (16, 2, 16, 32, 32)])
@pytest.mark.parametrize("fraction", [0.002, 0.01])
def test_masked_fraction_is_respected(shape, fraction):
    x = torch.rand(shape)
    counts = [int(mask_and_manipulate(x, fraction=fraction, generator=_gen(s))[1].sum())
              for s in range(4)]
    expected = fraction * x.numel()
    assert abs(np.mean(counts) - expected) < 0.08 * expected, (counts, expected)


@pytest.mark.parametrize("shape", [(8, 1, 48, 48), (4, 1, 16, 24, 24)])
def test_masked_pixels_stay_out_of_each_others_neighbourhood(shape):
    _, mask = mask_and_manipulate(torch.rand(shape), fraction=0.03, neighborhood=5,
                                  generator=_gen())
    for b, c in product(range(shape[0]), range(shape[1])):
        pts = torch.nonzero(mask[b, c])
        assert len(pts) > 3
        cheb = (pts[:, None, :] - pts[None, :, :]).abs().amax(-1)
        cheb.fill_diagonal_(99)
        assert int(cheb.min()) > 2  # radius of a 5-pixel neighbourhood


@pytest.mark.parametrize("shape", [(6, 1, 32, 32), (2, 2, 12, 16, 16)])
def test_uniform_replacement_is_a_neighbour_never_the_centre(shape):
    x = _unique_background(shape)
    _, mask = mask_and_manipulate(x, fraction=0.02, generator=_gen(3))
    x[mask] = 1000.0  # the centre is the only bright pixel of its window
    out, mask2 = mask_and_manipulate(x, fraction=0.02, generator=_gen(3))
    assert torch.equal(mask, mask2)
    xn, on = x.numpy(), out.numpy()
    points = _masked_points(mask)
    assert len(points) > 10
    used = set()
    for p in points:
        window = _window(xn, p, 2)
        assert on[p] < 1
        matches = [off for off, v in window.items() if v == on[p]]
        assert len(matches) == 1, (p, on[p])
        used.add(matches[0])
    assert len(used) > 5  # a random neighbour, not a fixed one
    assert torch.equal(out[~mask], x[~mask])


@pytest.mark.parametrize("shape", [(6, 1, 32, 32), (2, 1, 12, 16, 16)])
def test_median_replacement_is_the_neighbourhood_median_without_centre(shape):
    x = torch.rand(shape)
    _, mask = mask_and_manipulate(x, fraction=0.02, manipulator="median", generator=_gen(1))
    x[mask] = 1000.0
    out, _ = mask_and_manipulate(x, fraction=0.02, manipulator="median", generator=_gen(1))
    points = _masked_points(mask)
    assert len(points) > 10
    for p in points:
        expected = np.median(list(_window(x.numpy(), p, 2).values()))
        assert out[p].item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("orientation", "axis"), [("horizontal", -1), ("vertical", -2)])
@pytest.mark.parametrize("shape", [(4, 1, 32, 32), (2, 1, 8, 24, 24)])
def test_struct_mask_hides_a_line_of_the_right_orientation_and_span(orientation, axis, shape):
    ndim = len(shape) - 2
    x = _unique_background(shape, seed=1)
    out, mask = mask_and_manipulate(x, fraction=0.01, struct_mask=orientation, struct_span=7,
                                    generator=_gen(2))
    line = set()
    line_offsets = []
    for step in (-3, -2, -1, 1, 2, 3):
        off = [0] * ndim
        off[axis] = step
        line_offsets.append(tuple(off))
    points = _masked_points(mask)
    assert points
    for b, c, *centre in points:
        for off in line_offsets:
            q = tuple(v + o for v, o in zip(centre, off, strict=True))
            if all(0 <= v < s for v, s in zip(q, shape[2:], strict=True)):
                line.add((b, c, *q))
    changed = set(_masked_points(out != x)) - set(points)
    assert changed == line - set(points)
    # Line pixels carry random values within the range of the visible pixels.
    visible = x[(out == x) & ~mask]
    values = torch.stack([out[p] for p in line])
    assert values.min() >= visible.min() and values.max() <= visible.max()
    # The masked pixel never takes its value from its (correlated) line.
    xn = x.numpy()
    for p in points:
        window = _window(xn, p, 2, exclude=line_offsets)
        assert out[p].item() in window.values()


@pytest.mark.parametrize("settings", [
    {"manipulator": "uniform"},
    {"manipulator": "median"},
    {"manipulator": "uniform", "struct_mask": "horizontal", "struct_span": 5},
])
@pytest.mark.parametrize("ndim", [2, 3])
def test_masked_pixel_never_sees_itself(settings, ndim):
    """Blind spot as N2V realizes it: the network input (hence its prediction at a
    masked pixel) does not change when the original value of masked pixels changes,
    while the loss target there does."""
    torch.manual_seed(0)
    shape = (2, 1, 32, 32) if ndim == 2 else (2, 1, 8, 16, 16)
    net = UNet(ndim, 1, 1, depth=1, base_channels=4, residual=False).eval()
    x = torch.rand(shape)
    inp, mask = mask_and_manipulate(x, fraction=0.02, generator=_gen(5), **settings)
    assert mask.sum() > 4
    x2 = x.clone()
    x2[mask] = torch.rand(int(mask.sum())) + 5
    inp2, mask2 = mask_and_manipulate(x2, fraction=0.02, generator=_gen(5), **settings)
    assert torch.equal(mask, mask2)
    assert torch.equal(inp, inp2)
    with torch.no_grad():
        assert torch.equal(net(inp)[mask], net(inp2)[mask])
        # Control: without the manipulation the prediction does depend on those values.
        assert not torch.allclose(net(x)[mask], net(x2)[mask])
    loss1, n1 = masked_mse(net(inp), x, mask)
    loss2, _ = masked_mse(net(inp), x2, mask)
    assert int(n1) == int(mask.sum()) and loss2 > loss1


def test_masked_mse_ignores_unmasked_pixels():
    pred, target = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    mask[0, 0, 1, 2] = mask[0, 0, 3, 3] = True
    pred[0, 0, 1, 2] = 2.0
    pred[0, 0, 0, 0] = 100.0  # unmasked: ignored
    loss, n = masked_mse(pred, target, mask)
    assert float(loss) == pytest.approx(2.0) and int(n) == 2
    assert float(masked_mse(pred, target, torch.zeros_like(mask))[0]) == 0.0


# --- N2V2 network -------------------------------------------------------------------
@pytest.mark.parametrize(("ndim", "shape"), [(2, (2, 1, 32, 32)), (3, (1, 2, 8, 16, 16))])
@pytest.mark.parametrize("depth", [1, 2])
def test_n2v2_unet_shapes(ndim, shape, depth):
    net = UNet(ndim, shape[1], shape[1], depth=depth, base_channels=4, residual=False,
               skip_top=False, pooling="blurmax")
    out = net(torch.rand(shape))
    assert out.shape == shape
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_unet_options_keep_weight_names_and_defaults():
    plain = UNet(2, 1, 1, depth=2, base_channels=4)
    n2v2 = UNet(2, 1, 1, depth=2, base_channels=4, skip_top=False, pooling="blurmax")
    assert isinstance(plain.pool, nn.MaxPool2d) and plain.skip_top
    assert plain.state_dict().keys() == n2v2.state_dict().keys()
    assert plain.up_blocks[-1][0].in_channels == 8  # skip concatenated
    assert n2v2.up_blocks[-1][0].in_channels == 4  # no top-level skip
    assert n2v2.up_blocks[0][0].in_channels == 16  # lower skips kept


@pytest.mark.parametrize("ndim", [2, 3])
def test_max_blur_pool_halves_and_keeps_constants(ndim):
    pool = MaxBlurPool(ndim)
    shape = (1, 3) + (8,) * ndim
    assert pool(torch.rand(shape)).shape == (1, 3) + (4,) * ndim
    assert torch.allclose(pool(torch.full(shape, 2.5)), torch.tensor(2.5))
    assert not list(pool.state_dict())


def test_n2v_network_has_no_identity_shortcut():
    for variant in ("n2v", "n2v2"):
        cfg = validate_config({"method": {"method": "n2v", "variant": variant, "depth": 1,
                                          "base_channels": 4}, "data": {"patch_size": [16, 16]}})
        net = N2VModule(cfg, 1, 1).network
        assert not net.residual
        assert net.head.weight.abs().sum() > 0  # not zero-initialized
        assert net.skip_top == (variant == "n2v")
        assert isinstance(net.pool, MaxBlurPool) == (variant == "n2v2")


def test_validation_masks_are_the_same_every_epoch():
    cfg = validate_config({"method": {"method": "n2v", "depth": 1, "base_channels": 4,
                                      "masked_fraction": 0.02},
                           "data": {"patch_size": [16, 16]}})
    module = N2VModule(cfg, 1, 1)
    batch = (torch.rand(2, 1, 32, 32),) * 2
    sums = []
    for _ in range(2):
        module.on_validation_epoch_start()
        module.validation_step(batch, 0)
        module.validation_step(batch, 1)
        sums.append(dict(module._val))
    assert sums[0] == sums[1] and sums[0]["n"] > 0


# --- checkerboard measure -------------------------------------------------------------
def test_checkerboard_score_separates_checkerboard_from_noise():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:64, :64]
    board = (-1.0) ** (y + x)
    noise = rng.normal(size=(64, 64))
    assert checkerboard_score(board) == pytest.approx(1.0)
    assert checkerboard_score((-1.0) ** x) == pytest.approx(1.0)  # 2-pixel stripes
    assert checkerboard_score(noise + 5) < 0.06  # ~ (64 + 64) / 64**2
    assert checkerboard_score(np.full((64, 64), 3.0)) == 0.0
    faint = checkerboard_score(noise + 0.3 * board)
    assert checkerboard_score(noise) < faint < 1
    assert checkerboard_score(np.stack([board, noise])) > 0.4  # stacks: planes summed


def test_flat_field_checkerboard_on_a_network():
    torch.manual_seed(0)
    net = UNet(2, 1, 1, depth=1, base_channels=4, residual=False)
    score = flat_field_checkerboard(net, size=32)
    assert 0 <= score <= 1
    assert net.training  # mode restored


# --- configuration ------------------------------------------------------------------
def test_n2v_config_defaults_and_variant():
    plain = validate_config({"method": "n2v"}).method
    assert (plain.masked_fraction, plain.manipulator, plain.neighborhood) == (0.002, "uniform", 5)
    assert plain.divisor == 4
    n2v2 = validate_config({"method": {"method": "n2v", "variant": "n2v2"}})
    assert n2v2.method.manipulator == "median"
    explicit = validate_config({"method": {"method": "n2v", "variant": "n2v2",
                                           "manipulator": "uniform"}})
    assert explicit.method.manipulator == "uniform"
    again = validate_config(__import__("yaml").safe_load(config_to_yaml(n2v2)))
    assert again == n2v2


@pytest.mark.parametrize(("method", "match"), [
    ({"method": "n2v", "masked_fraction": 0.2}, "too dense"),
    ({"method": "n2v", "ndim": 3, "masked_fraction": 0.05}, "too dense"),
    ({"method": "n2v", "neighborhood": 4}, "must be odd"),
    ({"method": "n2v", "struct_mask": "diagonal"}, "struct_mask"),
])
def test_n2v_config_errors(method, match):
    data = {"patch_size": [16, 16, 16]} if method.get("ndim") == 3 else {}
    with pytest.raises(MicrosightError, match=match):
        validate_config({"method": method, "data": data})


@pytest.mark.parametrize("upsampling", ["transpose", "linear"])
def test_linear_upsampling_cannot_make_a_checkerboard(upsampling):
    from microsight.nn import UNet

    torch.manual_seed(0)
    net = UNet(2, 1, 1, depth=2, base_channels=4, residual=False, skip_top=False,
               pooling="blurmax", upsampling=upsampling).eval()
    with torch.no_grad():
        out = net(torch.ones(1, 1, 64, 64))[0, 0, 24:40, 24:40]
    # Away from the borders a flat input gives a flat output, unless even and odd
    # pixels have their own weights (transposed convolutions).
    spread = float(out.std() / out.abs().mean())
    if upsampling == "linear":
        assert spread < 1e-4
    else:
        assert spread > 1e-3


def test_n2v2_bundle_from_before_the_upsampling_option_still_loads(tmp_path):
    from pathlib import Path

    from microsight.api import build_config
    from microsight.config import get_method
    from microsight.engine.bundle import _module_with_weights

    cls = get_method("n2v").module_class
    old = build_config("n2v", {"method": {"method": "n2v", "variant": "n2v2", "depth": 1,
                                          "base_channels": 4, "upsampling": "transpose"}})
    state = cls(old, 1, 1).state_dict()
    config = build_config("n2v", {"method": {"method": "n2v", "variant": "n2v2", "depth": 1,
                                             "base_channels": 4}})
    info = {"in_channels": 1, "out_channels": 1}
    module = _module_with_weights(cls, config, info, state, Path("old"))
    assert config.method.upsampling == "transpose"
    assert isinstance(module.network.up[0], nn.ConvTranspose2d)
    wider = build_config("n2v", {"method": {"method": "n2v", "depth": 1, "base_channels": 8}})
    with pytest.raises(MicrosightError, match="do not fit the network"):
        _module_with_weights(cls, wider, info, state, Path("old"))
