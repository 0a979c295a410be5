"""Commands that describe: methods, shipped models, configurations, a model, export."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from microsight.cli._app import Overwrite, _api, _width, app, console
from microsight.errors import MicrosightError


@app.command()
def methods() -> None:
    """List the registered methods."""
    from microsight.config import available_methods

    table = Table("method", "family", "what it does")
    for name, m in available_methods().items():
        table.add_row(name, m.family, m.summary)
    console.print(table)


@app.command()
def models(
    name: Annotated[str | None, typer.Argument(help="Show this model's card.")] = None,
    copy_to: Annotated[Path | None, typer.Option(
        help="Copy the model NAME into this new folder (to tune or share it).")] = None,
) -> None:
    """List the pretrained models shipped with microsight (offline, used by name)."""
    if copy_to is not None:
        if name is None:
            raise MicrosightError("give the model to copy: microsight models NAME --copy-to DIR")
        console.print(f"copied {name} to {_api().copy_pretrained(name, copy_to)}")
        return
    if name is not None:
        import yaml

        card = _api().pretrained_card(name)
        typer.echo(yaml.safe_dump(card, sort_keys=False, width=78, allow_unicode=True), nl=False)
        return
    table = Table("name", "task", "MB", "test mean AP@0.5 / 0.75", "CPU s/image",
                  title="shipped models")
    for row in _api().pretrained():
        test = row["test"]
        scores = " / ".join(f"{test[k]:.2f}" for k in ("img AP@0.5", "img AP@0.75")
                            if isinstance(test.get(k), float))
        seconds = test.get("s/image")
        table.add_row(row["name"], row["task"], f"{row['size_mb']:.1f}", scores or "—",
                      f"{seconds:.2f}" if isinstance(seconds, float) else "—")
    console.print(table)
    console.print("use one by name: microsight predict nuclei-fluo img.tif --out labels.tif; "
                  "its card: microsight models NAME")


@app.command()
def config(
    method: Annotated[str | None, typer.Argument(help="Method name.")] = None,
    schema: Annotated[bool, typer.Option(
        "--schema", help="Print the JSON Schema of the method's whole configuration.")] = False,
    check: Annotated[Path | None, typer.Option(
        "--check", help="Validate this YAML file: exit 0, or print its problems (exit 2).",
        metavar="FILE")] = None,
) -> None:
    """Print a method's default configuration as commented YAML (a start for --config)."""
    from microsight.config import describe

    if check is not None:
        problems = describe.check_config_file(check)
        for line in problems:
            print(f"microsight: error: {check.name}: {line}", file=sys.stderr)
        if problems:
            raise typer.Exit(2)
        console.print(f"{check} is a valid configuration")
        return
    if method is None:
        raise MicrosightError("give a method (microsight config care) or --check FILE")
    if schema:
        typer.echo(json.dumps(describe.config_schema(method), indent=2))
        return
    typer.echo(describe.config_yaml(method), nl=False)


@app.command()
def info(
    model: Annotated[Path, typer.Argument(help="Model folder, .zip or shipped model name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print everything as JSON.")] = False,
) -> None:
    """Describe a model: method, data axes, training history, metrics."""
    details = _api().info(model)
    if as_json:
        typer.echo(json.dumps(details, indent=2, default=str))
        return
    from microsight.qc.text import info_lines

    # Plain print: the lines fit the terminal already.
    print("\n".join(info_lines(details, _width())))


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="Model folder.")],
    out: Annotated[Path, typer.Argument(help="File to write.")],
    format: Annotated[str, typer.Option(
        "--format", help="zip (microsight bundle), torchscript (Fiji, QuPath), onnx, or "
                         "bioimageio (BioImage Model Zoo package).")] =
    "zip",
    overwrite: Overwrite = False,
) -> None:
    """Pack a model folder into one file: a .zip bundle, TorchScript or ONNX."""
    written = _api().export(model, out, format=format, overwrite=overwrite)
    console.print(f"wrote {written}")
    if format in ("torchscript", "onnx"):
        from microsight.engine.export import read_metadata

        check = read_metadata(written)["check"]
        console.print(f"checked against microsight's network: max abs difference "
                      f"{check['max_abs_diff']:.3g} ({check['relative_diff']:.3g} of the output "
                      "range)")


