"""Classification of crops, images and the objects of a label image.

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

import importlib
from typing import Any

from microsight.config import MethodSpec
from microsight.methods.classify.config import ClassifyConfig

SPEC = MethodSpec(
    name="classify",
    summary="classification of crops/images (ResNet), incl. the objects of a label image",
    family="classification",
    config_class=ClassifyConfig,
    module="microsight.methods.classify.module:ClassifyModule",
    training_data="microsight.methods.classify.module:ClassifyModule.prepare_training",
    needs_target=False,
    outputs=("classes",),
    metrics=("accuracy", "balanced_accuracy"),
    predictor="microsight.methods.classify.module:ClassifyModule.predict_image",
    evaluator="microsight.methods.classify.module:ClassifyModule.evaluate_model",
    citation="He et al., Deep residual learning for image recognition, CVPR 2016",
)

_LAZY = ("ClassifyModule", "classify_crops", "classify_folder", "classify_objects")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # Imported by name so that declaring the method stays light.
        return getattr(importlib.import_module(f"{__name__}.module"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SPEC",
    "ClassifyConfig",
    "ClassifyModule",
    "classify_crops",
    "classify_folder",
    "classify_objects",
]
