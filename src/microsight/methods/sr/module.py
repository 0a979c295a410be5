"""Single-image super-resolution: CARE's upsampling U-Net or RCAN (Zhang et al. 2018).

How training works with targets larger than inputs
---------------------------------------------------
The engine's :class:`PatchSampler` draws input and target patches at the
same positions from images of the same size. So the low-resolution inputs
are stored on the *target* grid, every pixel repeated ``factor x factor``
times (nearest neighbour), and patches are drawn with their corner on a
multiple of ``factor`` (the sampler is wrapped to round its corners down).
A patch then covers whole ``factor x factor`` blocks, and ``x[..., ::f, ::f]``
is exactly the low-resolution patch matching the full-resolution target
patch. Flips and 90-degree rotations act on the index grid: they map the
aligned block grid of the patch onto itself, so the sub-sampled patch is the
same transform of the true low-resolution patch, still aligned with the
transformed target (checked in ``tests/unit/test_iso_sr.py``). Validation
tiles start on multiples of the module's ``divisor`` (a multiple of the
factor), so they are aligned too. The price is ``factor**2`` times more
memory for the training inputs.

At prediction the network takes low-resolution tiles and returns tiles
``output_scale = factor`` times larger, which the tiled predictor blends on
the output grid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from microsight.config import Configuration
from microsight.data.degrade import make_sr_pairs, upsample_nearest
from microsight.data.pairs import TrainingSet, load_items
from microsight.data.split import load_and_split
from microsight.engine.module import MicrosightModule
from microsight.engine.sampling import PatchSampler
from microsight.engine.training import normalize_set
from microsight.errors import MicrosightError
from microsight.families.restoration.module import Baseline, RestorationMixin, on_target_scale
from microsight.methods.sr.config import SRConfig
from microsight.metrics import affine_match, percentile_normalize
from microsight.nn import UNet
from microsight.nn.rcan import RCAN


class UpsampledUNet(nn.Module):
    """Bicubic upsampling by ``factor`` followed by a (residual) U-Net, as in CARE."""

    def __init__(self, factor: int, unet: nn.Module):
        super().__init__()
        self.factor = int(factor)
        self.unet = unet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=self.factor, mode="bicubic", align_corners=False)
        return self.unet(up)


def _load_pairs(input_path: str | Path, target_path: str | Path, factor: int,
                axes: str | None) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """Low-resolution inputs and high-resolution targets paired by name (sizes differ)."""
    xs, _, s_in = load_items(input_path, None, ndim=2, axes=axes)
    ys, _, s_tg = load_items(target_path, None, ndim=2, axes=axes)
    names_x, names_y = s_in["item_names"], s_tg["item_names"]
    single = s_in["files"] == 1 and s_tg["files"] == 1
    if not single and names_x != names_y:
        missing = sorted(set(names_x) - set(names_y))
        extra = sorted(set(names_y) - set(names_x))
        what = (f"{missing[0]} has no target of the same name in {target_path}" if missing
                else f"target {extra[0]} has no input of the same name")
        raise MicrosightError(f"{what}; inputs and targets are paired by file name")
    if len(xs) != len(ys):
        raise MicrosightError(f"{input_path} holds {len(xs)} image(s) but {target_path} holds "
                              f"{len(ys)}; give one target per input")
    for name, x, y in zip(names_x, xs, ys, strict=True):
        want = (x.shape[-2] * factor, x.shape[-1] * factor)
        if tuple(y.shape[-2:]) != want:
            raise MicrosightError(
                f"{name}: the target is {y.shape[-2]}x{y.shape[-1]} pixels and the input "
                f"{x.shape[-2]}x{x.shape[-1]}; with factor {factor} the target must be "
                f"{want[0]}x{want[1]} (set method.factor, or method.generate_pairs: true to "
                "make the inputs from high-resolution images)")
    for what, group in (("input", xs), ("target", ys)):
        if len({a.shape[0] for a in group}) > 1:
            raise MicrosightError(f"all {what} images must have the same number of channels")
    return xs, ys, {**s_in, "target": str(target_path)}


def _align_single_split(data: TrainingSet, factor: int) -> None:
    """A split into bands of rows cuts anywhere: start the validation rows on a block edge."""
    if data.summary.get("split_rule") != "rows":
        return
    for i, train in enumerate(data.train_inputs):
        skip = -train.shape[-2] % factor
        if skip:
            data.val_inputs[i] = data.val_inputs[i][..., skip:, :].copy()
            data.val_targets[i] = data.val_targets[i][..., skip:, :].copy()


def _zoom(order: int, factor: int) -> Baseline:
    def upsample(item: np.ndarray) -> np.ndarray:
        if order == 0:
            return upsample_nearest(item, factor).astype(np.float32)
        return ndimage.zoom(np.asarray(item, np.float32), (1, factor, factor), order=order,
                            mode="nearest", grid_mode=True)

    return upsample


class SRModule(RestorationMixin, MicrosightModule):
    """Low-resolution image -> image ``factor`` times finer in Y and X."""

    def build_network(self, config: Configuration, in_channels: int, out_channels: int
                      ) -> nn.Module:
        m: SRConfig = config.method
        residual = in_channels == out_channels
        if m.network == "rcan":
            return RCAN(in_channels, out_channels, factor=m.factor, n_groups=m.n_groups,
                        n_blocks=m.n_blocks, channels=m.channels, reduction=m.reduction,
                        kernel_size=m.kernel_size, residual=residual)
        return UpsampledUNet(m.factor, UNet(2, in_channels, out_channels, depth=m.depth,
                                            base_channels=m.base_channels,
                                            kernel_size=m.kernel_size, residual=residual))

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.config.method.loss == "l1":
            return F.l1_loss(prediction.float(), target.float())
        return F.mse_loss(prediction.float(), target.float())

    @property
    def output_scale(self) -> int:
        """Output pixels per input pixel in Y and X (read by the tiled predictor)."""
        return int(self.config.method.factor)

    @property
    def divisor(self) -> int:
        # Validation tiles are cut on the high-resolution grid and must hold whole
        # blocks; low-resolution prediction tiles padded to it suit the network too.
        return int(self.config.method.divisor)

    # --- training on the high-resolution grid ------------------------------------
    def attach_sampler(self, sampler: PatchSampler) -> None:
        sampler.align = self.output_scale
        super().attach_sampler(sampler)

    def prepare_batch(self, x: torch.Tensor, y: torch.Tensor | None
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # Patches cover whole factor x factor blocks of the nearest-upsampled input:
        # every factor-th pixel is exactly the low-resolution patch.
        f = self.output_scale
        return x[..., ::f, ::f].contiguous(), y

    @classmethod
    def prepare_training(cls, config: Configuration, input_path: str | Path,
                         target_path: str | Path | None, axes: str | None = None
                         ) -> tuple[TrainingSet, dict[str, Any]]:
        """Load (or generate) pairs, store inputs on the target grid, split, normalize."""
        m: SRConfig = config.method
        f = m.factor
        axes = axes or config.data.axes
        if m.generate_pairs and target_path is not None:
            raise MicrosightError(
                "method.generate_pairs is on: the low-resolution inputs are made from the "
                "--input images; drop --target, or set generate_pairs: false to train on "
                "your own pairs")
        if not m.generate_pairs and target_path is None:
            raise MicrosightError(
                "sr learns from pairs: pass --target with the high-resolution images, or "
                "set method.generate_pairs: true to make low-resolution inputs from "
                "high-resolution --input images")

        def load(low: str | Path, high: str | Path | None):
            if m.generate_pairs:
                images, _, summary = load_items(low, None, ndim=2, axes=axes)
                inputs, targets = make_sr_pairs(images, f, m.sigma)
                summary["pairs"] = (f"generated: Gaussian blur (sigma {m.sigma:g}) and "
                                    f"{f}x{f} block average of the input images")
            else:
                inputs, targets, summary = _load_pairs(low, high, f, axes)
            return [upsample_nearest(x, f) for x in inputs], targets, summary

        data = load_and_split(config, load, input_path, target_path)
        _align_single_split(data, f)
        data.summary["factor"] = f
        return data, normalize_set(data, config)

    # --- evaluation hooks ---------------------------------------------------------
    @staticmethod
    def baselines(config: Configuration) -> dict[str, Baseline]:
        """Nearest and bicubic upsampling to the target grid."""
        f = config.method.factor
        return {f"nearest upsampling (x{f})": _zoom(0, f),
                f"bicubic upsampling (x{f})": _zoom(3, f)}

    @staticmethod
    def panels(input_item: np.ndarray, prediction: np.ndarray, target: np.ndarray
               ) -> dict[str, np.ndarray]:
        """Input (nearest-upsampled to the target grid), prediction, target, difference."""
        gt = percentile_normalize(target[0])
        pred = affine_match(prediction[0], gt)
        f = max(1, target.shape[-1] // input_item.shape[-1])
        return {"input (nearest upsampled)": on_target_scale(upsample_nearest(input_item[0], f),
                                                             gt),
                "prediction": pred, "target": gt, "|prediction - target|": np.abs(pred - gt)}
