"""What every command module shares: the Typer app, the console, option types."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from microsight.errors import MicrosightError

app = typer.Typer(
    name="microsight",
    help="Deep learning for light microscopy: train, predict, evaluate, check.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()

Axes = Annotated[str | None, typer.Option(help="Axes of the images, e.g. YX, ZYX, TYX, CYX.")]
Overwrite = Annotated[bool, typer.Option(
    "--overwrite", help="Replace an existing output of the same kind (never an input).")]


def _api() -> Any:
    """The API module, imported on first use (it starts PyTorch)."""
    from microsight import api

    return api


def _sizes(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(v) for v in text.replace("x", ",").split(",") if v.strip()]
    except ValueError:
        raise MicrosightError(f"--patch-size must be integers like 64 or 64,64, got {text!r}"
                              ) from None


def _width() -> int:
    """Characters per line of the terminal (80 when it is not one)."""
    import shutil

    return max(40, shutil.get_terminal_size((80, 24)).columns)
