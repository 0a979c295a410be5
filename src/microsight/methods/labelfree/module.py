"""Label-free prediction (Ounkomol et al. 2018, fnet; Christiansen et al. 2018).

A U-Net regresses fluorescence targets from transmitted-light inputs. The
optional adversarial refinement follows pix2pix (Isola et al. 2017): a
conditional PatchGAN judges (input, output) pairs while the generator keeps
its pixel loss. Generator and discriminator are updated simultaneously
from one loss and one optimizer: the generator's adversarial term sees the
discriminator's parameters detached, the discriminator's term sees the
generator's output detached, so each network only receives its own
gradients and the shared training loop needs no second optimizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from microsight.config import Configuration
from microsight.data.normalization import Normalizer
from microsight.data.pairs import TrainingSet
from microsight.data.split import load_and_split
from microsight.engine.bundle import Model, load_model
from microsight.engine.evaluate import Evaluation
from microsight.engine.module import MicrosightModule
from microsight.engine.predict import TileSettings
from microsight.engine.training import normalize_set
from microsight.errors import MicrosightError
from microsight.io import Image
from microsight.methods.labelfree.baseline import fit_linear
from microsight.methods.labelfree.config import LabelfreeConfig
from microsight.methods.labelfree.data import (
    as_channels,
    load_pairs,
    registration_report,
    target_names,
)
from microsight.methods.labelfree.losses import pixel_loss
from microsight.nn import UNet
from microsight.nn.patchgan import PatchDiscriminator


def _unet(m: LabelfreeConfig, in_channels: int, out_channels: int) -> UNet:
    return UNet(m.ndim, in_channels, out_channels, depth=m.depth,
                base_channels=m.base_channels, kernel_size=m.kernel_size,
                batch_norm=m.batch_norm, residual=False)


def reference_model(config: Configuration, data: TrainingSet) -> Model:
    """Load the U-Net that a run refines (GAN) or fine-tunes and check that it fits."""
    m: LabelfreeConfig = config.method
    path = Path(m.refine_from)
    ref = load_model(path)
    if ref.method != "labelfree" or ref.config.method.gan:
        raise MicrosightError(
            f"refine_from {path} is a {ref.method} model; give a label-free U-Net bundle "
            "trained with gan: false")
    if ref.config.method.architecture != m.architecture:
        raise MicrosightError(
            f"refine_from {path} has U-Net {ref.config.method.architecture} but this config "
            f"asks for {m.architecture}; use the same U-Net fields")
    got = (ref.module.in_channels, ref.module.out_channels)
    if got != (data.in_channels, data.out_channels):
        raise MicrosightError(
            f"refine_from {path} maps {got[0]} -> {got[1]} channels but these data have "
            f"{data.in_channels} -> {data.out_channels}")
    if ref.normalization["mode"] != config.data.normalization.mode:
        raise MicrosightError(
            f"refine_from {path} used normalization mode {ref.normalization['mode']}; set "
            "data.normalization.mode to the same")
    return ref


def _normalize_like(data: TrainingSet, normalization: dict) -> None:
    """Apply a bundle's dataset normalization to a training set in place."""
    x_norm = Normalizer.from_dict(normalization["input"])
    y_norm = Normalizer.from_dict(normalization["target"])
    data.train_inputs = [x_norm.apply(x) for x in data.train_inputs]
    data.val_inputs = [x_norm.apply(x) for x in data.val_inputs]
    data.train_targets = [y_norm.apply(y) for y in data.train_targets]
    data.val_targets = [y_norm.apply(y) for y in data.val_targets]


