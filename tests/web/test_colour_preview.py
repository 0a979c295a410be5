"""A colour photograph (H&E) uploaded to the web app is previewed in colour, as one plane."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
import tifffile
from fastapi.testclient import TestClient

from microsight.data.samples import sample_nuclei_he_annotated
from microsight.web.app import Settings, create_app
from microsight.web.store import Store

pytestmark = pytest.mark.web


def test_he_image_preview_is_one_colour_picture(tmp_path):
    app = create_app(Settings(tmp_path / "data", "tok3n"), warm=False)
    client = TestClient(app, base_url="http://127.0.0.1:8765")
    client.cookies.set("microsight_token", "tok3n")
    store = Store(tmp_path / "data")  # the folder the app serves
    ident = store.new_dataset("H&E")["id"]
    image, _ = sample_nuclei_he_annotated()
    tifffile.imwrite(store.files_dir(ident) / "he.tif", image, photometric="rgb")
    png = client.get(f"/png/data/{ident}/he.tif")
    assert png.status_code == 200 and png.content[25] == 2  # PNG colour type RGB
    view = client.get(f"/view/data/{ident}/he.tif")
    assert view.status_code == 200 and "C 1/3" not in view.text  # no channel slider
