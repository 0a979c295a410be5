"""Self-supervised embedding of cell crops, clustering and 2D maps.

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

import importlib
from typing import Any

from microsight.config import MethodSpec
from microsight.methods.embed.config import EmbedConfig

SPEC = MethodSpec(
    name="embed",
    summary="self-supervised (contrastive) features of cell crops, clustering, 2D map",
    family="embedding",
    config_class=EmbedConfig,
    module="microsight.methods.embed.module:EmbedModule",
    training_data="microsight.methods.embed.module:EmbedModule.prepare_training",
    needs_target=False,
    outputs=("embedding",),
    metrics=("knn_accuracy", "adjusted_rand", "nmi"),
    predictor="microsight.methods.embed.module:EmbedModule.predict_image",
    evaluator="microsight.methods.embed.module:EmbedModule.evaluate_model",
    citation="Chen et al., A simple framework for contrastive learning (SimCLR), ICML 2020",
)

_LAZY = ("EmbedModule", "cluster", "embed_crops", "embed_objects", "knn_accuracy", "project_2d")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # Imported by name so that declaring the method stays light.
        return getattr(importlib.import_module(f"{__name__}.module"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SPEC",
    "EmbedConfig",
    "EmbedModule",
    "cluster",
    "embed_crops",
    "embed_objects",
    "knn_accuracy",
    "project_2d",
]
