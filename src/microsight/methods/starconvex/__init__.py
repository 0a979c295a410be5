"""Star-convex polygon instance segmentation (object probability + radial distances).

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

import importlib
from typing import Any

from microsight.config import MethodSpec
from microsight.families.segmentation.config import INSTANCE_METRICS
from microsight.methods.starconvex.config import StarConvexConfig

SPEC = MethodSpec(
    name="starconvex",
    summary="instance segmentation of roundish objects (nuclei) as star-convex polygons",
    family="segmentation",
    config_class=StarConvexConfig,
    module="microsight.methods.starconvex.module:StarConvexModule",
    training_data="microsight.methods.starconvex.module:StarConvexModule.prepare_training",
    needs_target=True,
    outputs=("labels", "probabilities", "objects"),
    metrics=INSTANCE_METRICS,
    predictor="microsight.methods.starconvex.module:StarConvexModule.predict_image",
    evaluator="microsight.methods.starconvex.module:StarConvexModule.evaluate_model",
    ensembles=True,
    exports=True,
    citation="Schmidt et al., Cell detection with star-convex polygons, MICCAI 2018",
)

_LAZY = ("StarConvexModule",)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # Imported by name so that declaring the method stays light.
        return getattr(importlib.import_module(f"{__name__}.module"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SPEC", "StarConvexConfig", "StarConvexModule"]
