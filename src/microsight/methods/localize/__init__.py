"""Learned single-molecule localization: per-pixel probability, offsets and uncertainties."""

from microsight.methods.localize.config import LocalizeConfig
from microsight.methods.localize.module import LocalizeModule

__all__ = ["LocalizeConfig", "LocalizeModule"]
