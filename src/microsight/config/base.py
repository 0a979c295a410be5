"""Versioned pydantic configuration shared by every method.

A :class:`Configuration` is the whole recipe of a model: which method, how
the data are cut into patches and normalized, and how training runs. It is
saved as ``config.yaml`` inside every model bundle, so a model always
describes itself. Every default trains on a 2-core laptop CPU.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

CONFIG_VERSION = 1


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors (typos show up)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NormalizationConfig(StrictModel):
    """Percentile normalization of inputs and targets."""

    p_low: float = Field(1.0, ge=0, lt=100, description="Lower percentile mapped to 0.")
    p_high: float = Field(99.8, gt=0, le=100, description="Upper percentile mapped to 1.")
    mode: Literal["dataset", "per_image"] = Field(
        "dataset",
        description=(
            "'dataset': percentiles computed once over all training images, saved in the "
            "bundle and re-applied to every new image (outputs come back in the training "
            "target's intensity scale). 'per_image': every image is normalized with its own "
            "percentiles (robust to brightness changes between acquisitions)."
        ),
    )
    invert: bool = Field(
        False,
        description=(
            "Inputs only: map the high percentile to 0 and the low one to 1, so that dark "
            "objects on a bright background (brightfield, H&E) look like fluorescence; "
            "a fluorescence model fine-tuned on such images then starts from what it knows."
        ),
    )

    @model_validator(mode="after")
    def _ordered(self) -> NormalizationConfig:
        if self.p_low >= self.p_high:
            raise ValueError(f"p_low ({self.p_low}) must be below p_high ({self.p_high})")
        return self


class DataConfig(StrictModel):
    """How training images are cut into patches, augmented and split."""

    axes: str | None = Field(
        None, description="Axes of the training images when their files do not say (e.g. 'YX')."
    )
    patch_size: list[int] = Field(
        [64, 64], description="Patch size per spatial axis (YX, or ZYX for 3D models)."
    )
    batch_size: int = Field(16, ge=1, description="Patches per optimizer step.")
    val_fraction: float = Field(
        0.1,
        gt=0,
        lt=1,
        description=(
            "Share of the data held out for validation: whole groups of images (a field of "
            "view with all its frames, see group_pattern) when there are several, otherwise "
            "the bottom rows of every image. Not used with val_input."
        ),
    )
    val_input: str | None = Field(
        None,
        description=(
            "Validation images (a file or folder), e.g. other fields of view: training then "
            "uses every training image and validation uses these (no automatic split)."
        ),
    )
    val_target: str | None = Field(
        None, description="Targets of val_input (file or folder, paired by file name)."
    )
    group_pattern: str | None = Field(
        None,
        description=(
            "Regular expression searched in every file name; its first group (or the whole "
            "match) names the field of view, and the automatic split keeps each field of view "
            "on one side. Default: names differing only by a trailing frame/tile number "
            "(_12, -12, _t12, _z12, _frame12, frame12) are one field of view."
        ),
    )
    foreground_fraction: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of patches centred on bright (foreground) target pixels; rest uniform.",
    )
    flips: bool = Field(True, description="Random flips of the patch plane.")
    rotations: bool = Field(True, description="Random 90-degree rotations (needs square YX).")
    intensity_jitter: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Random gain in [1-j, 1+j] applied to input and target together.",
    )
    scale_jitter: float = Field(
        0.0,
        ge=0,
        le=1,
        description=(
            "Random zoom of each patch between 1/(1+s) and 1+s (e.g. 0.3), so that a "
            "segmentation or label-free model sees its objects at more sizes; 0 off."
        ),
    )
    normalization: NormalizationConfig = Field(default_factory=NormalizationConfig)

    @field_validator("patch_size")
    @classmethod
    def _patch_ok(cls, value: list[int]) -> list[int]:
        if len(value) not in (2, 3):
            raise ValueError("give 2 sizes (YX) or 3 sizes (ZYX)")
        if any(v < 8 for v in value):
            raise ValueError(f"every patch size must be at least 8 pixels, got {value}")
        return value

    @field_validator("group_pattern")
    @classmethod
    def _pattern_ok(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _target_with_input(self) -> DataConfig:
        if self.val_target and not self.val_input:
            raise ValueError("val_target needs val_input (the validation images it belongs to)")
        return self

    @model_validator(mode="after")
    def _square_for_rotations(self) -> DataConfig:
        if self.rotations and self.patch_size[-1] != self.patch_size[-2]:
            raise ValueError(
                f"90-degree rotations need a square YX patch, got {self.patch_size[-2:]}; "
                "make Y and X equal or set rotations: false"
            )
        return self


class TrainingConfig(StrictModel):
    """The optimization loop."""

    epochs: int = Field(20, ge=1, description="Maximum number of epochs.")
    steps_per_epoch: int = Field(100, ge=1, description="Optimizer steps in one epoch.")
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many steps in total (overrides epochs)."
    )
    learning_rate: float = Field(4e-4, gt=0, le=1, description="Initial learning rate (Adam).")
    lr_schedule: Literal["cosine", "plateau", "constant"] = Field(
        "cosine", description="Learning-rate schedule."
    )
    early_stopping_patience: int | None = Field(
        10, ge=1, description="Stop when validation loss has not improved for this many epochs."
    )
    seed: int = Field(0, description="Random seed: the same seed and data give the same model.")
    init_from: str | None = Field(
        None, description="Model folder or .zip whose weights start this training "
                          "(fine-tuning; same method and network fields). Pair it with a "
                          "lower learning_rate, e.g. 1e-4."
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="Where to train: 'mps' is an Apple-silicon GPU.")
    devices: int = Field(
        1, ge=1, description="Devices (GPUs, or CPU processes) trained on at once with "
                             "distributed data parallel; each draws its own patches, so a "
                             "step sees devices x batch_size patches.")
    num_nodes: int = Field(1, ge=1, description="Machines trained on at once (a cluster job).")
    precision: Literal["auto", "32", "bf16-mixed", "16-mixed"] = Field(
        "auto", description="'auto': bf16 mixed precision on CUDA and on CPUs with native "
                "bf16 (AVX512-BF16/AMX), fp32 otherwise."
    )
    val_tile: int = Field(
        256, ge=16, description="Validation images are scored whole, in tiles of this size."
    )


class MethodConfig(StrictModel):
    """Base of every method's own knobs; subclasses set ``method: Literal[...]``."""

    method: str


def format_errors(exc: ValidationError) -> str:
    """Pydantic errors as one line: ``field.path: reason; ...``."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def merge_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``overrides`` into a copy of ``base`` (``None`` values are skipped)."""
    out = dict(base)
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict):
            base_value = out.get(key)
            out[key] = merge_overrides(base_value if isinstance(base_value, dict) else {}, value)
        else:
            out[key] = value
    return out
