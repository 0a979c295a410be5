"""Shared helpers of the reliability suite: run the real CLI, fingerprint a folder."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from microsight.cli import main


def fingerprint(*roots: Path) -> dict[str, str]:
    """Hash of every file under ``roots`` (names and contents): equal means untouched."""
    seen = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for p in files:
            seen[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        if root.is_dir():
            for p in root.rglob("*"):
                seen.setdefault(str(p), "dir")
    return seen


def run_cli(capsys, argv: list[str]) -> tuple[int, list[str], str]:
    """Run ``microsight argv`` in-process; return (exit code, stderr lines, stdout)."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, [line for line in out.err.splitlines() if line.strip()], out.out


@pytest.fixture
def model_copy(tiny_model, tmp_path: Path) -> Path:
    """A private copy of the shared tiny model folder, free to break."""
    model = tiny_model[0]
    dest = tmp_path / "model"
    shutil.copytree(model.path, dest)
    return dest
