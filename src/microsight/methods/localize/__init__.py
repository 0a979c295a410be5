"""Learned single-molecule localization: per-pixel probability, offsets and uncertainties.

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

import importlib
from typing import Any

from microsight.config import MethodSpec
from microsight.families.smlm.config import LOC_METRICS
from microsight.methods.localize.config import LocalizeConfig

SPEC = MethodSpec(
    name="localize",
    summary="learned SMLM localization (probability, offsets, photons, uncertainties); "
            "localization table",
    family="smlm",
    config_class=LocalizeConfig,
    module="microsight.methods.localize.module:LocalizeModule",
    training_data="microsight.methods.localize.module:LocalizeModule.prepare_training",
    needs_target=None,
    outputs=("localizations",),
    metrics=LOC_METRICS,
    predictor="microsight.methods.localize.module:LocalizeModule.predict_image",
    evaluator="microsight.methods.localize.module:LocalizeModule.evaluate_model",
    exports=True,
    citation="Speiser et al., DECODE, Nature Methods 2021",
)

_LAZY = ("LocalizeModule",)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # Imported by name so that declaring the method stays light.
        return getattr(importlib.import_module(f"{__name__}.module"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SPEC", "LocalizeConfig", "LocalizeModule"]