class LabelfreeModule(MicrosightModule):
    """U-Net from transmitted-light channels to fluorescence channels (+ optional cGAN)."""

    report_family = "labelfree"
    zoom_targets = "linear"
    val_metrics = ("val_psnr",)
    #: Set by evaluation to predict with the U-Net kept from before adversarial refinement.
    use_reference = False

    def build_network(self, config: Configuration, in_channels: int, out_channels: int
                      ) -> nn.Module:
        m: LabelfreeConfig = config.method
        if m.gan:
            self.reference = _unet(m, in_channels, out_channels).requires_grad_(False)
            self.discriminator = PatchDiscriminator(
                m.ndim, in_channels + out_channels, base_channels=m.disc_channels,
                layers=m.disc_layers)
        if m.refine_from:
            # 1 once the network starts from the refined bundle's weights (kept in
            # checkpoints, so a resumed run does not start over from them).
            self.register_buffer("refine_started", torch.zeros((), dtype=torch.int64))
        return _unet(m, in_channels, out_channels)

    @property
    def gan(self) -> bool:
        return bool(self.config.method.gan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_reference and self.gan:
            return self.reference(x)
        return self.network(x)

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        m: LabelfreeConfig = self.config.method
        return pixel_loss(m.loss, prediction, target, ssim_weight=m.ssim_weight)

    # --- adversarial refinement -------------------------------------------------
    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.config.method.refine_from and int(self.refine_started) == 0:
            ref = load_model(self.config.method.refine_from).module.network.state_dict()
            self.network.load_state_dict(ref)
            if self.gan:
                self.reference.load_state_dict(ref)
            self.refine_started.fill_(1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if not self.gan:
            return super().training_step(batch, batch_idx)
        x, y = self.prepare_batch(*self.sampler.sample())
        fake = self(x)
        pixel = self.loss(fake, y)
        disc = self.discriminator
        frozen = {k: v.detach() for k, v in disc.named_parameters()}
        fake_for_g = functional_call(disc, frozen, (torch.cat([x, fake], 1),))
        adversarial = _bce(fake_for_g, True)
        real_logits = disc(torch.cat([x, y.to(x.dtype)], 1))
        fake_logits = disc(torch.cat([x, fake.detach()], 1))
        critic = 0.5 * (_bce(real_logits, True) + _bce(fake_logits, False))
        # train_loss stays the pixel loss, comparable with the U-Net's history.
        self._train_loss_sum += float(pixel.detach())
        self._train_loss_n += 1
        self.log("train_loss", pixel, prog_bar=True, on_step=True, on_epoch=False,
                 batch_size=x.shape[0])
        self.log("gan_g", adversarial, prog_bar=True, on_step=True, on_epoch=False,
                 batch_size=x.shape[0])
        self.log("gan_d", critic, prog_bar=True, on_step=True, on_epoch=False,
                 batch_size=x.shape[0])
        return pixel + self.config.method.gan_weight * adversarial + critic

    # --- family hooks ------------------------------------------------------------

    @classmethod
    def prepare_training(cls, config: Configuration, input_path: str | Path,
                         target_path: str | Path | None, axes: str | None = None
                         ) -> tuple[TrainingSet, dict[str, Any]]:
        """Load pairs, check their registration, split, normalize, fit the linear baseline."""
        if target_path is None:
            raise MicrosightError(
                "labelfree learns from pairs: pass --target with the fluorescence images")
        m: LabelfreeConfig = config.method
        cfg = config.data

        def load(images: str | Path, fluorescence: str | Path):
            inputs, targets, summary = load_pairs(m, images, fluorescence,
                                                  ndim=len(cfg.patch_size),
                                                  axes=axes or cfg.axes)
            summary["target_names"] = target_names(m, targets[0].shape[0])
            if m.registration_check:
                summary["registration"] = registration_report(inputs, targets, m,
                                                              summary["item_names"])
            return inputs, targets, summary

        data = load_and_split(config, load, input_path, target_path)
        if m.gan and min(cfg.patch_size) < 2 ** (m.disc_layers + 1):
            need = 2 ** (m.disc_layers + 1)
            raise MicrosightError(
                f"data.patch_size {cfg.patch_size} is too small for a discriminator with "
                f"{m.disc_layers} layers (needs {need}); lower disc_layers")
        if m.refine_from:
            normalization = reference_model(config, data).normalization
            if normalization["mode"] == "dataset":
                _normalize_like(data, normalization)
            else:
                normalization = normalize_set(data, config)
        else:
            normalization = normalize_set(data, config)
        data.summary["linear_baseline"] = fit_linear(data.train_inputs, data.train_targets,
                                                     seed=config.training.seed)
        return data, normalization

    @classmethod
    def input_image(cls, model: Model, image: Image) -> Image:
        """A z-stack's planes become channels when the model was trained that way."""
        return as_channels(image, model.config.method.z_as_channels)

    @classmethod
    def evaluate_model(cls, model: Model, input_path: str | Path, target_path: str | Path, *,
                       axes: str | None = None, report: str | Path | None = None,
                       settings: TileSettings | None = None) -> Evaluation:
        """Per-target Pearson r / SSIM / NRMSE, error maps and the report."""
        from microsight.methods.labelfree.evaluate import evaluate_labelfree

        return evaluate_labelfree(model, input_path, target_path, axes=axes, report=report,
                                  settings=settings)


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return nn.functional.binary_cross_entropy_with_logits(logits.float(), target.float())
