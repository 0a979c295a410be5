"""Configuration of the learned SMLM localizer."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from microsight.families.smlm.config import SMLMConfig


class LocalizeConfig(SMLMConfig):
    """A compact U-Net predicting, per pixel, the probability that an emitter sits there,
    its sub-pixel offsets (x, y, and z for an astigmatic PSF) and photons, each with an
    uncertainty, and the background (in the spirit of DECODE, Speiser et al. 2021).

    Training movies are simulated from ``simulation`` (or given with ``--input`` and
    ``--target``); neighbouring frames enter as extra input channels.
    """

    # Small: a 10,000-frame 64 x 64 movie in about 2 minutes on 2 CPU cores.
    unet_defaults: ClassVar[dict[str, Any]] = {"depth": 3, "base_channels": 12}

    method: Literal["localize"] = "localize"
    context: int = Field(
        1, ge=0, le=3, description="Neighbouring frames on each side given as context.")
    threshold: float = Field(
        0.5, gt=0, lt=1, description="Detection: smallest probability summed over a 3x3 "
                                     "neighbourhood around a local maximum.")
    single_threshold: float = Field(
        0.6, gt=0, lt=1, description="Detection: a pixel with at least this probability is "
                                     "an emitter even next to a stronger one.")
    tune_threshold: bool = Field(
        True, description="After training on simulated movies, choose threshold and "
                          "single_threshold on the validation movie (the highest Jaccard "
                          "whose lateral RMSE stays within half a pixel), as `microsight "
                          "tune` does.")
    refine: bool = Field(
        True, description="Polish 2D localizations by Poisson maximum-likelihood fits of "
                          "the PSF, which reach the Cramer-Rao bound: isolated detections "
                          "alone (split in two when the spot holds an unresolved pair), "
                          "two close detections jointly; larger groups keep the network's "
                          "estimates, duplicates are dropped.")
    table_format: Literal["native", "thunderstorm"] = Field(
        "native", description="Columns of the CSV written at prediction.")
