"""microsight: deep learning for light microscopy, with outputs you can check.

The public API (``train``, ``predict``, ``evaluate``, ``load_model``, ...) is
loaded on first use, so ``import microsight.io`` stays light: pure array
code that does not start PyTorch.
"""

from __future__ import annotations

from typing import Any

from microsight.errors import MicrosightError

_API = ("evaluate", "export", "info", "load_model", "methods", "predict", "train")

__all__ = ["MicrosightError", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from microsight import api

        return getattr(api, name)
    raise AttributeError(f"module 'microsight' has no attribute {name!r}")
