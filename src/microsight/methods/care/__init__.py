"""CARE: supervised content-aware restoration.

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

from microsight.config import MethodSpec, lazy_attributes
from microsight.families.restoration.config import RESTORATION_METRICS
from microsight.methods.care.config import CareConfig

SPEC = MethodSpec(
    name="care",
    summary="supervised restoration (denoising) from pairs of low/high-quality images",
    family="restoration",
    config_class=CareConfig,
    module="microsight.methods.care.module:CareModule",
    needs_target=True,
    outputs=("image", "uncertainty"),
    metrics=RESTORATION_METRICS,
    ensembles=True,
    uncertainty_maps=True,
    exports=True,
    network_output="the output is the restored image in normalized units",
    citation="Weigert et al., Content-aware image restoration, Nature Methods 2018",
)

__getattr__ = lazy_attributes(__name__, ("CareModule",))

__all__ = ["SPEC", "CareConfig", "CareModule"]
