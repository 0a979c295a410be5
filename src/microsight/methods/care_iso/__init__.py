"""Isotropic restoration of anisotropic 3D stacks (Weigert et al. 2017, 2018)."""

from microsight.methods.care_iso.config import CareIsoConfig
from microsight.methods.care_iso.module import CareIsoModule

__all__ = ["CareIsoConfig", "CareIsoModule"]
