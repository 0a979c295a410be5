"""Single-image super-resolution by an integer factor (CARE upsampling U-Net or RCAN).

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

import importlib
from typing import Any

from microsight.config import MethodSpec
from microsight.families.restoration.config import RESTORATION_METRICS
from microsight.methods.sr.config import SRConfig

SPEC = MethodSpec(
    name="sr",
    summary="super-resolution by an integer factor (CARE upsampling U-Net or RCAN)",
    family="restoration",
    config_class=SRConfig,
    module="microsight.methods.sr.module:SRModule",
    training_data="microsight.methods.sr.module:SRModule.prepare_training",
    needs_target=None,
    outputs=("image", "uncertainty"),
    metrics=RESTORATION_METRICS,
    ensembles=True,
    uncertainty_maps=True,
    exports=True,
    citation="Weigert et al., Nature Methods 2018; Zhang et al., RCAN, ECCV 2018",
)

_LAZY = ("SRModule",)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # Imported by name so that declaring the method stays light.
        return getattr(importlib.import_module(f"{__name__}.module"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SPEC", "SRConfig", "SRModule"]
