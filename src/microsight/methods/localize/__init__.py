"""Learned single-molecule localization: per-pixel probability, offsets and uncertainties.

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

from microsight.config import MethodSpec, lazy_attributes
from microsight.families.smlm.config import LOC_METRICS
from microsight.methods.localize.config import LocalizeConfig

SPEC = MethodSpec(
    name="localize",
    summary="learned SMLM localization (probability, offsets, photons, uncertainties); "
            "localization table",
    family="smlm",
    config_class=LocalizeConfig,
    module="microsight.methods.localize.module:LocalizeModule",
    needs_target=None,
    outputs=("localizations",),
    metrics=LOC_METRICS,
    predictor="microsight.methods.localize.module:LocalizeModule.predict_image",
    evaluator="microsight.methods.localize.module:LocalizeModule.evaluate_model",
    exports=True,
    network_output=("input: a frame with its neighbours as channels; output: detection "
                    "probability, sub-pixel offsets, photon and background maps; "
                    "localizations from their local maxima"),
    citation="Speiser et al., DECODE, Nature Methods 2021",
)

__getattr__ = lazy_attributes(__name__, ("LocalizeModule",))

__all__ = ["SPEC", "LocalizeConfig", "LocalizeModule"]
