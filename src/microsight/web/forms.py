"""The settings form of a method, made from its JSON Schema, and read back.

Every field comes from the method's configuration schema (title, description,
default, bounds, choices), so a new method or option needs no change here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Set elsewhere in the flow (data set axes, fine-tune choice) or not a user setting;
# validation folders are server paths, which the app only takes as stored data sets.
SKIP = {"version", "name", "method.method", "data.axes", "training.init_from",
        "data.val_input", "data.val_target"}
SECTIONS = {"method": "Network", "data": "Training patches",
            "data.normalization": "Intensity normalization", "training": "Optimization"}
# Shown above the fold; everything else goes under "Advanced settings".
MAIN = ("training.epochs", "training.steps_per_epoch", "data.patch_size", "data.batch_size")

TASKS = [
    ("denoise", "Remove noise: I have pairs of noisy and clean images", "care"),
    ("denoise-self", "Remove noise: I only have noisy images", "n2v"),
    ("denoise-pairs", "Remove noise: I have two noisy images of each field", "n2n"),
    ("sharpen", "Make images finer (higher resolution) from low/high-resolution pairs", "sr"),
    ("isotropic", "Make z-stacks as sharp along Z as in XY", "care-iso"),
    ("nuclei", "Outline nuclei and other roundish objects", "starconvex"),
    ("cells", "Outline touching or irregular cells", "distmap"),
    ("pixels", "Label each pixel as background, object or boundary", "unet-seg"),
    ("count", "Find and count cells, nuclei or spots", "detect"),
    ("labelfree", "Predict a fluorescence channel from transmitted light", "labelfree"),
    ("classify", "Sort cells or crops into classes", "classify"),
    ("embed", "Group cells by how they look, without labels", "embed"),
    ("smlm-image", "Super-resolve a dense blinking (SMLM) movie into an image", "deepstorm"),
    ("smlm-table", "Localize single molecules in a blinking movie (table)", "localize"),
]


@dataclass
class Field:
    """One input of the settings form."""

    path: str
    title: str
    kind: str  # integer, number, boolean, choice, list, text
    default: Any
    description: str = ""
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False

    @property
    def name(self) -> str:
        """The form input's name."""
        return f"cfg.{self.path}"

    @property
    def section(self) -> str:
        """Heading of the group the field belongs to in the form."""
        parent = self.path.rsplit(".", 1)[0]
        return SECTIONS.get(parent, parent)

    @property
    def main(self) -> bool:
        """Whether it is shown outside 'Advanced settings'."""
        return self.path in MAIN

    def shown(self, value: Any = None) -> str:
        """The value as the input shows it."""
        value = self.default if value is None else value
        if value is None:
            return ""
        if self.kind == "list":
            return ", ".join(str(v) for v in value)
        return str(value)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref:
        return {**schema["$defs"][ref.rsplit("/", 1)[-1]],
                **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def schema_fields(schema: dict[str, Any]) -> list[Field]:
    """The form fields of a configuration schema (nested sections flattened to paths)."""
    fields: list[Field] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, prop in _resolve(schema, node).get("properties", {}).items():
            path = f"{prefix}{key}"
            prop = _resolve(schema, prop)
            if path in SKIP or "const" in prop:
                continue
            if prop.get("type") == "object" or "properties" in prop:
                walk(prop, f"{path}.")
                continue
            field = _field(path, prop)
            if field is not None:
                fields.append(field)

    walk(schema, "")
    return fields


def _field(path: str, prop: dict[str, Any]) -> Field | None:
    options = prop.get("anyOf", [prop])
    nullable = any(o.get("type") == "null" for o in options)
    main = next((o for o in options if o.get("type") != "null"), {})
    kind = {"integer": "integer", "number": "number", "boolean": "boolean",
            "string": "text", "array": "list"}.get(main.get("type", ""))
    if "enum" in main:
        kind = "choice"
    if kind is None or (kind == "list" and main.get("items", {}).get("type")
                        not in ("integer", "number")):
        return None  # nested structures stay at their defaults (edit a YAML file instead)
    return Field(path=path, title=prop.get("title", path), kind=kind,
                 default=prop.get("default"), description=prop.get("description", ""),
                 choices=tuple(main.get("enum", ())),
                 minimum=main.get("minimum", main.get("exclusiveMinimum")),
                 maximum=main.get("maximum", main.get("exclusiveMaximum")), nullable=nullable)


def _value(field: Field, text: str) -> Any:
    text = text.strip()
    if field.kind == "boolean":
        return text.lower() in ("true", "on", "1", "yes")
    if text == "" and field.nullable:
        return None
    try:
        if field.kind == "integer":
            return int(text)
        if field.kind == "number":
            return float(text)
        if field.kind == "list":
            return [int(v) for v in text.replace("x", ",").split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{field.title}: {text!r} is not a valid number") from None
    if field.kind == "choice":
        for choice in field.choices:
            if str(choice) == text:
                return choice
        raise ValueError(f"{field.title}: choose one of {', '.join(map(str, field.choices))}")
    return text


def config_from_form(fields: list[Field], form: Any, method: str) -> dict[str, Any]:
    """Nested configuration dict of the values that differ from the defaults.

    ``form`` is a multi-dict (``getlist``); a checkbox sends a hidden ``false``
    before its ``true``, so the last value counts. Raises ValueError for a value
    that is not a number or choice.
    """
    config: dict[str, Any] = {"method": {"method": method}}
    for field in fields:
        given = form.getlist(field.name)
        if not given:
            continue
        value = _value(field, given[-1])
        if value == field.default:
            continue
        section = config
        *parents, leaf = field.path.split(".")
        for part in parents:
            section = section.setdefault(part, {})
        section[leaf] = value
    return config
