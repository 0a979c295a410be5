"""Blind-spot masking of Noise2Void (Krull et al. 2019), N2V2 and structN2V.

A few pixels of every patch are *masked*: their value is replaced by a
neighbour's (N2V) or by the median of the neighbourhood (N2V2), and the loss
is computed on those pixels only, against their original, noisy value. The
network never sees a masked pixel's own value, so it cannot learn the
identity; with pixel-independent noise, the best it can do is predict the
clean signal. structN2V also hides a short line of pixels through each
masked pixel (replaced by random values), for noise that is correlated
along rows or columns.

Everything is done for the whole batch at once, on the batch's device, with
index arithmetic only: no Python loop over patches or pixels.

Guarantee: masked pixels of one patch lie at least ``neighborhood // 2 + 1``
pixels apart along some axis (a stratified grid with a random phase and a
bounded jitter per cell), and every replacement value is read from the
*original* image at a position that is neither masked nor on a structN2V
line. So a masked pixel's own value reaches the network input nowhere:
neither at its own position nor through another masked pixel's replacement.
Random draws never depend on pixel values, so with the same generator state
two images that differ only at masked pixels give the same network input.
"""

from __future__ import annotations

import math
from functools import lru_cache
from itertools import product

import torch

from microsight.methods.n2v.config import min_separation

STRUCT_AXES = {"horizontal": -1, "vertical": -2}
# Keeps the floor() of float cell positions from eating into the minimum separation.
_MARGIN = 0.01


@lru_cache(maxsize=32)
def neighbor_offsets(ndim: int, neighborhood: int, struct_mask: str | None = None,
                     struct_span: int = 0) -> torch.Tensor:
    """Offsets ``(K, ndim)`` of the pixels a masked pixel may take its value from.

    The cube of side ``neighborhood`` around the pixel without its centre and,
    with a struct mask, without the masked line (those pixels carry noise
    correlated with the centre's). Cached: treat the result as read-only.
    """
    r = neighborhood // 2
    line = {tuple(o) for o in line_offsets(ndim, struct_mask, struct_span).tolist()}
    offsets = [o for o in product(range(-r, r + 1), repeat=ndim)
               if any(o) and o not in line]
    return torch.tensor(offsets, dtype=torch.long).reshape(-1, ndim)


def line_offsets(ndim: int, struct_mask: str | None, struct_span: int) -> torch.Tensor:
    """Offsets ``(L, ndim)`` of structN2V's line through a masked pixel (centre excluded)."""
    if struct_mask is None:
        return torch.zeros((0, ndim), dtype=torch.long)
    half = struct_span // 2
    steps = [s for s in range(-half, half + 1) if s]
    out = torch.zeros((len(steps), ndim), dtype=torch.long)
    out[:, ndim + STRUCT_AXES[struct_mask]] = torch.tensor(steps, dtype=torch.long)
    return out


