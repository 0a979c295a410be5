"""Pretrained models shipped with microsight, found by name, offline.

Each shipped model is a complete model bundle (see :mod:`microsight.engine.bundle`)
stored inside the installed package, plus ``pretrained.yaml``, its card: names, task,
training data and license, recipe and the command that made it, validation and test
numbers, intended use and known failures. Nothing is downloaded, ever: a name resolves
to files on disk or to nothing.

Other distributions can add models through the entry-point group
``microsight.pretrained``: an entry point names a folder (a string or path) or a
module whose folder holds model folders, each with its ``pretrained.yaml``::

    [project.entry-points."microsight.pretrained"]
    my-lab = "my_lab_models"          # my_lab_models/<model>/pretrained.yaml
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml

from microsight.errors import MicrosightError

ENTRY_POINT_GROUP = "microsight.pretrained"
CARD = "pretrained.yaml"
_BUILT_IN = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Pretrained:
    """One shipped model: its name, other names, folder and card."""

    name: str
    aliases: tuple[str, ...]
    path: Path
    card: dict[str, Any]

    @property
    def size_bytes(self) -> int:
        """Bytes on disk of the bundle's files (the card included)."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def summary(self) -> dict[str, Any]:
        """The card's main fields, for listings."""
        card = self.card
        return {"name": self.name, "aliases": list(self.aliases), "task": card.get("task", ""),
                "method": card.get("method", ""), "data": card.get("data", ""),
                "size_mb": round(self.size_bytes / 2**20, 2),
                "test": card.get("metrics", {}).get("test", {}),
                "validation": card.get("metrics", {}).get("validation", {})}


def _read_card(folder: Path) -> dict[str, Any] | None:
    try:
        card = yaml.safe_load((folder / CARD).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    if not isinstance(card, dict) or not isinstance(card.get("name"), str):
        return None
    return card


def _folders_of(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / CARD).is_file())


def _plugin_roots() -> list[Path]:
    roots = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            target = entry.load()
        except Exception as exc:  # a broken plug-in must not hide the shipped models
            warnings.warn(f"pretrained models of {entry.name!r} not loaded: {exc}",
                          stacklevel=3)
            continue
        if isinstance(target, str | Path):
            roots.append(Path(target))
        elif getattr(target, "__file__", None):
            roots.append(Path(target.__file__).resolve().parent)
    return roots


def pretrained_models() -> dict[str, Pretrained]:
    """Every shipped model, by name (built-in first, then plug-in distributions).

    Returns
    -------
    dict of str to Pretrained
        Sorted by name; a plug-in model whose name is taken is skipped with a warning.
    """
    found: dict[str, Pretrained] = {}
    for root in [_BUILT_IN, *_plugin_roots()]:
        for folder in _folders_of(root):
            card = _read_card(folder)
            if card is None:
                warnings.warn(f"{folder / CARD} is not a model card; skipped", stacklevel=2)
                continue
            name = card["name"]
            if name in found:
                warnings.warn(f"pretrained model {name!r} in {folder} skipped: the name is "
                              f"taken by {found[name].path}", stacklevel=2)
                continue
            aliases = tuple(str(a) for a in card.get("aliases", []) or [])
            found[name] = Pretrained(name, aliases, folder, card)
    return dict(sorted(found.items()))


def find_pretrained(name: str) -> Pretrained | None:
    """The shipped model called ``name`` (or one of its aliases), case-insensitive.

    Parameters
    ----------
    name : str
        A name such as ``"nuclei-fluo"``.

    Returns
    -------
    Pretrained or None
    """
    wanted = name.strip().lower()
    for model in pretrained_models().values():
        if wanted == model.name.lower() or wanted in (a.lower() for a in model.aliases):
            return model
    return None


def resolve_model_path(path: str | Path) -> Path:
    """A model path as given, or the folder of the shipped model of that name.

    A file or folder that exists always wins over a shipped model of the same name.

    Parameters
    ----------
    path : str or Path
        Model folder, .zip, or the name of a shipped model.

    Returns
    -------
    Path
    """
    path = Path(path)
    if path.exists() or len(path.parts) != 1:
        return path
    model = find_pretrained(path.name)
    return path if model is None else model.path


def require_pretrained(name: str) -> Pretrained:
    """The shipped model ``name``, or one line listing the names there are.

    Parameters
    ----------
    name : str
        Name or alias.

    Returns
    -------
    Pretrained
    """
    model = find_pretrained(name)
    if model is None:
        names = ", ".join(pretrained_models()) or "none installed"
        raise MicrosightError(f"no shipped model called {name!r} (shipped: {names})")
    return model

