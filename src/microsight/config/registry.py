"""The method registry: one place that knows every method.

A method registers itself once with :func:`register_method`. The config
union, the CLI's ``methods`` listing, the model-bundle loader and the docs
table all read this registry, so adding a method never edits a chain of
if/elif elsewhere.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from dataclasses import dataclass
from typing import Any

from microsight.errors import MicrosightError


@dataclass(frozen=True)
class MethodInfo:
    """What the registry knows about one method."""

    name: str
    summary: str
    family: str
    config_class: type
    module_class: type
    metrics: tuple[str, ...]


_REGISTRY: dict[str, MethodInfo] = {}
_BROKEN: dict[str, str] = {}
_DISCOVERED = False


def register_method(
    name: str, *, summary: str, family: str, config: type, metrics: tuple[str, ...] = ()
) -> Any:
    """Class decorator registering a method's LightningModule under ``name``.

    Parameters
    ----------
    name : str
        Method name used in configs and on the command line (e.g. ``"care"``).
    summary : str
        One-line description for ``microsight methods``.
    family : str
        Family (restoration, segmentation, ...).
    config : type
        The method's pydantic config class (a ``MethodConfig`` subclass).
    metrics : tuple of str
        Names of the test metrics the method reports.
    """

    def decorate(module_class: type) -> type:
        if name in _REGISTRY and _REGISTRY[name].module_class is not module_class:
            raise RuntimeError(f"method {name!r} is registered twice")
        _REGISTRY[name] = MethodInfo(name, summary, family, config, module_class, tuple(metrics))
        module_class.method_name = name
        return module_class

    return decorate


def _discover() -> None:
    """Import every ``microsight.methods.<name>`` package so they register."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    # Imported by name, not statically: the config layer must not depend on methods.
    pkg = importlib.import_module("microsight.methods")
    for info in pkgutil.iter_modules(pkg.__path__):
        try:
            importlib.import_module(f"microsight.methods.{info.name}")
        except Exception as err:  # one broken method must not hide the others
            _BROKEN[info.name] = f"{type(err).__name__}: {err}"
            warnings.warn(f"method package {info.name!r} failed to import and is skipped "
                          f"({_BROKEN[info.name]})", RuntimeWarning, stacklevel=2)


def available_methods() -> dict[str, MethodInfo]:
    """Return every registered method, by name."""
    _discover()
    return dict(sorted(_REGISTRY.items()))


def get_method(name: str) -> MethodInfo:
    """Return the registry entry of ``name`` or raise a clear error."""
    methods = available_methods()
    if name not in methods:
        broken = _BROKEN.get(name.replace("-", "_"))
        if broken:
            raise MicrosightError(f"method {name!r} is installed but failed to import: "
                                  f"{broken}")
        known = ", ".join(methods) or "none"
        raise MicrosightError(f"unknown method {name!r}; available methods: {known}")
    return methods[name]


def method_config_class(name: str) -> type:
    """Return the config class of method ``name``."""
    return get_method(name).config_class
