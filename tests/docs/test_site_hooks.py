"""The documentation site's hooks: the CLI reference and the links to repository files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("mkdocs")

HOOKS = Path(__file__).resolve().parents[2] / "docs" / "hooks"


def _hook(name: str):
    spec = importlib.util.spec_from_file_location(f"hook_{name}", HOOKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_has_every_command_and_option() -> None:
    import typer

    from microsight.cli import app

    page = _hook("cli_reference").cli_markdown()
    root = typer.main.get_command(app)
    for name, command in root.commands.items():
        assert f"## `microsight {name}`" in page
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert opt in page, f"microsight {name} {opt}"
    assert "╭" not in page, "rich panels instead of plain help"


@pytest.mark.parametrize(("text", "repo_dir", "site_dir", "expected"), [
    ("[r](../RESULTS.md)", "docs", "", "[r](results.md)"),
    ("[r](../../RESULTS.md#trust)", "docs/tutorials", "tutorials", "[r](../results.md#trust)"),
    ("[x](../recipes/)", "docs", "", "[x](recipes.md)"),
    ("[x](recipes/care-fmd.yaml)", "", "", "[x](recipes/care-fmd.yaml)"),
    ("[h](docs/benchmarks-history.md)", "", "", "[h](benchmarks-history.md)"),
    ("[w](web.md#safety) [e](https://example.org/a.md)", "docs", "",
     "[w](web.md#safety) [e](https://example.org/a.md)"),
    ("[s](../src/microsight/cli.py)", "docs", "", "[s](../src/microsight/cli.py)"),
])
def test_links_to_repository_files_point_at_the_site(text, repo_dir, site_dir,
                                                     expected) -> None:
    assert _hook("repo_files").rewrite_links(text, repo_dir, site_dir) == expected


def test_sphinx_roles_become_plain_code() -> None:
    html = "see :func:<code>methods</code> and :class:<code>~microsight.io.Image</code>."
    out = _hook("sphinx_roles").on_page_content(html, None, None, None)
    assert out == "see <code>methods</code> and <code>Image</code>."
