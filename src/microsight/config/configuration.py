"""The whole configuration of a model: method, data and training sections.

The method section's class comes from the registry, so a YAML file naming
``method: care`` is validated against CARE's own fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SerializeAsAny, ValidationError, field_validator, model_validator

from microsight.config.base import (
    CONFIG_VERSION,
    DataConfig,
    MethodConfig,
    StrictModel,
    TrainingConfig,
    format_errors,
)
from microsight.config.registry import method_config_class
from microsight.errors import MicrosightError


class Configuration(StrictModel):
    """A complete, versioned recipe for one model."""

    version: int = Field(CONFIG_VERSION, description="Config schema version.")
    name: str = Field("model", description="Model name, shown in reports.")
    method: SerializeAsAny[MethodConfig] = Field(
        description="The method and its own settings (`microsight methods` lists them).")
    data: DataConfig = Field(
        default_factory=DataConfig,
        description="How training images are cut into patches, augmented, split and normalized.")
    training: TrainingConfig = Field(
        default_factory=TrainingConfig, description="The optimization loop.")

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value > CONFIG_VERSION:
            raise ValueError(
                f"config version {value} is newer than this microsight understands "
                f"({CONFIG_VERSION}); upgrade microsight"
            )
        return value

    @field_validator("method", mode="before")
    @classmethod
    def _method_from_registry(cls, value: Any) -> Any:
        if isinstance(value, MethodConfig):
            return value
        if isinstance(value, str):
            value = {"method": value}
        if not isinstance(value, dict) or "method" not in value:
            raise ValueError("'method' must name a method, e.g. method: {method: care}")
        return method_config_class(value["method"]).model_validate(value)

    @model_validator(mode="after")
    def _patch_matches_dims(self) -> Configuration:
        ndim = getattr(self.method, "ndim", None)
        if ndim is not None and len(self.data.patch_size) != ndim:
            raise ValueError(
                f"data.patch_size has {len(self.data.patch_size)} sizes but the model is "
                f"{ndim}D; give {ndim} sizes"
            )
        divisor = getattr(self.method, "divisor", 1)
        bad = [p for p in self.data.patch_size if p % divisor]
        if bad:
            raise ValueError(
                f"data.patch_size {self.data.patch_size} must be multiples of {divisor} "
                "for this network depth"
            )
        return self


def validate_config(data: dict[str, Any]) -> Configuration:
    """Build a :class:`Configuration`, turning pydantic errors into one clear line.

    Parameters
    ----------
    data : dict
        Nested configuration values (as read from YAML).

    Returns
    -------
    Configuration
        The validated configuration.

    Raises
    ------
    MicrosightError
        Listing every invalid field with the reason.
    """
    try:
        return Configuration.model_validate(data)
    except ValidationError as exc:
        raise MicrosightError(f"invalid configuration: {format_errors(exc)}") from None


def load_config(path: str | Path) -> Configuration:
    """Read a YAML config file and validate it.

    Parameters
    ----------
    path : str or Path
        YAML file.

    Returns
    -------
    Configuration
    """
    return validate_config(read_config_mapping(path))


def read_config_mapping(path: str | Path) -> dict[str, Any]:
    """The mapping a YAML config file holds, or one clear error about the file itself."""
    path = Path(path)
    if not path.is_file():
        raise MicrosightError(f"config file {path} not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise MicrosightError(f"{path.name} is not valid YAML: {exc}".splitlines()[0]) from None
    except UnicodeDecodeError:
        raise MicrosightError(f"{path.name} is not a text file") from None
    if not isinstance(data, dict):
        raise MicrosightError(f"{path.name} must hold a mapping of config sections "
                              "(method, data, training)")
    return data


def config_to_yaml(config: Configuration) -> str:
    """Serialize a configuration to YAML text (round-trips through :func:`load_config`)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
