"""Configuration of Noise2Void (and its N2V2 and structN2V variants)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from microsight.config import UNetConfig


def min_separation(neighborhood: int) -> int:
    """Smallest distance between two masked pixels along some axis (Chebyshev distance)."""
    return neighborhood // 2 + 1


def max_masked_fraction(neighborhood: int, ndim: int) -> float:
    """Densest masking that still keeps masked pixels out of each other's neighbourhood."""
    return float(min_separation(neighborhood)) ** -ndim


class N2VConfig(UNetConfig):
    """Noise2Void: a U-Net trained on noisy images alone by blind-spot masking.

    A small share of the pixels of every patch is replaced (by a neighbour, or
    by the neighbourhood median) and the network learns to predict their
    original noisy values from their surroundings only. With noise that is
    independent from pixel to pixel, the best such prediction is the clean
    signal. ``variant: n2v2`` (Höck et al. 2022) removes the checkerboard
    artefacts of plain N2V: no full-resolution skip connection, max-blur-pool
    down-sampling and median replacement. ``struct_mask`` (structN2V,
    Broaddus et al. 2020) handles noise correlated along rows or columns.
    """

    method: Literal["n2v"] = "n2v"
    ndim: Literal[2, 3] = Field(2, description="2 for YX images, 3 for ZYX stacks.")
    variant: Literal["n2v", "n2v2"] = Field(
        "n2v",
        description=(
            "'n2v': plain Noise2Void U-Net. 'n2v2': no top-level skip connection and "
            "max-blur-pool down-sampling (fewer checkerboard artefacts); its default "
            "manipulator is 'median'."
        ),
    )
    upsampling: Literal["auto", "transpose", "linear"] = Field(
        "auto", description=(
            "U-Net up-sampling: 'transpose' (learned 2x2 transposed convolutions) or "
            "'linear' (interpolation + 1x1 convolution, which cannot make a 2-pixel "
            "checkerboard). 'auto': 'linear' for variant n2v2, 'transpose' for n2v."))
    masked_fraction: float = Field(
        0.002,
        gt=0,
        le=0.2,
        description="Share of pixels masked per patch (0.002 = 0.2%, the usual N2V value).",
    )
    manipulator: Literal["uniform", "median"] = Field(
        "uniform",
        description=(
            "What replaces a masked pixel: 'uniform' = a random pixel of its neighbourhood, "
            "centre excluded (N2V); 'median' = the median of the neighbourhood, centre "
            "excluded (N2V2). Defaults to 'median' for variant n2v2."
        ),
    )
    neighborhood: int = Field(
        5, ge=3, le=15, description="Side of the (odd) window replacement values come from."
    )
    struct_mask: Literal["horizontal", "vertical"] | None = Field(
        None,
        description=(
            "structN2V: also hide a line of pixels through each masked pixel, along X "
            "('horizontal') or Y ('vertical'), for noise correlated along that axis."
        ),
    )
    struct_span: int = Field(
        5, ge=3, le=15, description="Length of the structN2V line (odd, masked pixel included)."
    )
    loss: Literal["mse"] = Field("mse", description="Loss on the masked pixels.")

    @model_validator(mode="before")
    @classmethod
    def _variant_default_manipulator(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("manipulator") is None:
            data = dict(data)
            data["manipulator"] = "median" if data.get("variant") == "n2v2" else "uniform"
        return data

    @field_validator("neighborhood", "struct_span")
    @classmethod
    def _odd(cls, value: int, info: Any) -> int:
        if value % 2 == 0:
            raise ValueError(f"{info.field_name} must be odd, got {value}")
        return value

    @model_validator(mode="after")
    def _masking_not_too_dense(self) -> N2VConfig:
        limit = max_masked_fraction(self.neighborhood, self.ndim)
        if self.masked_fraction > limit + 1e-12:
            raise ValueError(
                f"masked_fraction {self.masked_fraction} is too dense for neighborhood "
                f"{self.neighborhood} in {self.ndim}D: masked pixels must stay "
                f"{min_separation(self.neighborhood)} pixels apart; use at most {limit:.4g}"
            )
        return self
