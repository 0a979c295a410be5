"""CARE: supervised content-aware restoration."""

from microsight.methods.care.config import CareConfig
from microsight.methods.care.module import CareModule

__all__ = ["CareConfig", "CareModule"]
