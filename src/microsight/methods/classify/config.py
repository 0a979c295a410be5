"""Configuration of crop / image classification."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from microsight.config import MethodConfig


class ClassifyConfig(MethodConfig):
    """A small ResNet classifying fixed-size crops (``data.patch_size`` is the crop size).

    Training data: a folder with one subfolder per class, one image (crop) per file,
    axes ``CYX`` or ``YX``. Samples of another size are centre-cropped or padded to
    ``data.patch_size``. A folder holding ``train/`` and ``val/`` (each with the class
    subfolders) gives a fixed validation split; otherwise ``data.val_fraction`` of every
    class is held out (stratified, seeded).
    """

    method: Literal["classify"] = "classify"
    ndim: Literal[2] = Field(2, description="Crops are 2D (YX) with any number of channels.")
    widths: list[int] = Field([16, 32, 64], description="ResNet channels per stage.")
    blocks: int = Field(1, ge=1, le=4, description="Residual blocks per stage.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout before the classifier head.")
    balance: Literal["sampling", "loss", "none"] = Field(
        "sampling",
        description=(
            "Rare classes: 'sampling' draws every class equally often, 'loss' weights the "
            "cross-entropy by inverse class frequency, 'none' uses natural frequencies."
        ),
    )
    balance_power: float = Field(
        1.0, ge=0, le=1,
        description="0 = natural frequencies, 1 = fully balanced (in between: softened).")
    label_smoothing: float = Field(0.05, ge=0, lt=1, description="Cross-entropy smoothing.")
    max_shift: int = Field(2, ge=0, le=16, description="Random translation (pixels).")
    tta: bool = Field(
        True, description="Test-time augmentation: average over the 8 flips/rotations.")

    @field_validator("widths")
    @classmethod
    def _widths(cls, value: list[int]) -> list[int]:
        if not 1 <= len(value) <= 5 or any(w < 4 for w in value):
            raise ValueError("give 1 to 5 stage widths of at least 4 channels")
        return value
