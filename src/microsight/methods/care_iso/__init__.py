"""Isotropic restoration of anisotropic 3D stacks (Weigert et al. 2017, 2018).

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

import importlib
from typing import Any

from microsight.config import MethodSpec
from microsight.families.restoration.config import RESTORATION_METRICS
from microsight.methods.care_iso.config import CareIsoConfig

SPEC = MethodSpec(
    name="care-iso",
    summary="isotropic restoration of anisotropic ZYX stacks (2D network, XZ/YZ slices)",
    family="restoration",
    config_class=CareIsoConfig,
    module="microsight.methods.care_iso.module:CareIsoModule",
    training_data="microsight.methods.care_iso.module:CareIsoModule.prepare_training",
    needs_target=False,
    outputs=("image", "uncertainty"),
    metrics=RESTORATION_METRICS,
    evaluator="microsight.methods.care_iso.module:CareIsoModule.evaluate_model",
    uncertainty_maps=True,
    exports=True,
    citation="Weigert et al., Isotropic reconstruction of 3D fluorescence microscopy images "
             "using convolutional neural networks, MICCAI 2017",
)

_LAZY = ("CareIsoModule",)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # Imported by name so that declaring the method stays light.
        return getattr(importlib.import_module(f"{__name__}.module"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SPEC", "CareIsoConfig", "CareIsoModule"]
