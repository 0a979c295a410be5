"""Self-supervised embedding of cell crops, clustering and 2D maps.

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

from microsight.config import MethodSpec, lazy_attributes
from microsight.methods.embed.config import EmbedConfig

SPEC = MethodSpec(
    name="embed",
    summary="self-supervised (contrastive) features of cell crops, clustering, 2D map",
    family="embedding",
    config_class=EmbedConfig,
    module="microsight.methods.embed.module:EmbedModule",
    needs_target=False,
    outputs=("embedding",),
    metrics=("knn_accuracy", "adjusted_rand", "nmi"),
    predictor="microsight.methods.embed.module:EmbedModule.predict_image",
    evaluator="microsight.methods.embed.module:EmbedModule.evaluate_model",
    citation="Chen et al., A simple framework for contrastive learning (SimCLR), ICML 2020",
)

__getattr__ = lazy_attributes(__name__, (
    "EmbedModule",
    "cluster",
    "embed_crops",
    "embed_objects",
    "knn_accuracy",
    "project_2d",
))

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
