"""`microsight acquire simulate` writes its run folder (tiny settings, seconds)."""

import json

import pytest

pytest.importorskip("useq", reason="acquisition plans need useq-schema "
                                   '(pip install "microsight[acquire]")')

from microsight.acquire.plans import load_events
from microsight.cli import main
from microsight.io import read_image


def _simulate(out, scenario, *extra):
    return main(["acquire", "simulate", "--scenario", scenario, "--seed", "1", "--out",
                 str(out), "--quick", "--engine", "direct", "--calibration-seeds", "101",
                 *extra])


def test_events_scenario_writes_data_log_summary_and_report(tmp_path):
    out = tmp_path / "run"
    assert _simulate(out, "events") == 0
    record = json.loads((out / "acquire.json").read_text())
    assert record["agents"] == ["adaptive", "fixed-fast", "fixed-slow"]
    assert record["calibration"]["threshold"] > 1
    for agent in record["agents"]:
        summary = json.loads((out / agent / "summary.json").read_text())
        events = load_events(out / agent / "events.json")
        assert len(events) == summary["frames"] > 0
        frames = read_image(out / agent / "frames_field0.ome.zarr")
        assert frames.axes == "TYX" and frames.data.shape == (summary["frames"], 48, 48)
    fast = json.loads((out / "fixed-fast" / "summary.json").read_text())
    slow = json.loads((out / "fixed-slow" / "summary.json").read_text())
    assert fast["total_dose"] == pytest.approx(slow["total_dose"] * 31 / 7)
    html = (out / "report.html").read_text()
    assert "fixed-slow" in html and "<img" in html


def test_dose_scenario_with_one_agent_then_another_into_the_same_run(tmp_path):
    out = tmp_path / "run"
    assert _simulate(out, "dose", "--agent", "adaptive") == 0
    assert (out / "model-cache" / "model" / "model.json").is_file()
    # The second agent reuses the cached model and keeps the adaptive calibration.
    assert _simulate(out, "dose", "--agent", "fixed-low") == 0
    record = json.loads((out / "acquire.json").read_text())
    assert record["agents"] == ["adaptive", "fixed-low"]
    assert record["calibration"]["threshold"] > 0
    summary = json.loads((out / "adaptive" / "summary.json").read_text())
    assert summary["images"] and all("decision" in row for row in summary["images"])
    assert (out / "adaptive" / "images_field0.ome.zarr").is_dir()
    assert "adaptive" in (out / "report.html").read_text()


def test_refuses_a_folder_that_is_not_a_run_and_a_calibration_seed(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert _simulate(tmp_path, "events") == 2
    assert "not an acquisition run" in capsys.readouterr().err
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    assert main(["acquire", "simulate", "--seed", "101", "--out", str(tmp_path / "x")]) == 2
    assert "calibration seed" in capsys.readouterr().err
