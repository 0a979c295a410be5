"""microsight: deep learning for light microscopy, with outputs you can check."""

from microsight.api import evaluate, export, info, load_model, methods, predict, train
from microsight.errors import MicrosightError

__all__ = [
    "MicrosightError",
    "evaluate",
    "export",
    "info",
    "load_model",
    "methods",
    "predict",
    "train",
]
