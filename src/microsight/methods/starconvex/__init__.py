"""Star-convex polygon instance segmentation (object probability + radial distances).

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

from microsight.config import MethodSpec, lazy_attributes
from microsight.families.segmentation.config import INSTANCE_METRICS
from microsight.methods.starconvex.config import StarConvexConfig

SPEC = MethodSpec(
    name="starconvex",
    summary="instance segmentation of roundish objects (nuclei) as star-convex polygons",
    family="segmentation",
    config_class=StarConvexConfig,
    module="microsight.methods.starconvex.module:StarConvexModule",
    needs_target=True,
    outputs=("labels", "probabilities", "objects"),
    metrics=INSTANCE_METRICS,
    predictor="microsight.methods.starconvex.module:StarConvexModule.predict_image",
    evaluator="microsight.methods.starconvex.module:StarConvexModule.evaluate_model",
    ensembles=True,
    exports=True,
    network_output=("channel 0: object probability, then one distance per ray; objects by "
                    "polygon non-maximum suppression (as StarDist)"),
    citation="Schmidt et al., Cell detection with star-convex polygons, MICCAI 2018",
)

__getattr__ = lazy_attributes(__name__, ("StarConvexModule",))

__all__ = ["SPEC", "StarConvexConfig", "StarConvexModule"]