def stratified_positions(n: int, shape: tuple[int, ...], fraction: float, separation: int,
                         generator: torch.Generator, device: torch.device
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate masked positions of ``n`` patches and whether each lies inside its patch.

    One candidate per cell of a grid with spacing ``fraction ** (-1/ndim)``
    (so on average ``fraction`` of the pixels are masked), shifted by a random
    phase per patch and jittered within its cell so that neighbouring
    candidates stay ``separation`` pixels apart.

    Returns
    -------
    positions : torch.Tensor
        ``(n, G, ndim)`` integer coordinates.
    inside : torch.Tensor
        ``(n, G)`` booleans; candidates outside the patch are not masked.
    """
    ndim = len(shape)
    spacing = max(fraction ** (-1.0 / ndim), separation + _MARGIN)
    jitter_range = spacing - separation - _MARGIN
    counts = [math.ceil(s / spacing) + 1 for s in shape]
    cells = torch.stack(torch.meshgrid(*[torch.arange(c, device=device) for c in counts],
                                       indexing="ij"), -1).reshape(-1, ndim)
    phase = torch.rand((n, 1, ndim), generator=generator, device=device) * spacing
    jitter = torch.rand((n, len(cells), ndim), generator=generator, device=device)
    pos = torch.floor(phase + (cells - 1) * spacing + jitter * jitter_range).long()
    size = torch.tensor(shape, device=device)
    inside = ((pos >= 0) & (pos < size)).all(-1)
    return pos, inside


def _flat(pos: torch.Tensor, strides: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """Flat index within a patch of clamped coordinates."""
    return (torch.minimum(pos.clamp(min=0), shape - 1) * strides).sum(-1)


def _median(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Median over the last axis of the valid entries (mean of the two middle ones if even)."""
    ordered = torch.sort(torch.where(valid, values, torch.inf), dim=-1).values
    k = valid.sum(-1, keepdim=True).clamp(min=1)
    lo = ordered.gather(-1, (k - 1) // 2)
    hi = ordered.gather(-1, k // 2)
    return ((lo + hi) / 2).squeeze(-1)


def mask_and_manipulate(
    x: torch.Tensor,
    *,
    fraction: float,
    neighborhood: int = 5,
    manipulator: str = "uniform",
    struct_mask: str | None = None,
    struct_span: int = 5,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blind-spot masking of a batch ``(B, C, *spatial)`` (2D or 3D), channels independently.

    Parameters
    ----------
    x : torch.Tensor
        Normalized patches.
    fraction : float
        Share of pixels to mask (on average).
    neighborhood : int
        Odd side of the window replacement values come from.
    manipulator : {"uniform", "median"}
        "uniform": the value of a random pixel of the window other than the
        centre (N2V); "median": the median of the window without the centre
        (N2V2). Window pixels outside the patch are not used.
    struct_mask : {None, "horizontal", "vertical"}
        structN2V: also replace the pixels on a line through each masked pixel
        (along X or Y) with random values in the range of the patch's other
        pixels. The line's pixels are never used as replacement values.
    struct_span : int
        Odd length of that line, masked pixel included.
    generator : torch.Generator, optional
        Source of randomness, on ``x``'s device.

    Returns
    -------
    manipulated : torch.Tensor
        The network input: ``x`` with masked (and line) pixels replaced.
    mask : torch.Tensor
        Booleans, same shape as ``x``: where the loss is computed.
    """
    if manipulator not in ("uniform", "median"):
        raise ValueError(f"manipulator must be 'uniform' or 'median', got {manipulator!r}")
    device = x.device
    b, c, *spatial = x.shape
    shape, ndim, n = tuple(spatial), len(spatial), b * c
    volume = math.prod(shape)
    size = torch.tensor(shape, device=device)
    strides = torch.tensor([math.prod(shape[i + 1:]) for i in range(ndim)], device=device)
    trash = n * volume  # flat index where candidates outside the patch are written
    base = torch.arange(n, device=device)[:, None] * volume  # (n, 1)
    flat_x = x.reshape(-1)

    pos, inside = stratified_positions(n, shape, fraction, min_separation(neighborhood),
                                       generator, device)
    centre = torch.where(inside, base + _flat(pos, strides, size), trash)  # (n, G)

    mask = torch.zeros(n * volume + 1, dtype=torch.bool, device=device)
    mask[centre] = True
    hidden = mask
    if struct_mask is not None:
        line = pos[:, :, None, :] + line_offsets(ndim, struct_mask, struct_span).to(device)
        line_ok = ((line >= 0) & (line < size)).all(-1) & inside[:, :, None]
        line_idx = torch.where(line_ok, base[:, :, None] + _flat(line, strides, size), trash)
        hidden = mask.clone()
        hidden[line_idx] = True

    # Replacement values: original values of window pixels inside the patch that
    # are not hidden themselves (another masked pixel or a line).
    offs = neighbor_offsets(ndim, neighborhood, struct_mask, struct_span).to(device)
    nb = pos[:, :, None, :] + offs  # (n, G, K, ndim)
    nb_idx = base[:, :, None] + _flat(nb, strides, size)
    nb_in = ((nb >= 0) & (nb < size)).all(-1)
    nb_ok = nb_in & ~hidden[nb_idx]
    nb_ok = torch.where(nb_ok.any(-1, keepdim=True), nb_ok, nb_in)
    values = flat_x[nb_idx]  # (n, G, K)
    if manipulator == "uniform":
        score = torch.rand(values.shape, generator=generator, device=device)
        pick = torch.where(nb_ok, score, -1.0).argmax(-1, keepdim=True)
        replacement = values.gather(-1, pick).squeeze(-1)
    else:
        replacement = _median(values, nb_ok)

    out = torch.cat([flat_x, flat_x.new_zeros(1)])
    if struct_mask is not None:
        # Random values span the patch's range, measured without the hidden pixels.
        keep = ~hidden[:-1].reshape(n, volume)
        per = x.reshape(n, volume)
        lo = torch.where(keep, per, torch.inf).amin(-1)
        hi = torch.where(keep, per, -torch.inf).amax(-1)
        lo, hi = torch.where(torch.isfinite(lo), lo, 0.0), torch.where(torch.isfinite(hi), hi, 1.0)
        noise = torch.rand(line_idx.shape, generator=generator, device=device, dtype=x.dtype)
        out[line_idx] = (lo[:, None, None] + noise * (hi - lo)[:, None, None]).to(x.dtype)
    # Masked pixels last: a line may cross another masked pixel, which keeps its replacement.
    out[centre] = replacement.to(x.dtype)
    return out[:-1].reshape(x.shape), mask[:-1].reshape(x.shape)


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean squared error over masked pixels, and the number of masked pixels.

    A batch without a masked pixel gives a loss of zero (no gradient), not NaN.
    """
    sq = (prediction.float() - target.float()) ** 2
    count = mask.sum()
    return (sq * mask).sum() / count.clamp(min=1), count
