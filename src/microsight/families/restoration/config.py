"""Configuration shared by the restoration methods (torch-free)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from microsight.config import UNetConfig

#: Test metrics of every restoration report.
RESTORATION_METRICS = ("psnr", "ssim", "nrmse")


#: What every restoration method declares alike (``MethodSpec(..., **RESTORATION_SPEC)``).
RESTORATION_SPEC = {"family": "restoration", "outputs": ("image", "uncertainty"),
                    "metrics": RESTORATION_METRICS, "ensembles": True,
                    "uncertainty_maps": True, "exports": True}


class RestorationUNetConfig(UNetConfig):
    """A U-Net restoring an image: optionally residual, with a pixel loss."""

    residual: bool = Field(
        True, description="Learn a correction added to the input (needs equal channel counts)."
    )
    loss: Literal["l1", "mse"] = Field("mse", description="Pixel loss (CARE's default is mse).")
