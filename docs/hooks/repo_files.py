"""MkDocs hook: pages that live outside ``docs/`` in the repository, and links to them.

``RESULTS.md`` (generated from ``results/*.json``) and ``recipes/*.yaml`` stay where
the project keeps them; the site gets a copy of each at build time. Links in the
Markdown are written for reading the repository on disk (``../RESULTS.md``); this
hook points them at the site's copies, so both ways of reading work. A link to
a repository file the site has no copy of is left as it is, and
``mkdocs build --strict`` reports it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")
# Repository paths outside docs/ that the site holds, and where.
COPIES = {"RESULTS.md": "results.md", "recipes": "recipes.md"}


def site_path(repo_path: str) -> str | None:
    """Where the repository file ``repo_path`` is in the site (None: not there)."""
    if repo_path.startswith("docs/"):
        return repo_path[len("docs/"):]
    if repo_path in COPIES:
        return COPIES[repo_path]
    if repo_path.startswith("recipes/") and repo_path.endswith(".yaml"):
        return repo_path
    return None


def rewrite_links(markdown: str, repo_dir: str, site_dir: str) -> str:
    """Point relative links written from ``repo_dir`` at the site, seen from ``site_dir``."""

    def replace(match: re.Match) -> str:
        target = match.group(1)
        if "://" in target or target.startswith(("#", "/", "mailto:")):
            return match.group(0)
        path, _, anchor = target.partition("#")
        repo_path = posixpath.normpath(posixpath.join(repo_dir, path)).rstrip("/")
        where = site_path(repo_path)
        if where is None:
            return match.group(0)
        new = posixpath.relpath(where, site_dir or ".")
        return f"]({new}{'#' + anchor if anchor else ''})"

    return LINK.sub(replace, markdown)


def _title(recipe: Path) -> str:
    """The opening sentence of a recipe's comment (before ``# method:`` or a command)."""
    words = []
    for line in recipe.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#") or line.startswith(("# method:", "#   ")):
            break
        words.append(line.lstrip("#").strip())
    return " ".join(words).replace("|", "/")


def _recipe_index(recipes: list[Path]) -> str:
    """A page listing the recipes, each with the opening of its comment."""
    lines = ["# Recipes", "",
             "The complete configuration of every headline model of the",
             "[results](results.md). Use one with",
             "`microsight train METHOD --config recipes/NAME.yaml`; the comment at the top of",
             "each file names its data and gives the full commands.", "",
             "| recipe | what it is |", "|---|---|"]
    for path in recipes:
        lines.append(f"| [{path.name}](recipes/{path.name}) | {_title(path)} |")
    return "\n".join(lines) + "\n"


def on_files(files, config):
    """Add RESULTS.md, the recipes and their index to the site."""
    results = (ROOT / "RESULTS.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "results.md",
                                content=rewrite_links(results, "", "")))
    recipes = sorted((ROOT / "recipes").glob("*.yaml"))
    for path in recipes:
        files.append(File.generated(config, f"recipes/{path.name}",
                                    content=path.read_bytes()))
    files.append(File.generated(config, "recipes.md", content=_recipe_index(recipes)))
    return files


def on_page_markdown(markdown, page, config, files):
    """Rewrite the links of the pages under docs/ (generated pages are done already)."""
    if page.file.generated_by:
        return markdown
    site_dir = posixpath.dirname(page.file.src_uri)
    return rewrite_links(markdown, posixpath.join("docs", site_dir), site_dir)
