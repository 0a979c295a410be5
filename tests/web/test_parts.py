"""The serve command's defaults, the job queue's persistence, previews, charts and forms."""

from __future__ import annotations

import time
import zlib

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
from typer.testing import CliRunner

from microsight.cli import app as cli_app
from microsight.engine.progress import ProgressEvent
from microsight.errors import Cancelled
from microsight.web import charts, forms, preview
from microsight.web.jobs import Jobs
from microsight.web.store import Store, write_json

pytestmark = pytest.mark.web


@pytest.fixture
def captured(monkeypatch):
    """Run ``microsight serve`` without a server or a browser; keep the uvicorn config."""
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: seen.setdefault("config",
                                                                             self.config))
    monkeypatch.setattr("webbrowser.open", lambda url: seen.setdefault("opened", url))
    return seen


def test_serve_binds_loopback_by_default(captured, tmp_path):
    result = CliRunner().invoke(cli_app, ["serve", "--no-browser", "--port", "8123",
                                          "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    config = captured["config"]
    assert config.host == "127.0.0.1" and config.port == 8123
    line = result.output.splitlines()[0]
    assert line.startswith("microsight: serving at http://127.0.0.1:8123/?token=")
    assert len(line.rsplit("=", 1)[1]) >= 40
    assert "warning" not in result.output
    assert "opened" not in captured
    assert (tmp_path / "d").is_dir()


def test_serve_warns_for_another_host(captured, tmp_path):
    result = CliRunner().invoke(cli_app, ["serve", "--no-browser", "--host", "0.0.0.0",
                                          "--port", "8124", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert captured["config"].host == "0.0.0.0"
    assert "warning: listening on 0.0.0.0" in result.output


def _fake_train(job, cancel, report):
    for step in range(1, 200):
        if cancel.is_set():
            raise Cancelled("training cancelled")
        report(ProgressEvent("step", step, 200, 1, {"train_loss": 1.0 / step}))
        time.sleep(0.01)
    return {"ok": True}


def test_jobs_queue_one_at_a_time_and_survive_a_restart(tmp_path):
    store = Store(tmp_path)
    jobs = Jobs(store, {"train": _fake_train})
    first = jobs.submit("train", "a", {})
    second = jobs.submit("train", "b", {})
    jobs.start()
    deadline = time.time() + 10
    while jobs.get(first["id"])["status"] != "running" and time.time() < deadline:
        time.sleep(0.02)
    assert jobs.get(second["id"])["status"] == "queued"
    assert jobs.position(second["id"]) == 1
    jobs.stop(second["id"])  # off the queue, never runs
    jobs.stop(first["id"])
    while jobs.get(first["id"])["status"] == "running" and time.time() < deadline:
        time.sleep(0.02)
    assert jobs.get(first["id"])["status"] == "stopped"
    assert jobs.get(second["id"])["status"] == "stopped"
    assert jobs.get(first["id"])["steps"]
    # A record left 'running' (the server died) comes back as 'interrupted'.
    jobs.close()
    third = jobs.submit("train", "c", {})
    write_json(store.path("jobs", f"{third['id']}.json"), {**third, "status": "running"})
    again = Jobs(Store(tmp_path), {"train": _fake_train})
    assert again.get(third["id"])["status"] == "interrupted"
    assert again.get(first["id"])["status"] == "stopped"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    start = data.index(b"IDAT") + 4
    raw = zlib.decompress(data[start:data.index(b"IEND") - 8])
    assert len(raw) == height * (width + 1)
    return height, width


def test_previews_of_16bit_float_3d_time_and_large_images():
    stack = np.random.default_rng(0).integers(0, 60000, (2, 3, 50, 70), dtype=np.uint16)
    assert preview.plane_count("TZYX", stack.shape) == 6
    assert preview.plane_label("TZYX", stack.shape, 4) == "T 2/2, Z 2/3"
    np.testing.assert_array_equal(preview.read_plane(stack, "TZYX", 4), stack[1, 1])
    assert _png_size(preview.preview_png(stack, "TZYX", 5)) == (50, 70)
    big = np.linspace(0, 1, 3000 * 1000, dtype=np.float32).reshape(3000, 1000)
    assert max(_png_size(preview.preview_png(big, "YX"))) <= preview.MAX_SIDE
    xy = np.zeros((20, 30), np.float32)  # axes XY: shown with Y down
    assert preview.read_plane(xy, "XY").shape == (30, 20)
    gray = preview.to_8bit(np.array([[0, 1000], [2000, np.nan]], np.float32), 0, 100)
    assert gray.dtype == np.uint8 and gray[0, 0] == 0 and gray[1, 0] == 255
    rng = preview.intensity_range(stack, "TZYX")
    assert 0 <= rng["min"] <= rng["p1"] < rng["p99_8"] <= rng["max"] < 60000


def test_a_colour_photograph_is_previewed_in_colour():
    rgb = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    axes = preview.display_axes("YXC", rgb.shape, rgb.dtype)
    assert axes == "YXS" and preview.plane_count(axes, rgb.shape) == 1
    png = preview.preview_png(rgb, axes)
    assert png[25] == 2  # PNG colour type RGB
    start = png.index(b"IDAT") + 4
    raw = zlib.decompress(png[start:png.index(b"IEND") - 8])
    rows = np.frombuffer(raw, np.uint8).reshape(40, 1 + 60 * 3)[:, 1:]
    np.testing.assert_array_equal(rows.reshape(40, 60, 3), rgb)  # shown as it is
    # Channels first, or 16-bit channels (fluorescence), stay planes of their own.
    assert preview.read_plane(np.moveaxis(rgb, -1, 0), "SYX").shape == (40, 60, 3)
    assert preview.display_axes("CYX", (3, 40, 60), np.uint16) == "CYX"


def test_chart_draws_steps_and_epochs():
    empty = charts.loss_chart([], [])
    assert "appears after the first steps" in empty
    svg = charts.loss_chart([[1, 0.5], [2, 0.4], [3, 0.3]],
                            [{"step": 3, "train_loss": 0.35, "val_loss": 0.45}])
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 2


def test_settings_form_from_schema_round_trips():
    from microsight import api

    fields = forms.schema_fields(api.config_schema("care"))
    paths = {f.path for f in fields}
    assert {"training.epochs", "data.patch_size", "method.depth",
            "data.normalization.mode"} <= paths
    assert not paths & forms.SKIP

    class Form(dict):
        def getlist(self, key):
            value = self.get(key)
            return [] if value is None else value

    form = Form({"cfg.training.epochs": ["3"], "cfg.data.patch_size": ["32, 32"],
                 "cfg.method.residual": ["false"], "cfg.data.flips": ["false", "true"],
                 "cfg.training.max_steps": [""], "cfg.data.normalization.mode": ["per_image"]})
    config = forms.config_from_form(fields, form, "care")
    assert config["training"] == {"epochs": 3}
    assert config["data"] == {"patch_size": [32, 32], "normalization": {"mode": "per_image"}}
    assert config["method"] == {"method": "care", "residual": False}
    assert api.build_config("care", config).training.epochs == 3
    with pytest.raises(ValueError, match="not a valid number"):
        forms.config_from_form(fields, Form({"cfg.training.epochs": ["many"]}), "care")


def test_serve_without_the_extra_says_what_to_install(monkeypatch, capsys):
    import importlib.util

    from microsight.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "fastapi" else real(name, *a))
    assert main(["serve", "--no-browser"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == 'microsight: error: the web app needs fastapi: pip install "microsight[web]"'
