"""RESULTS.md, results/*.json and recipes/*.yaml stay consistent with each other."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from microsight.config import load_config

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
RESULT_FILES = sorted((REPO / "results").glob("*.json"))


def _load(name: str):
    """A module of benchmarks/ (not a package), imported from its file."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return module


results = _load("results")
page = _load("results_page")


def _comment(path: Path) -> str:
    lines = path.read_text().splitlines()
    return "\n".join(line for line in lines if line.startswith("#"))


def test_there_are_recipes_and_results():
    assert len(RECIPES) >= 9
    assert len(RESULT_FILES) >= 10


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_loads_and_names_its_method(path):
    config = load_config(path)
    comment = _comment(path)
    stated = re.search(r"^# method: (\S+)$", comment, re.MULTILINE)
    assert stated, f"{path.name}: no '# method: NAME' line in the leading comment"
    assert config.method.method == stated.group(1)
    # The command a reader copies trains this method with this very file.
    command = re.search(r"microsight train (\S+) .*?--config (\S+)", comment, re.DOTALL)
    assert command, f"{path.name}: no 'microsight train METHOD ... --config' command"
    assert command.group(1) == config.method.method
    assert command.group(2) == f"recipes/{path.name}"
    assert "python benchmarks/" in comment, f"{path.name}: no benchmark command"


@pytest.mark.parametrize("path", RESULT_FILES, ids=[p.stem for p in RESULT_FILES])
def test_results_file_validates(path):
    record = json.loads(path.read_text())
    assert results.validate(record, path.stem) == []
    for row in record["rows"]:
        if row.get("recipe"):  # the recipe says which results it reproduces
            assert f"results/{path.name}" in _comment(REPO / row["recipe"])


def test_every_recipe_is_named_by_a_result():
    named = {json.loads(p.read_text())["rows"][i].get("recipe")
             for p in RESULT_FILES for i in range(len(json.loads(p.read_text())["rows"]))}
    chained = {"recipes/distmap-dsb-d4-12k.yaml"}  # step 1 of a named two-run chain
    missing = {f"recipes/{p.name}" for p in RECIPES} - named - chained
    assert not missing


def test_results_page_is_up_to_date():
    assert page.main(["--check"]) == 0


def test_results_page_check_detects_a_stale_page(tmp_path, monkeypatch):
    stale = tmp_path / "RESULTS.md"
    stale.write_text((REPO / "RESULTS.md").read_text().replace("0.819", "0.820", 1))
    monkeypatch.setattr(page, "PAGE", stale)
    assert page.main(["--check"]) == 1


def test_results_page_is_short_and_states_the_rules():
    text = (REPO / "RESULTS.md").read_text()
    # One short table per task (18 tasks now, about 20 lines each).
    assert len(text.splitlines()) <= 380
    assert "never on test" in text
    assert text.count("\n## ") == len(RESULT_FILES)


def _row(model: str, value: float) -> dict:
    return {"model": model, "kind": "microsight", "command": "python benchmarks/x.py",
            "recipe": None, "val": {"acc": value}, "test": {"acc": round(value - 0.01, 3)},
            "train_s": 1.5}


def test_write_result_replaces_rows_of_the_same_model(tmp_path):
    meta = {"title": "T", "data": "D", "split": "S", "metrics": {"acc": "accuracy"}}
    path = results.write_result("toy", [_row("a", 0.5), _row("b", 0.6)], folder=tmp_path,
                                **meta)
    results.write_result("toy", [_row("b", 0.9)], folder=tmp_path)
    record = json.loads(path.read_text())
    assert [r["model"] for r in record["rows"]] == ["a", "b"]
    assert record["rows"][1]["val"]["acc"] == 0.9
    assert record["machine"] == "2-core CPU"
    assert results.validate(record, "toy") == []
    assert [p.name for p in tmp_path.iterdir()] == ["toy.json"]  # no temporary left


def test_write_result_refuses_an_invalid_row_and_keeps_the_file(tmp_path):
    meta = {"title": "T", "data": "D", "split": "S", "metrics": {"acc": "accuracy"}}
    path = results.write_result("toy", [_row("a", 0.5)], folder=tmp_path, **meta)
    before = path.read_text()
    bad = _row("c", 0.7) | {"test": {"recall": 0.3}}
    with pytest.raises(ValueError, match="not a declared metric"):
        results.write_result("toy", [bad], folder=tmp_path)
    assert path.read_text() == before


@pytest.mark.parametrize(("change", "message"), [
    ({"command": ""}, "command"),
    ({"kind": "ours"}, "kind"),
    ({"ci95": {"test.acc": [0.9, 0.1]}}, "ci95"),
    ({"recipe": "recipes/none.yaml"}, "does not exist"),
    ({"val": {}, "test": {}}, "no numbers"),
])
def test_validate_names_the_problem(change, message):
    record = {"schema": 1, "task": "toy", "title": "T", "data": "D", "split": "S",
              "machine": "2-core CPU", "metrics": {"acc": "accuracy"},
              "rows": [_row("a", 0.5) | change]}
    problems = results.validate(record, "toy")
    assert any(message in p for p in problems), problems


def test_bootstrap_interval_brackets_the_mean():
    values = np.random.default_rng(1).normal(0.8, 0.05, 60)
    low, high = results.bootstrap_ci(values)
    assert low < values.mean() < high
    assert high - low < 0.05
    assert results.bootstrap_ci([0.5, 0.6]) is None


def test_page_shows_intervals_and_column_decimals():
    record = {"schema": 1, "task": "toy", "title": "Toy task", "data": "D", "split": "S",
              "machine": "2-core CPU", "metrics": {"acc": "accuracy"},
              "rows": [_row("a", 0.9) | {"ci95": {"test.acc": [0.85, 0.905]}},
                       _row("b", 0.815)]}
    text = "\n".join(page.task_section(record))
    assert "| 0.890 [0.850, 0.905] |" in text
    assert "| 0.900 |" in text  # val of row a, three decimals like its column
    assert "1. `python benchmarks/x.py`" in text
