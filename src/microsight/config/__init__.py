"""Versioned configuration models and the method registry."""

from microsight.config.base import (
    CONFIG_VERSION,
    Configuration,
    DataConfig,
    MethodConfig,
    NormalizationConfig,
    TrainingConfig,
    config_to_yaml,
    load_config,
    merge_overrides,
    validate_config,
)
from microsight.config.registry import (
    MethodInfo,
    available_methods,
    get_method,
    method_config_class,
    register_method,
)

__all__ = [
    "CONFIG_VERSION",
    "Configuration",
    "DataConfig",
    "MethodConfig",
    "MethodInfo",
    "NormalizationConfig",
    "TrainingConfig",
    "available_methods",
    "config_to_yaml",
    "get_method",
    "load_config",
    "merge_overrides",
    "method_config_class",
    "register_method",
    "validate_config",
]
