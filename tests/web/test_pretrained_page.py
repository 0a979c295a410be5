"""The models page lists the shipped models and adds one to the user's models."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from microsight.web.app import Settings, create_app

pytestmark = pytest.mark.web


def test_web_lists_and_adds_a_shipped_model(plugin_root, tmp_path):
    base = "http://127.0.0.1:8765"
    client = TestClient(create_app(Settings(tmp_path / "data", "tok3n"), warm=False),
                        base_url=base)
    client.cookies.set("microsight_token", "tok3n")
    page = client.get("/models")
    assert page.status_code == 200 and "tiny-nuclei" in page.text and "0.25" in page.text
    added = client.post("/models/pretrained/tiny-nuclei", headers={"origin": base},
                        follow_redirects=False)
    assert added.status_code == 303 and added.headers["location"] == "/models/tiny-nuclei"
    assert (tmp_path / "data" / "models" / "tiny-nuclei" / "config.yaml").is_file()
    assert client.get("/models/tiny-nuclei").status_code == 200
