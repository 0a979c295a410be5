"""Configuration of CARE (content-aware image restoration)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from microsight.families.restoration.config import RestorationUNetConfig


class CareConfig(RestorationUNetConfig):
    """CARE: a U-Net trained on pairs of low-quality and high-quality images.

    Defaults are small enough to train on a 2-core laptop CPU in minutes;
    raise ``depth`` and ``base_channels`` on a GPU.
    """

    method: Literal["care"] = "care"
    ndim: Literal[2, 3] = Field(2, description="2 for YX images, 3 for ZYX stacks.")
    probabilistic: bool = Field(
        False,
        description=(
            "Also predict a per-pixel Laplace scale (an uncertainty map, in intensity units); "
            "trained by the Laplace negative log-likelihood instead of `loss`."
        ),
    )
