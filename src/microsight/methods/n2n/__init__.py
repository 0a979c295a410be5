"""Noise2Noise: denoising from pairs of noisy frames (CARE's network and loss).

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

from microsight.config import MethodSpec, lazy_attributes
from microsight.families.restoration.config import RESTORATION_METRICS
from microsight.methods.n2n.config import N2NConfig

SPEC = MethodSpec(
    name="n2n",
    summary="denoising learned from pairs of independent noisy frames of the same field "
            "(Noise2Noise)",
    family="restoration",
    config_class=N2NConfig,
    module="microsight.methods.n2n.module:N2NModule",
    needs_target=True,
    outputs=("image", "uncertainty"),
    metrics=RESTORATION_METRICS,
    ensembles=True,
    uncertainty_maps=True,
    exports=True,
    network_output="the output is the restored image in normalized units",
    citation="Lehtinen et al., Noise2Noise: learning image restoration without clean data, "
             "ICML 2018",
)

__getattr__ = lazy_attributes(__name__, ("N2NModule",))

__all__ = ["SPEC", "N2NConfig", "N2NModule"]
