"""Point detection: centre heat-maps, peak extraction, coordinates out.

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

from microsight.config import MethodSpec, lazy_attributes
from microsight.methods.detect.config import DetectConfig

SPEC = MethodSpec(
    name="detect",
    summary="point detection (cells, nuclei, spots) from centre heat-maps; CSV of points",
    family="detection",
    config_class=DetectConfig,
    module="microsight.methods.detect.module:DetectModule",
    needs_target=True,
    outputs=("points",),
    metrics=("f1", "precision", "recall"),
    predictor="microsight.methods.detect.module:DetectModule.predict_image",
    evaluator="microsight.methods.detect.module:DetectModule.evaluate_model",
    exports=True,
    network_output="per-class point heat maps (sigmoid); points are their local maxima",
    citation="Zhou et al., Objects as points, arXiv 2019",
)

__getattr__ = lazy_attributes(__name__, ("DetectModule",))

__all__ = ["SPEC", "DetectConfig", "DetectModule"]
