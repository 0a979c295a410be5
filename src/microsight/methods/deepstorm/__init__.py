"""Deep-STORM: super-resolved images from dense SMLM frames.

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

from microsight.config import MethodSpec, lazy_attributes
from microsight.methods.deepstorm.config import DeepStormConfig

SPEC = MethodSpec(
    name="deepstorm",
    summary="Deep-STORM: super-resolved image (e.g. 8x finer) of a dense SMLM movie",
    family="smlm",
    config_class=DeepStormConfig,
    module="microsight.methods.deepstorm.module:DeepStormModule",
    needs_target=None,
    outputs=("image",),
    metrics=("nmse", "frc_resolution"),
    predictor="microsight.methods.deepstorm.module:DeepStormModule.predict_image",
    evaluator="microsight.methods.deepstorm.module:DeepStormModule.evaluate_model",
    exports=True,
    network_output=("factor^2 sub-pixel channels on the camera grid; rearranged by pixel "
                    "shuffle (depth-to-space) they are the factor times finer emitter "
                    "density, summed over frames"),
    citation="Nehme et al., Deep-STORM, Optica 2018",
)

__getattr__ = lazy_attributes(__name__, ("DeepStormModule",))

__all__ = ["SPEC", "DeepStormConfig", "DeepStormModule"]
