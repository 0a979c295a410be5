"""Per-pixel uncertainty for any image-to-image model: test-time augmentation and ensembles.

Both work as stand-ins for a model's module inside the ordinary tiled
prediction (``engine/inference.py``): for every tile they return the mean
prediction and, when asked, the standard deviation over

- ``tta``: the 8 flips and 90-degree rotations of the YX plane (the dihedral
  group), each undone on the output before averaging;
- ``ensemble``: several models of the same kind (e.g. trained with different
  seeds), each applied with its own normalization and mapped back to the
  first model's output scale.

Memory stays bounded by the tile size: the views and members run tile by
tile. Probabilistic models keep their own predicted scale (``model`` mode,
``module.has_uncertainty``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from microsight.data.normalization import Normalizer
from microsight.engine.bundle import Model
from microsight.errors import MicrosightError
from microsight.io.image import image_stem, image_suffix

MODES = ("model", "tta", "ensemble")


class _Combined:
    """The attributes of a module that tiled prediction uses, over several forward passes."""

    has_uncertainty = True
    predict_uncertainty = False
    predict_item = None
    #: The spread of several predictions is a standard deviation: scored as Gaussian.
    uncertainty_distribution = "gaussian"

    def __init__(self, module):
        self.base = module
        self.in_channels = module.in_channels
        self.out_channels = module.out_channels
        self.divisor = module.divisor
        self.output_scale = module.output_scale

    def parameters(self):
        return self.base.parameters()

    @property
    def prediction_channels(self) -> int:
        return self.out_channels * (2 if self.predict_uncertainty else 1)

    def views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Point predictions ``(B, C_out, ...)`` of every view or member (normalized)."""
        raise NotImplementedError

    @torch.inference_mode()
    def predict_batch(self, x: torch.Tensor) -> torch.Tensor:
        stack = torch.stack([v.float() for v in self.views(x)])
        mean = stack.mean(0)
        if not self.predict_uncertainty:
            return mean
        return torch.cat([mean, stack.std(0, unbiased=False)], dim=1)


class DihedralTTA(_Combined):
    """Mean and spread of a module's predictions over the 8 dihedral views of each tile."""

    def views(self, x: torch.Tensor) -> list[torch.Tensor]:
        c = self.out_channels
        out = []
        for k in range(4):
            for flip in (False, True):
                view = torch.rot90(x, k, dims=(-2, -1))
                view = torch.flip(view, dims=(-1,)) if flip else view
                y = self.base.predict_batch(view.contiguous())[:, :c]
                y = torch.flip(y, dims=(-1,)) if flip else y
                out.append(torch.rot90(y, -k, dims=(-2, -1)))
        return out


def _affine(src: Normalizer, dst: Normalizer, ndim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gain and offset taking values normalized by ``src`` to values normalized by ``dst``."""
    shape = (1, -1) + (1,) * ndim

    def params(n: Normalizer) -> tuple[torch.Tensor, torch.Tensor]:
        low = torch.tensor(n.low, dtype=torch.float32)
        scale = torch.tensor(n.high, dtype=torch.float32) - low
        return low, torch.where(scale == 0, torch.ones_like(scale), scale)

    (l0, s0), (l1, s1) = params(src), params(dst)
    return (s0 / s1).reshape(shape), ((l0 - l1) / s1).reshape(shape)


class Ensemble(_Combined):
    """Mean and spread of several models' predictions, in the first model's scales."""

    def __init__(self, models: list[Model]):
        super().__init__(models[0].module)
        self.members = [m.module for m in models]
        ref = models[0]
        mode = ref.normalization["mode"]
        for m in models[1:]:
            same = (m.normalization["mode"] == mode and m.ndim == ref.ndim
                    and m.module.out_channels == ref.module.out_channels
                    and m.module.in_channels == ref.module.in_channels
                    and m.module.output_scale == self.output_scale)
            if mode == "per_image":
                same = same and all(m.normalization[k] == ref.normalization[k]
                                    for k in ("p_low", "p_high"))
            if not same:
                raise MicrosightError(
                    f"ensemble members must be alike: {m.path or m.config.name} differs from "
                    f"{ref.path or ref.config.name} in dimensions, channels or normalization")
        self.divisor = max(m.divisor for m in self.members)
        nd = ref.ndim
        self.maps = []
        for m in models:
            if mode == "per_image":
                # Every member normalizes the image by its own percentiles, the same way.
                self.maps.append(None)
                continue
            norm = {k: Normalizer.from_dict(m.normalization[k]) for k in ("input", "target")}
            ref_norm = {k: Normalizer.from_dict(ref.normalization[k]) for k in ("input", "target")}
            self.maps.append((_affine(ref_norm["input"], norm["input"], nd),
                              _affine(norm["target"], ref_norm["target"], nd)))

    def parameters(self):
        for member in self.members:
            yield from member.parameters()

    def views(self, x: torch.Tensor) -> list[torch.Tensor]:
        c = self.out_channels
        out = []
        for member, maps in zip(self.members, self.maps, strict=True):
            if maps is None:
                out.append(member.predict_batch(x)[:, :c])
                continue
            (gi, oi), (go, oo) = maps
            y = member.predict_batch(x * gi.to(x.device) + oi.to(x.device))[:, :c]
            out.append(y * go.to(y.device) + oo.to(y.device))
        return out


def combine(models: list[Model], mode: str | None, tta: bool = False) -> Model:
    """The model to predict with: one model, its TTA, or an ensemble of several.

    Parameters
    ----------
    models : list of Model
        One model, or the members of an ensemble.
    mode : {"model", "tta", "ensemble"} or None
        Uncertainty mode; several models always predict as an ensemble (their
        mean), with or without its spread.
    tta : bool
        Predict the mean over the 8 flips/rotations of each tile (of the ensemble
        mean, with several models), without an uncertainty map.

    Returns
    -------
    Model
        The first model with its module replaced by the combination (if any).
    """
    if mode is not None and mode not in MODES:
        raise MicrosightError(f"uncertainty must be one of {', '.join(MODES)}, got {mode!r}")
    if len(models) > 1 and mode not in (None, "ensemble"):
        raise MicrosightError(
            f"{len(models)} models were given but uncertainty is {mode!r}; use "
            "--uncertainty ensemble (or give one model)")
    if mode == "ensemble" and len(models) < 2:
        raise MicrosightError("an ensemble needs at least two models; give several bundles")
    if tta and mode in ("model", "ensemble"):
        raise MicrosightError(f"--tta averages over flips/rotations; it cannot be combined "
                              f"with uncertainty {mode!r}")
    averaged = tta or mode == "tta"
    for m in models:
        if type(m.module).predict_item is not None and (averaged or mode == "ensemble"
                                                        or len(models) > 1):
            raise MicrosightError(
                f"method {m.method} predicts whole items its own way: no tta or ensemble")
        if averaged and not type(m.module).dihedral_maps:
            raise MicrosightError(
                f"method {m.method} predicts maps tied to directions, which flips and "
                "rotations would mix up: no tta")
    module = Ensemble(models) if len(models) > 1 else models[0].module
    if averaged:
        module = DihedralTTA(module)
    if module is models[0].module:
        return models[0]
    return dataclasses.replace(models[0], module=module)


def uncertainty_path(out: str | Path) -> Path:
    """Where the uncertainty map of ``out`` goes: ``name.uncertainty.tif`` next to it."""
    out = Path(out)
    return out.with_name(f"{image_stem(out)}.uncertainty{image_suffix(out)}")
