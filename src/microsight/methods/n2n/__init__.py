"""Noise2Noise: denoising from pairs of noisy frames (CARE's network and loss).

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

import importlib
from typing import Any

from microsight.config import MethodSpec
from microsight.families.restoration.config import RESTORATION_METRICS
from microsight.methods.n2n.config import N2NConfig

SPEC = MethodSpec(
    name="n2n",
    summary="denoising learned from pairs of independent noisy frames of the same field "
            "(Noise2Noise)",
    family="restoration",
    config_class=N2NConfig,
    module="microsight.methods.n2n.module:N2NModule",
    training_data="microsight.methods.n2n.module:N2NModule.prepare_training",
    needs_target=True,
    outputs=("image", "uncertainty"),
    metrics=RESTORATION_METRICS,
    ensembles=True,
    uncertainty_maps=True,
    exports=True,
    citation="Lehtinen et al., Noise2Noise: learning image restoration without clean data, "
             "ICML 2018",
)

_LAZY = ("N2NModule",)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # Imported by name so that declaring the method stays light.
        return getattr(importlib.import_module(f"{__name__}.module"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SPEC", "N2NConfig", "N2NModule"]
