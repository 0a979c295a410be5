"""Distance-map regression + marker watershed instance segmentation (Naylor et al. 2019).

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

from microsight.config import MethodSpec, lazy_attributes
from microsight.families.segmentation.config import INSTANCE_METRICS
from microsight.methods.distmap.config import DistMapConfig

SPEC = MethodSpec(
    name="distmap",
    summary="instance segmentation of touching or non-convex cells: distance map + watershed",
    family="segmentation",
    config_class=DistMapConfig,
    module="microsight.methods.distmap.module:DistMapModule",
    needs_target=True,
    outputs=("labels", "probabilities", "objects"),
    metrics=INSTANCE_METRICS,
    predictor="microsight.methods.distmap.module:DistMapModule.predict_image",
    evaluator="microsight.methods.distmap.module:DistMapModule.evaluate_model",
    ensembles=True,
    exports=True,
    network_output=("channel 0: foreground probability, channel 1: normalized distance; "
                    "objects by seeded watershed (microsight's post-processing, thresholds "
                    "in the config)"),
    citation=("Naylor et al., Segmentation of nuclei in histopathology images by deep "
             "regression of the distance map, IEEE TMI 2019"),
)

__getattr__ = lazy_attributes(__name__, ("DistMapModule",))

__all__ = ["SPEC", "DistMapConfig", "DistMapModule"]
