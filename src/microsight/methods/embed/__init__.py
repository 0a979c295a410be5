"""Self-supervised embedding of cell crops, clustering and 2D maps."""

from microsight.methods.embed.config import EmbedConfig
from microsight.methods.embed.module import (
    EmbedModule,
    cluster,
    embed_crops,
    embed_objects,
    knn_accuracy,
    project_2d,
)

__all__ = ["EmbedConfig", "EmbedModule", "cluster", "embed_crops", "embed_objects",
           "knn_accuracy", "project_2d"]
