"""Isotropic CARE (Weigert et al., MICCAI 2017 / Nature Methods 2018).

Training: the lateral planes of the input stacks become pairs (plane
degraded along its last axis like the axial direction, plane) with
:func:`microsight.data.degrade.make_iso_pairs`; the engine's split and
normalization are reused unchanged. Prediction (:meth:`CareIsoModule.predict_item`,
called by ``engine/inference.py`` instead of plain tiling): interpolate the
stack along Z by the anisotropy factor, restore every XZ and every YZ slice
with the 2D network (Z as the slice's last axis, the degraded axis in
training) and average the two results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from microsight.config import Configuration
from microsight.data.degrade import make_iso_pairs, resample_axis
from microsight.data.normalization import subsample
from microsight.data.pairs import TrainingSet, load_items
from microsight.data.split import load_and_split
from microsight.engine.module import MicrosightModule
from microsight.engine.predict import (
    TiledPredictor,
    TileSettings,
    input_normalizer,
    output_normalizer,
)
from microsight.engine.training import normalize_set
from microsight.errors import MicrosightError
from microsight.families.restoration.module import RestorationMixin
from microsight.methods.care_iso.config import CareIsoConfig
from microsight.nn import UNet

MAX_ANISOTROPY = 50.0


def _anisotropy_from(pixel_sizes: dict[str, float], source: str | Path) -> float:
    lateral = pixel_sizes.get("X", pixel_sizes.get("Y"))
    if "Z" not in pixel_sizes or lateral is None:
        raise MicrosightError(
            f"{source}: the Z and XY pixel sizes are not in the file metadata; set "
            "method.anisotropy (Z step / XY pixel size) in the config")
    a = round(float(pixel_sizes["Z"]) / float(lateral), 6)
    if not 1 < a <= MAX_ANISOTROPY:
        raise MicrosightError(
            f"{source}: Z step {pixel_sizes['Z']:g} um over XY pixel {lateral:g} um gives an "
            f"anisotropy of {a:.3g}; care-iso needs a Z step 1-{MAX_ANISOTROPY:g} times the XY "
            "pixel (set method.anisotropy if the metadata are wrong)")
    return a


def _predict_plane(predictor: TiledPredictor, plane: np.ndarray) -> np.ndarray:
    out = np.zeros((predictor.out_channels, *plane.shape[1:]), np.float32)

    def write(region, block):
        out[(slice(None),) + region] = block

    predictor.run(plane.shape[1:], lambda r: plane[(slice(None),) + r], write)
    return out


class CareIsoModule(RestorationMixin, MicrosightModule):
    """2D U-Net that undoes axial blur and subsampling in XZ / YZ slices."""


    def build_network(self, config: Configuration, in_channels: int, out_channels: int
                      ) -> nn.Module:
        m: CareIsoConfig = config.method
        return UNet(2, in_channels, out_channels, depth=m.depth, base_channels=m.base_channels,
                    kernel_size=m.kernel_size, batch_norm=m.batch_norm,
                    residual=m.residual and in_channels == out_channels)

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.config.method.loss == "l1":
            return nn.functional.l1_loss(prediction.float(), target.float())
        return nn.functional.mse_loss(prediction.float(), target.float())

    @classmethod
    def prepare_training(cls, config: Configuration, input_path: str | Path,
                         target_path: str | Path | None, axes: str | None = None
                         ) -> tuple[TrainingSet, dict[str, Any]]:
        """Pairs from the lateral planes of the stacks; split and normalize as usual.

        Records the anisotropy in ``config.method`` (so the bundle keeps it) and
        switches 90-degree rotations off (they would turn the degraded axis).
        """
        m: CareIsoConfig = config.method
        if target_path is not None:
            raise MicrosightError(
                "care-iso makes its training pairs from the input stacks themselves: pass "
                "only --input (anisotropic ZYX stacks), no --target")
        config.data.rotations = False

        def load(path: str | Path, _: None):
            stacks, _, summary = load_items(path, None, ndim=m.item_ndim,
                                            axes=axes or config.data.axes)
            # The training stacks set the anisotropy; validation stacks are degraded alike.
            a = m.anisotropy or _anisotropy_from(summary.get("pixel_sizes_um") or {}, path)
            m.anisotropy = a
            inputs: list[np.ndarray] = []
            targets: list[np.ndarray] = []
            names: list[str] = []
            for stack, name in zip(stacks, summary["item_names"], strict=True):
                xs, ys = make_iso_pairs(stack, a, m.psf_sigma(a),
                                        transpose=m.transposed_planes, order=m.order)
                inputs += xs
                targets += ys
                names += [name] * len(xs)  # planes of one stack stay on one side
            summary.update({"split_names": names, "training_planes": len(inputs)})
            return inputs, targets, summary

        data = load_and_split(config, load, input_path, None)
        a = m.anisotropy
        data.summary.update({"anisotropy": a, "psf_sigma_z": m.psf_sigma(a)})
        return data, normalize_set(data, config)

    @classmethod
    def predict_item(cls, model: Any, item: np.ndarray, settings: TileSettings | None = None
                     ) -> np.ndarray:
        """Restore one ``(C, Z, Y, X)`` stack to ``(C_out, round(Z * anisotropy), Y, X)``.

        Parameters
        ----------
        model : Model
            Loaded care-iso model.
        item : numpy.ndarray
            Channels-first stack in the input's intensity scale.
        settings : TileSettings, optional
            Tiling of the 2D slices.

        Returns
        -------
        numpy.ndarray
            Float32 isotropic stack in the output intensity scale.
        """
        m: CareIsoConfig = model.config.method
        if m.anisotropy is None:
            raise MicrosightError("this care-iso model has no anisotropy in its config; "
                                  "set method.anisotropy in its config.yaml")
        if item.ndim != 4:
            raise MicrosightError(f"care-iso predicts ZYX stacks; got an item of shape "
                                  f"{item.shape[1:]}")
        settings = settings or TileSettings.default(2)
        c_out = model.module.out_channels
        x_norm = input_normalizer(model.normalization, lambda: subsample(item))
        y_norm = output_normalizer(model.normalization, x_norm, c_out)
        _, z, ny, nx = item.shape
        vol = resample_axis(x_norm.apply(item), 1, max(1, round(z * m.anisotropy)), m.order)
        predictor = TiledPredictor(model.module, settings)
        out = np.zeros((c_out, vol.shape[1], ny, nx), np.float32)
        for y in range(ny):  # XZ slices as (C, X, Z): Z last, like the degraded axis
            plane = np.ascontiguousarray(vol[:, :, y, :].transpose(0, 2, 1))
            out[:, :, y, :] += _predict_plane(predictor, plane).transpose(0, 2, 1)
        for x in range(nx):  # YZ slices as (C, Y, Z)
            plane = np.ascontiguousarray(vol[:, :, :, x].transpose(0, 2, 1))
            out[:, :, :, x] += _predict_plane(predictor, plane).transpose(0, 2, 1)
        out *= 0.5
        return y_norm.invert(out)

    @classmethod
    def export_notes(cls, model: Any) -> dict[str, Any]:
        """The exported network is the 2D slice network; the stack handling is microsight's."""
        m: CareIsoConfig = model.config.method
        return {"steps": [
            "The network restores 2D slices. For a ZYX stack microsight first normalizes "
            "the input, interpolates it along Z by the anisotropy factor "
            f"({m.anisotropy if m.anisotropy else 'from the stack pixel sizes'}; "
            f"{m.interpolation} interpolation), then runs the network on every XZ slice "
            "and on every YZ slice with Z as the slice's last axis (the package's x axis), "
            "and averages the two restored stacks before mapping them back to "
            "intensities.",
            "A zoo consumer that runs the package on single XY planes gets a lateral "
            "restoration only; use microsight for isotropic stacks."]}

    @classmethod
    def evaluate_model(cls, model: Any, input_path: str | Path, target_path: str | Path, *,
                       axes: str | None = None, report: str | Path | None = None,
                       settings: TileSettings | None = None) -> Any:
        """Anisotropic stacks against isotropic ground truth; see :func:`evaluate_iso`."""
        from microsight.methods.care_iso.evaluate import evaluate_iso

        return evaluate_iso(model, input_path, target_path, axes=axes, report=report,
                            settings=settings)
