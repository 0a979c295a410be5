"""The public Python API: train, predict, evaluate, load and describe models.

The command line and any GUI call only these functions::

    from microsight import train, predict, evaluate, load_model
    model = train("care", "low/", "high/", out="models/care1", epochs=10)
    restored = predict(model, "big.tif")                 # numpy array
    predict("models/care1", "big.ome.zarr", out="restored.ome.zarr")
    evaluate(model, "test_low/", "test_high/", report="report.html")

The functions live in submodules by task (``models``, ``training``,
``prediction``, ``evaluation``, ``simulation``); this package is the one
place the command line and the GUIs import them from.
"""

from __future__ import annotations

from microsight.api.evaluation import evaluate
from microsight.api.models import (
    ModelLike,
    build_config,
    check_config,
    config_schema,
    config_template,
    copy_pretrained,
    export,
    info,
    load_model,
    methods,
    pretrained,
    pretrained_card,
)
from microsight.api.prediction import predict, predict_folder, predict_large
from microsight.api.simulation import simulate_smlm
from microsight.api.training import fine_tune_base, train, tune
from microsight.config import available_methods, get_method
from microsight.errors import Cancelled, ColourWarning, OutOfDistributionWarning
from microsight.io import read_image
from microsight.io.vendor import SceneWarning

__all__ = [
    "Cancelled",
    "ColourWarning",
    "ModelLike",
    "OutOfDistributionWarning",
    "SceneWarning",
    "available_methods",
    "build_config",
    "check_config",
    "config_schema",
    "config_template",
    "copy_pretrained",
    "evaluate",
    "export",
    "fine_tune_base",
    "get_method",
    "info",
    "load_model",
    "methods",
    "predict",
    "predict_folder",
    "predict_large",
    "pretrained",
    "pretrained_card",
    "read_image",
    "simulate_smlm",
    "train",
    "tune",
]
