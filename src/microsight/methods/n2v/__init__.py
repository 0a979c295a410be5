"""Noise2Void: self-supervised denoising (N2V, N2V2, structN2V).

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

from microsight.config import MethodSpec, lazy_attributes
from microsight.families.restoration.config import RESTORATION_METRICS
from microsight.methods.n2v.config import N2VConfig

SPEC = MethodSpec(
    name="n2v",
    summary="self-supervised denoising from noisy images alone (Noise2Void; N2V2, structN2V)",
    family="restoration",
    config_class=N2VConfig,
    module="microsight.methods.n2v.module:N2VModule",
    needs_target=False,
    outputs=("image", "uncertainty"),
    metrics=RESTORATION_METRICS,
    ensembles=True,
    uncertainty_maps=True,
    exports=True,
    network_output="the output is the restored image in normalized units",
    citation="Krull et al., Noise2Void, CVPR 2019; Hoeck et al., N2V2, ECCV workshops 2022",
)

__getattr__ = lazy_attributes(__name__, ("N2VModule",))

__all__ = ["SPEC", "N2VConfig", "N2VModule"]
