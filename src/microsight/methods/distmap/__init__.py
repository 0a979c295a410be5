"""Distance-map regression + marker watershed instance segmentation (Naylor et al. 2019).

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

import importlib
from typing import Any

from microsight.config import MethodSpec
from microsight.families.segmentation.config import INSTANCE_METRICS
from microsight.methods.distmap.config import DistMapConfig

SPEC = MethodSpec(
    name="distmap",
    summary="instance segmentation of touching or non-convex cells: distance map + watershed",
    family="segmentation",
    config_class=DistMapConfig,
    module="microsight.methods.distmap.module:DistMapModule",
    training_data="microsight.methods.distmap.module:DistMapModule.prepare_training",
    needs_target=True,
    outputs=("labels", "probabilities", "objects"),
    metrics=INSTANCE_METRICS,
    predictor="microsight.methods.distmap.module:DistMapModule.predict_image",
    evaluator="microsight.methods.distmap.module:DistMapModule.evaluate_model",
    ensembles=True,
    exports=True,
    citation=("Naylor et al., Segmentation of nuclei in histopathology images by deep "
             "regression of the distance map, IEEE TMI 2019"),
)

_LAZY = ("DistMapModule",)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # Imported by name so that declaring the method stays light.
        return getattr(importlib.import_module(f"{__name__}.module"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SPEC", "DistMapConfig", "DistMapModule"]
