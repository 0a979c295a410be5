"""Deep-STORM: super-resolved images from dense SMLM frames.

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

import importlib
from typing import Any

from microsight.config import MethodSpec
from microsight.methods.deepstorm.config import DeepStormConfig

SPEC = MethodSpec(
    name="deepstorm",
    summary="Deep-STORM: super-resolved image (e.g. 8x finer) of a dense SMLM movie",
    family="smlm",
    config_class=DeepStormConfig,
    module="microsight.methods.deepstorm.module:DeepStormModule",
    training_data="microsight.methods.deepstorm.module:DeepStormModule.prepare_training",
    needs_target=None,
    outputs=("image",),
    metrics=("nmse", "frc_resolution"),
    predictor="microsight.methods.deepstorm.module:DeepStormModule.predict_image",
    evaluator="microsight.methods.deepstorm.module:DeepStormModule.evaluate_model",
    exports=True,
    citation="Nehme et al., Deep-STORM, Optica 2018",
)

_LAZY = ("DeepStormModule",)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # Imported by name so that declaring the method stays light.
        return getattr(importlib.import_module(f"{__name__}.module"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SPEC", "DeepStormConfig", "DeepStormModule"]
