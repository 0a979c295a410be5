"""Point detection: centre heat-maps, peak extraction, coordinates out.

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

import importlib
from typing import Any

from microsight.config import MethodSpec
from microsight.methods.detect.config import DetectConfig

SPEC = MethodSpec(
    name="detect",
    summary="point detection (cells, nuclei, spots) from centre heat-maps; CSV of points",
    family="detection",
    config_class=DetectConfig,
    module="microsight.methods.detect.module:DetectModule",
    training_data="microsight.methods.detect.module:DetectModule.prepare_training",
    needs_target=True,
    outputs=("points",),
    metrics=("precision", "recall", "f1"),
    predictor="microsight.methods.detect.module:DetectModule.predict_image",
    evaluator="microsight.methods.detect.module:DetectModule.evaluate_model",
    exports=True,
    citation="Zhou et al., Objects as points, arXiv 2019",
)

_LAZY = ("DetectModule",)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # Imported by name so that declaring the method stays light.
        return getattr(importlib.import_module(f"{__name__}.module"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SPEC", "DetectConfig", "DetectModule"]
