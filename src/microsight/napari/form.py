"""A settings form generated from a method's JSON Schema (``api.config_schema``).

The fields most users change come first; every other field sits in a folded
section. Each field shows its schema description as a tooltip and starts at
its default; :meth:`SchemaForm.overrides` returns only what the user changed,
as the nested dict :func:`microsight.api.train` takes as ``config``.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from microsight.errors import MicrosightError

Key = tuple[str, ...]

# What users set first, in this order; the rest is folded.
PRIMARY: tuple[Key, ...] = (
    ("training", "epochs"), ("data", "patch_size"), ("data", "batch_size"),
    ("training", "learning_rate"), ("method", "depth"), ("method", "base_channels"),
)
# Set elsewhere in the widgets (or fixed by the method).
SKIPPED: frozenset[Key] = frozenset({
    ("version",), ("method", "method"), ("training", "init_from"), ("data", "axes"),
})


def schema_fields(schema: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    """Every leaf field of ``schema`` by its key path, ``$ref`` sections followed."""
    defs = schema.get("$defs", {})

    def walk(node: dict[str, Any], prefix: Key) -> dict[Key, dict[str, Any]]:
        out: dict[Key, dict[str, Any]] = {}
        for name, prop in node.get("properties", {}).items():
            key = (*prefix, name)
            ref = prop.get("$ref") or (prop.get("allOf") or [{}])[0].get("$ref")
            if ref:
                out.update(walk(defs[ref.split("/")[-1]], key))
            elif key not in SKIPPED:
                out[key] = prop
        return out

    return walk(schema, ())


def _base_type(prop: dict[str, Any]) -> tuple[str, bool]:
    """(JSON type, whether null is allowed)."""
    if "anyOf" in prop:
        types = [p.get("type") for p in prop["anyOf"]]
        real = [t for t in types if t not in (None, "null")]
        return (real[0] if real else "string"), "null" in types
    return prop.get("type", "string"), False


class _Field:
    """One editor widget and how to read a value from it."""

    def __init__(self, key: Key, prop: dict[str, Any]) -> None:
        self.key, self.prop = key, prop
        self.default = prop.get("default")
        self.kind, self.nullable = _base_type(prop)
        self.widget = self._make()
        self.widget.setToolTip(prop.get("description", ""))
        self.set(self.default)

    def _make(self) -> QWidget:
        if "enum" in self.prop:
            box = QComboBox()
            box.addItems([str(v) for v in self.prop["enum"]])
            return box
        if self.kind == "boolean":
            return QCheckBox()
        if self.kind == "integer" and not self.nullable:
            spin = QSpinBox()
            spin.setRange(int(self.prop.get("minimum", -(2**31) + 1)),
                          int(self.prop.get("maximum", 2**31 - 1)))
            return spin
        edit = QLineEdit()
        if self.nullable:
            edit.setPlaceholderText("(none)")
        return edit

    def set(self, value: Any) -> None:
        w = self.widget
        if isinstance(w, QComboBox):
            w.setCurrentText(str(value))
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QSpinBox):
            w.setValue(int(value if value is not None else 0))
        elif isinstance(value, list):
            w.setText(", ".join(str(v) for v in value))
        else:
            w.setText("" if value is None else str(value))

    def get(self) -> Any:
        w = self.widget
        if isinstance(w, QComboBox):
            return {str(v): v for v in self.prop["enum"]}[w.currentText()]
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, QSpinBox):
            return w.value()
        text = w.text().strip()
        if not text and self.nullable:
            return None
        try:
            if self.kind == "array":
                item = self.prop.get("items", {}).get("type", "string")
                return [_parse(item, t.strip()) for t in text.split(",") if t.strip()]
            return _parse(self.kind, text)
        except ValueError:
            raise MicrosightError(f"setting {'.'.join(self.key)}: cannot read {text!r} as "
                                  f"{self.kind}") from None


def _parse(kind: str, text: str) -> Any:
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    return text


class SchemaForm(QWidget):
    """Editors for every field of a method's configuration schema."""

    def __init__(self, schema: dict[str, Any]) -> None:
        from superqt import QCollapsible

        super().__init__()
        self.fields = {key: _Field(key, prop) for key, prop in schema_fields(schema).items()}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        main, more = QFormLayout(), QFormLayout()
        first = [k for k in PRIMARY if k in self.fields]
        for key in first:
            main.addRow(_label(key), self.fields[key].widget)
        for key, field in self.fields.items():
            if key not in first:
                more.addRow(_label(key, section=True), field.widget)
        layout.addLayout(main)
        self.more = QCollapsible("More settings")
        inner = QWidget()
        inner.setLayout(more)
        self.more.addWidget(inner)
        layout.addWidget(self.more)

    def set_value(self, key: Key, value: Any) -> None:
        """Set one field, e.g. ``("training", "epochs")``."""
        self.fields[key].set(value)

    def overrides(self) -> dict[str, Any]:
        """The fields changed from their defaults, as a nested configuration dict."""
        out: dict[str, Any] = {}
        for key, field in self.fields.items():
            value = field.get()
            if value == field.default:
                continue
            node = out
            for part in key[:-1]:
                node = node.setdefault(part, {})
            node[key[-1]] = value
        return out


def _label(key: Key, section: bool = False) -> str:
    """``("training", "learning_rate")`` -> ``"learning rate"`` or ``"training: learning rate"``."""
    name = key[-1].replace("_", " ")
    return f"{key[-2]}: {name}" if section and len(key) > 1 else name
