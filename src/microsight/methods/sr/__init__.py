"""Single-image super-resolution by an integer factor (CARE upsampling U-Net or RCAN).

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

from microsight.config import MethodSpec, lazy_attributes
from microsight.families.restoration.config import RESTORATION_METRICS
from microsight.methods.sr.config import SRConfig

SPEC = MethodSpec(
    name="sr",
    summary="super-resolution by an integer factor (CARE upsampling U-Net or RCAN)",
    family="restoration",
    config_class=SRConfig,
    module="microsight.methods.sr.module:SRModule",
    needs_target=None,
    outputs=("image", "uncertainty"),
    metrics=RESTORATION_METRICS,
    ensembles=True,
    uncertainty_maps=True,
    exports=True,
    network_output="the output is the upsampled image in normalized units",
    citation="Weigert et al., Nature Methods 2018; Zhang et al., RCAN, ECCV 2018",
)

__getattr__ = lazy_attributes(__name__, ("SRModule",))

__all__ = ["SPEC", "SRConfig", "SRModule"]
