"""Isotropic restoration of anisotropic 3D stacks (Weigert et al. 2017, 2018).

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

from microsight.config import MethodSpec, lazy_attributes
from microsight.families.restoration.config import RESTORATION_METRICS
from microsight.methods.care_iso.config import CareIsoConfig

SPEC = MethodSpec(
    name="care-iso",
    summary="isotropic restoration of anisotropic ZYX stacks (2D network, XZ/YZ slices)",
    family="restoration",
    config_class=CareIsoConfig,
    module="microsight.methods.care_iso.module:CareIsoModule",
    needs_target=False,
    outputs=("image", "uncertainty"),
    metrics=RESTORATION_METRICS,
    evaluator="microsight.methods.care_iso.module:CareIsoModule.evaluate_model",
    uncertainty_maps=True,
    exports=True,
    network_output=("a 2D network applied to the XZ and YZ slices of a Z-upsampled stack, "
                    "averaged"),
    citation="Weigert et al., Isotropic reconstruction of 3D fluorescence microscopy images "
             "using convolutional neural networks, MICCAI 2017",
)

__getattr__ = lazy_attributes(__name__, ("CareIsoModule",))

__all__ = ["SPEC", "CareIsoConfig", "CareIsoModule"]
