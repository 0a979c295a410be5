"""The web app's safety: token, same-origin writes, safe names and paths, upload limit."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import tifffile

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient

from microsight.web.app import Settings, create_app

pytestmark = pytest.mark.web
BASE = "http://127.0.0.1:8765"
SAME = {"origin": BASE}
SECRET = "secret-outside-the-data-folder"


@pytest.fixture
def setup(tmp_path):
    """A client without credentials, the token, the data folder and a file beside it."""
    (tmp_path / "outside.txt").write_text(SECRET)
    data = tmp_path / "data"
    app = create_app(Settings(data, "tok3n", max_upload_mb=1), warm=False)
    return TestClient(app, base_url=BASE), "tok3n", data, tmp_path


def _tif(shape=(32, 32), dtype=np.uint16) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.arange(np.prod(shape)).reshape(shape).astype(dtype),
                     photometric="minisblack")
    return buf.getvalue()


def _login(client, token):
    client.cookies.set("microsight_token", token)
    return client


def _outside_files(root, data):
    return sorted(p for p in root.rglob("*") if not p.is_relative_to(data))


def test_no_token_401_wrong_token_403(setup):
    client, _token, _, _ = setup
    assert client.get("/").status_code == 401
    assert client.get("/static/htmx.min.js").status_code == 401
    assert client.get("/?token=nope").status_code == 403
    client.cookies.set("microsight_token", "nope")
    assert client.get("/data").status_code == 403


def test_token_in_url_sets_cookie_and_leaves_the_address(setup):
    client, token, _, _ = setup
    r = client.get(f"/data?token={token}&message=hi", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/data?message=hi"
    assert "httponly" in r.headers["set-cookie"].lower()
    assert "samesite=strict" in r.headers["set-cookie"].lower()
    assert client.get("/data").status_code == 200  # the cookie now does it
    assert client.get("/static/htmx.min.js").text.startswith(("var htmx", "(function"))


def test_post_from_another_origin_is_refused(setup):
    client, token, data, _ = setup
    _login(client, token)
    for headers in ({"origin": "http://evil.example"}, {},
                    {"referer": "http://evil.example/page"},
                    {"origin": "http://127.0.0.1:9999"}, {"origin": "null"}):
        r = client.post("/data/sample", headers=headers, follow_redirects=False)
        assert r.status_code == 403, headers
    assert not list((data / "datasets").iterdir())
    r = client.post("/data/sample", headers={"referer": f"{BASE}/data"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert len(list((data / "datasets").iterdir())) == 4


@pytest.mark.parametrize("name", ["../evil.tif", "../../evil.tif", "/tmp/evil.tif",
                                  "..\\evil.tif", ".hidden.tif", "a/../../evil.tif"])
def test_upload_names_that_leave_the_folder_are_refused(setup, name):
    client, token, data, root = setup
    _login(client, token)
    before = _outside_files(root, data)
    r = client.post("/data/upload", headers=SAME, files={"files": (name, _tif())},
                    follow_redirects=False)
    assert 400 <= r.status_code < 500
    assert _outside_files(root, data) == before
    assert not list(data.rglob("evil.tif"))
    assert not list((data / "datasets").iterdir())


def test_zip_members_that_climb_are_refused(setup):
    client, token, data, root = setup
    _login(client, token)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("good.tif", _tif())
        zf.writestr("../../evil.txt", "x")
    r = client.post("/data/upload", headers=SAME, files={"files": ("pack.zip", buf.getvalue())},
                    follow_redirects=False)
    assert r.status_code == 400
    assert not list(root.rglob("evil.txt"))
    assert not list(data.rglob("good.tif"))  # all or nothing
    assert not list((data / "datasets").iterdir())


@pytest.mark.parametrize("url", [
    "/files/..%2Foutside.txt", "/files/..%2F..%2Foutside.txt", "/files/%2Fetc%2Fpasswd",
    "/files/results/..%2F..%2Foutside.txt", "/files/datasets/x/dataset.json",
    "/data/..%2F..%2Foutside.txt", "/png/data/..%2F..%2F/outside.txt",
    "/png/result/..%2F..%2F/outside.txt", "/view/data/x/..%2F..%2Foutside.txt",
    "/jobs/..%2F..%2Foutside", "/models/..%2F..%2Foutside.txt/download",
])
def test_paths_out_of_the_data_folder_are_refused(setup, url):
    client, token, _, _ = setup
    _login(client, token)
    r = client.get(url)
    assert 400 <= r.status_code < 500, (url, r.status_code)
    assert SECRET not in r.text


def test_oversize_upload_413_and_nothing_stored(setup):
    client, token, data, _ = setup
    _login(client, token)
    big = b"\0" * (2 * 2**20)
    r = client.post("/data/upload", headers=SAME, files={"files": ("big.tif", big)})
    assert r.status_code == 413
    # Without a Content-Length (chunked), the body is counted as it arrives.
    head = (b'--b0\r\nContent-Disposition: form-data; name="files"; filename="big.tif"\r\n'
            b"Content-Type: image/tiff\r\n\r\n")
    r = client.post("/data/upload", headers={**SAME, "content-type": "multipart/form-data; "
                                             "boundary=b0"},
                    content=iter([head, *[b"\0" * 2**19] * 4, b"\r\n--b0--\r\n"]))
    assert r.status_code == 413
    assert not list((data / "datasets").iterdir())


def test_upload_preview_and_axes_question(setup):
    client, token, _data, _ = setup
    _login(client, token)
    r = client.post("/data/upload", headers=SAME, data={"name": "stack"},
                    files={"files": ("stack.tif", _tif((5, 40, 50)))}, follow_redirects=False)
    assert r.status_code == 303
    page = r.headers["location"]
    assert "cannot tell the axes" in client.get(page).text
    ident = page.rsplit("/", 1)[1]
    r = client.post(f"{page}/axes", headers=SAME, data={"axes": "ZYX"},
                    follow_redirects=False)
    assert r.status_code == 303
    text = client.get(page).text
    assert "Z 5, Y 40, X 50" in text and "uint16" in text
    view = client.get(f"/view/data/{ident}/stack.tif?plane=4").text
    assert 'type="range"' in view and "Z 5/5" in view
    png = client.get(f"/png/data/{ident}/stack.tif?plane=1")
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    bad = client.post(f"{page}/axes", headers=SAME, data={"axes": "QQ"})
    assert bad.status_code == 400
