"""CARE: supervised content-aware restoration.

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

import importlib
from typing import Any

from microsight.config import MethodSpec
from microsight.families.restoration.config import RESTORATION_METRICS
from microsight.methods.care.config import CareConfig

SPEC = MethodSpec(
    name="care",
    summary="supervised restoration (denoising) from pairs of low/high-quality images",
    family="restoration",
    config_class=CareConfig,
    module="microsight.methods.care.module:CareModule",
    training_data="microsight.methods.care.module:CareModule.prepare_training",
    needs_target=True,
    outputs=("image", "uncertainty"),
    metrics=RESTORATION_METRICS,
    ensembles=True,
    uncertainty_maps=True,
    exports=True,
    citation="Weigert et al., Content-aware image restoration, Nature Methods 2018",
)

_LAZY = ("CareModule",)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # Imported by name so that declaring the method stays light.
        return getattr(importlib.import_module(f"{__name__}.module"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SPEC", "CareConfig", "CareModule"]
