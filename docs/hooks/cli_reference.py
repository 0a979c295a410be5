"""MkDocs hook: the command-line reference, written from the CLI's own help at build time.

Every command and sub-command of ``microsight`` gets a section holding exactly
what ``microsight ... --help`` prints, so the page can never fall behind the
code. The help is rendered by click's plain formatter (not Typer's rich panels)
at a fixed width, so the page does not depend on the terminal that builds it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import typer
from mkdocs.structure.files import File

# This checkout's code, whatever copy of microsight the environment has installed.
SRC = str(Path(__file__).resolve().parents[2] / "src")

PAGE = "reference/cli.md"
WIDTH = 78

INTRO = """# Command-line reference

Every `microsight` command with its options, as `microsight COMMAND --help`
prints them. This page is written from the installed program each time the
documentation is built, so it always matches the code. For worked examples see
the [tutorials](../tutorials/index.md).

Errors in your input print one line starting with `microsight: error:` and exit
with status 2; nothing half-written is left behind.
"""


def _plain(command: click.Command) -> None:
    """Switch Typer's rich help off on this command tree (a fresh copy, not the app)."""
    command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain(sub)


def _sections(command: click.Command, ctx: click.Context, level: int) -> list[str]:
    """Markdown sections for ``command`` and, depth first, its sub-commands."""
    path = ctx.command_path
    summary = (command.help or "").strip().split("\n\n")[0]
    parts = [f"{'#' * level} `{path}`", "", " ".join(summary.split()), "",
             "```text", command.get_help(ctx).rstrip(), "```", ""]
    for name, sub in getattr(command, "commands", {}).items():
        sub_ctx = click.Context(sub, info_name=name, parent=ctx, terminal_width=WIDTH,
                                max_content_width=WIDTH)
        parts += _sections(sub, sub_ctx, min(level + 1, 4))
    return parts


def cli_markdown() -> str:
    """The whole reference page as Markdown."""
    if SRC not in sys.path:
        sys.path.insert(0, SRC)
    from microsight.cli import app

    root = typer.main.get_command(app)
    _plain(root)
    ctx = click.Context(root, info_name="microsight", terminal_width=WIDTH,
                        max_content_width=WIDTH)
    return "\n".join([INTRO, *_sections(root, ctx, 2)])


def on_files(files, config):
    """Add the generated page to the site."""
    files.append(File.generated(config, PAGE, content=cli_markdown()))
    return files
