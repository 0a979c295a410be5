"""Configuration of self-supervised crop embedding (contrastive) and clustering."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from microsight.config import MethodConfig


class EmbedConfig(MethodConfig):
    """SimCLR-style contrastive features of cell crops, then clustering and a 2D map.

    Training data: a folder of crops (flat, or with class subfolders whose names are only
    used to score the embedding afterwards); ``data.patch_size`` is the crop size.
    """

    method: Literal["embed"] = "embed"
    ndim: Literal[2] = Field(2, description="Crops are 2D (YX) with any number of channels.")
    widths: list[int] = Field([16, 32, 64], description="ResNet channels per stage.")
    blocks: int = Field(1, ge=1, le=4, description="Residual blocks per stage.")
    projection_dim: int = Field(32, ge=2, le=512, description="Size of the contrastive head.")
    temperature: float = Field(0.2, gt=0, le=2, description="NT-Xent temperature.")
    max_shift: int = Field(3, ge=0, le=16, description="Random translation of a view (px).")
    noise: float = Field(0.05, ge=0, le=1, description="Gaussian noise added to each view.")
    n_clusters: int = Field(
        0, ge=0, description="k-means clusters; 0 = the number of classes (or 5 unlabelled).")
    projection: Literal["pca", "tsne"] = Field("pca", description="2D map of the embedding.")
