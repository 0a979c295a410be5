"""Versioned configuration models and the method registry (torch-free)."""

from microsight.config.base import (
    CONFIG_VERSION,
    DataConfig,
    MethodConfig,
    NormalizationConfig,
    TrainingConfig,
    format_errors,
    merge_overrides,
)
from microsight.config.configuration import (
    Configuration,
    config_to_yaml,
    load_config,
    validate_config,
)
from microsight.config.networks import UNetConfig
from microsight.config.registry import (
    ENTRY_POINT_GROUP,
    MethodSpec,
    available_methods,
    get_method,
    lazy_attributes,
    method_config_class,
    register_method,
)

__all__ = [
    "CONFIG_VERSION",
    "ENTRY_POINT_GROUP",
    "Configuration",
    "DataConfig",
    "MethodConfig",
    "MethodSpec",
    "NormalizationConfig",
    "TrainingConfig",
    "UNetConfig",
    "available_methods",
    "config_to_yaml",
    "format_errors",
    "get_method",
    "lazy_attributes",
    "load_config",
    "merge_overrides",
    "method_config_class",
    "register_method",
    "validate_config",
]
