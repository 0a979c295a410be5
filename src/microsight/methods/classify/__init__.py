"""Classification of crops, images and the objects of a label image.

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

from microsight.config import MethodSpec, lazy_attributes
from microsight.methods.classify.config import ClassifyConfig

SPEC = MethodSpec(
    name="classify",
    summary="classification of crops/images (ResNet), incl. the objects of a label image",
    family="classification",
    config_class=ClassifyConfig,
    module="microsight.methods.classify.module:ClassifyModule",
    needs_target=False,
    outputs=("classes",),
    metrics=("accuracy", "balanced_accuracy"),
    predictor="microsight.methods.classify.module:ClassifyModule.predict_image",
    evaluator="microsight.methods.classify.module:ClassifyModule.evaluate_model",
    citation="He et al., Deep residual learning for image recognition, CVPR 2016",
)

__getattr__ = lazy_attributes(__name__, (
    "ClassifyModule",
    "classify_crops",
    "classify_folder",
    "classify_objects",
))

__all__ = [
    "SPEC",
    "ClassifyConfig",
    "ClassifyModule",
    "classify_crops",
    "classify_folder",
    "classify_objects",
]
