"""Semantic segmentation with a U-Net (background / object / boundary by default).

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

from microsight.config import MethodSpec, lazy_attributes
from microsight.families.segmentation.config import INSTANCE_METRICS, SEGMENTATION_SPEC
from microsight.methods.unet_seg.config import UNetSegConfig

SPEC = MethodSpec(
    name="unet-seg",
    # Class maps are scored by IoU and Dice too.
    **{**SEGMENTATION_SPEC, "metrics": INSTANCE_METRICS + ("mean_iou", "mean_dice", "accuracy")},
    summary="semantic segmentation (background / object / boundary) with class probabilities",
    config_class=UNetSegConfig,
    module="microsight.methods.unet_seg.module:UNetSegModule",
    network_output="per-class probabilities (softmax); labels are the argmax",
    citation="Ronneberger et al., U-Net, MICCAI 2015",
)

__getattr__ = lazy_attributes(__name__, ("UNetSegModule",))

__all__ = ["SPEC", "UNetSegConfig", "UNetSegModule"]
