"""Run the code blocks of a tutorial page, in order, in a folder of its own.

A tutorial is tested by doing what a reader would do:

- a ```` ```python ```` block is run as a script;
- a ```` ```yaml title="NAME" ```` block is saved as the file NAME (the reader is asked to);
- every line of a ```` ```bash ```` block is a ``microsight`` command, run through the
  command line's own entry point, and must exit 0;
- a block right after the line ``<!-- not tested -->`` is skipped (commands on the
  reader's own data, or ones that open a window or a server).

Only sizes change, through :data:`SMALL`: fewer training steps and frames, so a
whole tutorial runs in seconds. After every command, each path it was asked to
write (``--out``, ``--report``, ``--table``, an export's file) must exist.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
SKIP = "<!-- not tested -->"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\s*$", re.S | re.M)

#: Option values replaced in the tests (tutorials use sizes for real work).
REPLACE = {"--epochs": "1", "--frames": "20", "--size": "32"}
#: Options added to commands, unless the tutorial gives them already.
ADD = {"train": {"--steps": "2", "--batch-size": "4", "--patch-size": "32"}}
#: Options that name a file the command writes.
WRITES = ("--out", "-o", "--report", "--table")


@dataclass
class Block:
    """One fenced code block of a page."""

    lang: str
    title: str | None
    text: str


def blocks(page: str | Path) -> list[Block]:
    """The tested code blocks of ``page`` (a path under docs/), in page order."""
    markdown = (DOCS / page).read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(markdown):
        before = markdown[:match.start()].rstrip().splitlines()
        if before and before[-1].strip() == SKIP:
            continue
        lang, info, text = match.group(1), match.group(2), match.group(3)
        title = re.search(r'title="([^"]+)"', info)
        found.append(Block(lang, title.group(1) if title else None, text))
    return found


def commands(text: str) -> list[list[str]]:
    """The commands of a bash block: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [args for line in joined.splitlines() if (args := shlex.split(line, comments=True))]


def small(args: list[str]) -> list[str]:
    """``args`` with the sizes of :data:`REPLACE` and :data:`ADD` for a quick run."""
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if arg in REPLACE:
            out[i + 1] = REPLACE[arg]
    for option, value in ADD.get(out[1] if len(out) > 1 else "", {}).items():
        if option not in out:
            out += [option, value]
    return out


def written(args: list[str]) -> list[str]:
    """Paths the command ``args`` was asked to write."""
    paths = [args[i + 1] for i, a in enumerate(args[:-1]) if a in WRITES]
    if args[1:2] == ["export"]:
        paths.append([a for a in args[2:] if not a.startswith("-")][1])
    return paths


def run_page(page: str, folder: Path) -> None:
    """Run every tested block of ``page`` in ``folder`` (the current directory)."""
    from microsight.cli import main

    for block in blocks(page):
        if block.lang == "python":
            code = compile(block.text, f"{page}:python block", "exec")
            exec(code, {"__name__": "__main__"})
        elif block.lang == "yaml" and block.title:
            (folder / block.title).write_text(block.text, encoding="utf-8")
        elif block.lang == "bash":
            for args in commands(block.text):
                assert args[0] == "microsight", f"{page}: not a microsight command: {args}"
                quick = small(args)
                code = main(quick[1:])
                assert code == 0, f"{page}: {shlex.join(quick)} exited {code}"
                for path in written(quick):
                    assert (folder / path).exists(), f"{page}: {shlex.join(quick)} wrote no {path}"
