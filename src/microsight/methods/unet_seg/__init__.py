"""Semantic segmentation with a U-Net (background / object / boundary by default).

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

from microsight.config import MethodSpec, lazy_attributes
from microsight.families.segmentation.config import INSTANCE_METRICS
from microsight.methods.unet_seg.config import UNetSegConfig

SPEC = MethodSpec(
    name="unet-seg",
    summary="semantic segmentation (background / object / boundary) with class probabilities",
    family="segmentation",
    config_class=UNetSegConfig,
    module="microsight.methods.unet_seg.module:UNetSegModule",
    needs_target=True,
    outputs=("labels", "probabilities", "objects"),
    metrics=INSTANCE_METRICS + ("mean_iou", "mean_dice", "accuracy"),
    predictor="microsight.methods.unet_seg.module:UNetSegModule.predict_image",
    evaluator="microsight.methods.unet_seg.module:UNetSegModule.evaluate_model",
    ensembles=True,
    exports=True,
    network_output="per-class probabilities (softmax); labels are the argmax",
    citation="Ronneberger et al., U-Net, MICCAI 2015",
)

__getattr__ = lazy_attributes(__name__, ("UNetSegModule",))

__all__ = ["SPEC", "UNetSegConfig", "UNetSegModule"]
