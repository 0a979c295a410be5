"""Label-free prediction: fluorescence from transmitted light (artificial labelling).

This package declares the method (``SPEC``) and imports only its config;
the network and its training code load when a model is built.
"""

from microsight.config import MethodSpec, lazy_attributes
from microsight.methods.labelfree.config import LabelfreeConfig

SPEC = MethodSpec(
    name="labelfree",
    summary="label-free prediction of fluorescence from transmitted light (U-Net, optional "
            "pix2pix refinement)",
    family="artificial labelling",
    config_class=LabelfreeConfig,
    module="microsight.methods.labelfree.module:LabelfreeModule",
    needs_target=True,
    outputs=("image", "uncertainty"),
    metrics=("pearson", "ssim", "nrmse"),
    evaluator="microsight.methods.labelfree.module:LabelfreeModule.evaluate_model",
    ensembles=True,
    uncertainty_maps=True,
    exports=True,
    network_output="the output is the predicted fluorescence in normalized units",
    citation="Ounkomol et al., Label-free prediction of three-dimensional fluorescence images "
             "from transmitted-light microscopy, Nature Methods 2018",
)

__getattr__ = lazy_attributes(__name__, ("LabelfreeModule",))

__all__ = ["SPEC", "LabelfreeConfig", "LabelfreeModule"]
