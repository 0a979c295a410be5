"""Configurations described for people and forms: commented YAML, JSON Schema, checks.

``microsight config METHOD`` prints :func:`config_yaml`, a GUI renders a form
from :func:`config_schema`, and ``microsight config --check FILE`` reports
:func:`check_config_file`'s problems. Everything here is torch-free.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, create_model

from microsight.config.base import format_errors
from microsight.config.configuration import (
    Configuration,
    read_config_mapping,
    validate_config,
)
from microsight.config.registry import get_method
from microsight.errors import MicrosightError

COMMENT_WIDTH = 88


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in textwrap.wrap(" ".join(text.split()),
                                                         COMMENT_WIDTH - len(indent))]


def _lines(model: BaseModel, indent: str = "") -> list[str]:
    out: list[str] = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if info.description:
            out += _comment(info.description, indent)
        if isinstance(value, BaseModel):
            out.append(f"{indent}{name}:")
            out += _lines(value, indent + "  ")
        else:
            out.append(f"{indent}{name}: {_scalar(_plain(value))}")
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def config_yaml(method: str) -> str:
    """The default configuration of ``method`` as YAML, every field's description a comment.

    Parameters
    ----------
    method : str
        Registered method name.

    Returns
    -------
    str
        YAML text that ``microsight train METHOD --config`` accepts unchanged.
    """
    config = validate_config({"method": {"method": method}})
    doc = get_method(method).config_class.__doc__ or ""
    head = [f"# microsight configuration of method {method!r}."]
    head += _comment(doc.strip().split("\n\n")[0], "")
    sections = []
    for name, info in Configuration.model_fields.items():
        value = getattr(config, name)
        lines = _comment(info.description or "", "") if info.description else []
        if isinstance(value, BaseModel):
            lines.append(f"{name}:")
            lines += _lines(value, "  ")
        else:
            lines.append(f"{name}: {_scalar(value)}")
        sections.append("\n".join(lines))
    return "\n".join(head) + "\n\n" + "\n\n".join(sections) + "\n"


def config_schema(method: str) -> dict[str, Any]:
    """JSON Schema of ``method``'s whole configuration, its own fields included.

    Descriptions, defaults and bounds of every field are in the schema, so a
    form can be generated from it.

    Parameters
    ----------
    method : str
        Registered method name.

    Returns
    -------
    dict
        A JSON Schema (draft 2020-12, as pydantic writes it).
    """
    spec = get_method(method)
    model = create_model(
        f"{spec.config_class.__name__.removesuffix('Config')}Configuration",
        __base__=Configuration,
        method=(spec.config_class, Field(default_factory=spec.config_class,
                                         description=spec.summary)),
    )
    schema = model.model_json_schema()
    schema["title"] = f"microsight configuration: {method}"
    return schema


def check_config_file(path: str | Path) -> list[str]:
    """Problems of a YAML configuration file, one line each; empty when it is valid.

    Parameters
    ----------
    path : str or Path
        YAML file.

    Returns
    -------
    list of str
        ``"field.path: reason"`` lines (or one line on the file itself).
    """
    try:
        data = read_config_mapping(path)
    except MicrosightError as exc:
        return [str(exc)]
    try:
        Configuration.model_validate(data)
    except ValidationError as exc:
        return format_errors(exc).split("; ")
    except MicrosightError as exc:
        return [str(exc)]
    return []
