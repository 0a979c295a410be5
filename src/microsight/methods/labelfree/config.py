"""Configuration of label-free prediction (artificial labelling)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from microsight.config import UNetConfig


class LabelfreeConfig(UNetConfig):
    """Predict fluorescence channels from transmitted-light images with a U-Net.

    The inputs (one or more transmitted-light channels, e.g. the planes of a
    bright-field or phase-contrast z-stack) and the targets (one or more
    fluorescence channels) are normalized per channel; predictions come back
    in each target's intensity scale. With ``gan: true`` a trained label-free
    U-Net (``refine_from``) is refined adversarially (pix2pix: a PatchGAN
    discriminator on input/output pairs plus the pixel loss); the refined
    model keeps the original U-Net so that both outputs can be compared.
    """

    unet_defaults: ClassVar[dict[str, Any]] = {"depth": 3, "base_channels": 16}

    method: Literal["labelfree"] = "labelfree"
    ndim: Literal[2, 3] = Field(2, description="2 for YX images, 3 for ZYX stacks.")
    loss: Literal["mse", "l1", "ssim_l1"] = Field(
        "l1",
        description=(
            "Pixel loss: 'mse' (fnet), 'l1', or 'ssim_l1' (ssim_weight * (1 - SSIM) + "
            "(1 - ssim_weight) * L1)."
        ),
    )
    ssim_weight: float = Field(0.5, ge=0, le=1, description="Weight of 1 - SSIM in 'ssim_l1'.")
    input_axes: str | None = Field(
        None, description="Axes of the input files when their metadata do not say (e.g. 'ZYX')."
    )
    z_as_channels: bool = Field(
        False,
        description=(
            "Use the Z planes of a 2D model's input stack as input channels (a transmitted-"
            "light z-stack in, one fluorescence plane per target out)."
        ),
    )
    target_names: list[str] | None = Field(
        None, description="Names of the target channels in reports (e.g. ['DAPI', 'MAP2'])."
    )
    registration_check: bool = Field(
        True, description="Estimate the input/target shift before training and warn."
    )
    registration_tolerance: float = Field(
        4.0,
        ge=0,
        description=(
            "Shifts longer than this (pixels) are reported as misalignment. Cross-modal "
            "estimates scatter by a few pixels on real data, so the check targets gross offsets."
        ),
    )
    gan: bool = Field(
        False,
        description=(
            "Adversarial refinement (pix2pix) of the label-free U-Net named by refine_from; "
            "can hallucinate structure: compare both outputs in the evaluation report."
        ),
    )
    refine_from: str | None = Field(
        None,
        description=(
            "Bundle of a trained label-free U-Net to start from: the GAN refines it; without "
            "gan, training fine-tunes it."
        ),
    )
    gan_weight: float = Field(
        0.01, gt=0, description="Weight of the adversarial loss relative to the pixel loss."
    )
    disc_channels: int = Field(32, ge=4, le=256, description="Discriminator features, level 1.")
    disc_layers: int = Field(3, ge=1, le=5, description="Discriminator down-samplings.")

    @model_validator(mode="after")
    def _consistent(self) -> LabelfreeConfig:
        if self.gan and not self.refine_from:
            raise ValueError(
                "gan: true refines a trained label-free U-Net; set refine_from to its bundle "
                "(train one with gan: false first)")
        if self.z_as_channels and self.ndim == 3:
            raise ValueError("z_as_channels is for 2D models; a 3D model uses Z as depth")
        return self

    @property
    def architecture(self) -> dict:
        """The fields that fix the U-Net's weights layout (a refined model must match them)."""
        return {k: getattr(self, k) for k in ("ndim", "depth", "base_channels", "kernel_size",
                                              "batch_norm")}
