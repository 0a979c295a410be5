"""The tutorials' commands work: each page runs, in order, on its own small data.

Only sizes change (tests/docs/tutorial_runner.py: SMALL); every file a command is
asked to write must exist afterwards, and the files each page tells the reader
to open are checked here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .tutorial_runner import blocks, commands, run_page, small

#: Files each tutorial tells the reader about, beyond those named by --out/--report.
EXPECTED = {
    "tutorials/restore.md": ["models/care/report.html", "models/care/config.yaml",
                             "restored.tif.qc.json", "models/n2v/weights.safetensors"],
    "tutorials/segment.md": ["models/star/qc.json", "models/star/report.html",
                             "dsb_labels.tif", "dsb_check.html",
                             "img20_labels_objects.csv", "img20_labels_prob.tif"],
    "tutorials/labelfree.md": ["models/labelfree/report.html"],
    "tutorials/detect.md": ["models/detect/report.html", "models/classify/report.html"],
    "tutorials/smlm.md": ["movie.csv", "models/localize/report.html"],
    "tutorials/trust.md": ["models/care-a/report.html", "restored_model.uncertainty.tif",
                           "restored_tta.uncertainty.tif", "restored_ensemble.uncertainty.tif"],
}
FAST = ("tutorials/restore.md", "tutorials/segment.md")


def _run(page: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(folder)
    run_page(page, folder)
    for name in EXPECTED[page]:
        assert (folder / name).exists(), f"{page}: no {name}"


@pytest.mark.parametrize("page", FAST)
def test_fast_tutorial(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(page, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(set(EXPECTED) - set(FAST) - {"tutorials/trust.md"}))
def test_slow_tutorial(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(page, tmp_path, monkeypatch)


@pytest.mark.slow
def test_trust_tutorial_flags_the_unusual_image(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The page says the bright image gets a warning and a normal one none."""
    _run("tutorials/trust.md", tmp_path, monkeypatch)
    flagged = {name: json.loads((tmp_path / f"{name}.qc.json").read_text())
               ["out_of_distribution"]["out_of_distribution"]
               for name in ("bright_restored.tif", "restored.tif")}
    assert flagged == {"bright_restored.tif": True, "restored.tif": False}


def test_every_tutorial_is_tested() -> None:
    pages = {f"tutorials/{p.name}" for p in (Path(__file__).parents[2] / "docs" /
                                             "tutorials").glob("*.md")} - {"tutorials/index.md"}
    assert pages == set(EXPECTED)
    for page in pages:
        assert any(b.lang == "bash" for b in blocks(page)), f"{page} runs no command"


def test_sizes_are_replaced_not_commands() -> None:
    [args] = commands("microsight train care --input a \\\n    --out m --epochs 30  # note\n")
    assert args[-2:] == ["--epochs", "30"]
    quick = small(args)
    assert quick[:7] == ["microsight", "train", "care", "--input", "a", "--out", "m"]
    assert quick[7:9] == ["--epochs", "1"] and "--steps" in quick
