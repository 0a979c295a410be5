"""Every ordinary mistake: exit 2, one line naming the problem, nothing written or changed.

Each case builds its inputs in a fresh folder, runs the real CLI in-process and
checks: the exit code, exactly one line on stderr that names the problem, no
traceback, and a fingerprint of every file involved (the case folder, the shared
model and data) equal before and after: no partial output, inputs unchanged.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from microsight.io import write_image
from tests.conftest import TINY_CONFIG
from tests.reliability.conftest import fingerprint, run_cli


def _img(tmp: Path, name: str, data, **kw) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, data, **kw)
    return path


def _blob(shape=(48, 48), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32) * 100


def _bundle(tmp: Path, w) -> Path:
    dest = tmp / "bundle"
    shutil.copytree(w["model"], dest)
    return dest


def _zip_of(folder: Path, dest: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            if f.is_file():
                zf.write(f, f.name)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return dest


def _declared_bomb(tmp: Path, w) -> Path:
    """A 1 MiB zip whose weights member declares 2 GiB (sizes patched in its headers)."""
    path = _zip_of(w["model"], tmp / "bomb.zip")
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        info = zf.getinfo("weights.safetensors")
    big = struct.pack("<I", 2**31)
    raw[info.header_offset + 22:info.header_offset + 26] = big  # local header
    central = raw.find(b"PK\x01\x02")
    while central >= 0:
        if raw[central + 46:central + 46 + 19] == b"weights.safetensors":
            raw[central + 24:central + 28] = big  # central directory
        central = raw.find(b"PK\x01\x02", central + 1)
    path.write_bytes(bytes(raw))
    return path


def _real_bomb(tmp: Path, w) -> Path:
    """A zip whose history.csv inflates 64 MiB of zeros (over 1000:1)."""
    path = _zip_of(w["model"], tmp / "bomb.zip")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("history2.csv", b"\0" * (64 << 20))
    return path


def _broken(tmp, w, name, data: bytes | None):
    b = _bundle(tmp, w)
    if data is None:
        (b / name).unlink()
    else:
        (b / name).write_bytes(data)
    return b


def _pred(tmp, w, model=None, image=None, *extra):
    return ["predict", model or w["model"], image or w["image"], "--out", tmp / "p.tif",
            "--no-progress", *extra]


def _train(tmp, w, low=None, high=None, out=None, *extra):
    cfg = tmp / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(TINY_CONFIG))
    return ["train", "care", "-i", low or w["low"], "-t", high or w["high"], "-o",
            out or tmp / "new", "--config", cfg, "--no-progress", *extra]


def _pairs(tmp, x, y, xname="a.tif", yname=None):
    _img(tmp, f"lo/{xname}", x)
    _img(tmp, f"hi/{yname or xname}", y)
    return tmp / "lo", tmp / "hi"


def _existing_dir(tmp, w):
    (tmp / "target.tif").mkdir()
    (tmp / "target.tif" / "precious.txt").write_text("keep me")
    return ["predict", w["model"], w["image"], "--out", tmp / "target.tif", "--overwrite"]


def _zarr_input(tmp, w):
    zin = write_image(tmp / "in.ome.zarr", _blob(), "YX")
    return ["predict", w["model"], zin, "--out", zin, "--no-progress", "--overwrite"]


def _pickle_checkpoint(tmp, w):
    import torch

    b = _bundle(tmp, w)
    torch.save({"state_dict": {}, "payload": _Payload(str(tmp / "MARKER"))},
               b / "checkpoints" / "last.ckpt")
    return _train(tmp, w, out=b)[:-1] + ["--no-progress", "--resume"]


class _Payload:
    """Unpickling this runs code: it creates a marker file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _readonly(tmp, w, monkeypatch):
    import microsight.io.outputs as outputs

    (tmp / "ro").mkdir()
    # Tests run as root in some places, where chmod cannot forbid writing: deny the folder
    # in the permission check itself.
    real = outputs.os.access
    monkeypatch.setattr(outputs.os, "access", lambda p, m: real(p, m) and Path(p).name != "ro")
    return ["predict", w["model"], w["image"], "--out", tmp / "ro" / "p.tif"]


CASES = {
    # option values, checked before any work
    "tile negative": (lambda t, w: _pred(t, w, None, None, "--tile", "-5"), "--tile"),
    "tile too small": (lambda t, w: _pred(t, w, None, None, "--tile", "3"), "--tile"),
    "tile zero": (lambda t, w: _pred(t, w, None, None, "--tile", "0"), "--tile"),
    "tile not a number": (lambda t, w: _pred(t, w, None, None, "--tile", "abc"), "--tile"),
    "overlap over half tile": (lambda t, w: _pred(t, w, None, None, "--tile", "32",
                                                  "--overlap", "40"), "--overlap"),
    "overlap negative": (lambda t, w: _pred(t, w, None, None, "--overlap", "-1"), "--overlap"),
    "batch size zero": (lambda t, w: _pred(t, w, None, None, "--batch-size", "0"),
                        "--batch-size"),
    "epochs zero": (lambda t, w: _train(t, w, None, None, None, "--epochs", "0"), "--epochs"),
    "steps zero": (lambda t, w: _train(t, w, None, None, None, "--steps", "0"), "--steps"),
    "train batch size zero": (lambda t, w: _train(t, w, None, None, None, "--batch-size", "0"),
                              "--batch-size"),
    "report docx": (lambda t, w: ["evaluate", w["model"], "-i", w["low"], "-t", w["high"],
                                  "--report", t / "r.docx"], ".html or .pdf"),
    # outputs that would destroy data
    "out is the input": (lambda t, w: ["predict", w["model"], _img(t, "x.tif", _blob()),
                                       "--out", t / "x.tif", "--overwrite"], "input"),
    "out is the zarr input": (_zarr_input, "input"),
    "out folder holds the input": (lambda t, w: ["predict", w["model"],
                                                 _img(t, "d/x.tif", _blob()), "--out",
                                                 t / "d", "--overwrite"], "input"),
    "out is an existing folder": (_existing_dir, "existing folder"),
    "out exists": (lambda t, w: ["predict", w["model"], w["image"], "--out",
                                 _img(t, "old.tif", _blob())], "--overwrite"),
    "out folder read-only": (_readonly, "permission denied"),
    "train out is a file": (lambda t, w: _train(t, w, None, None,
                                                _img(t, "f.tif", _blob())), "not a model"),
    "train out holds other files": (lambda t, w: _train(t, w, None, None,
                                                        _img(t, "o/f.tif", _blob()).parent),
                                    "not a model"),
    "train out is the input folder": (lambda t, w: _train(t, w, *_pairs(t, _blob(), _blob()),
                                                          t / "lo"), "input"),
    "export to a folder": (lambda t, w: ["export", w["model"], (t / "z").mkdir() or t / "z"],
                           "existing folder"),
    "export over the model": (lambda t, w: ["export", w["model"], w["model"]], "input"),
    "export to existing file": (lambda t, w: ["export", w["model"],
                                              _img(t, "m.zip", _blob())], "--overwrite"),
    "simulate over a file": (lambda t, w: ["simulate", "smlm", "--out",
                                           _img(t, "m.tif", _blob()), "--frames", "2"],
                             "--overwrite"),
    # bad images
    "missing image": (lambda t, w: _pred(t, w, None, t / "nope.tif"), "nope.tif"),
    "zero-byte image": (lambda t, w: _pred(t, w, None, (t / "z.tif").touch() or t / "z.tif"),
                        "z.tif"),
    "truncated image": (lambda t, w: _pred(t, w, None, _truncated(t)), "cut.tif"),
    "text renamed .tif": (lambda t, w: _pred(t, w, None, _text(t, "notes.tif")), "notes.tif"),
    "1x1 image": (lambda t, w: _pred(t, w, None, _img(t, "one.tif", _blob((1, 1)))),
                  "one.tif"),
    "3x3 image": (lambda t, w: _pred(t, w, None, _img(t, "three.tif", _blob((3, 3)))),
                  "three.tif"),
    "complex image": (lambda t, w: _pred(t, w, None, _img(t, "c.tif", _blob().astype(
        np.complex64))), "complex"),
    "ambiguous 5D": (lambda t, w: _pred(t, w, None, _img(t, "five.tif", np.zeros(
        (2, 2, 2, 16, 16), np.float32))), "five.tif"),
    # bad training data
    "empty folders": (lambda t, w: _train(t, w, *[(t / d).mkdir() or t / d
                                                  for d in ("e1", "e2")]), "e1"),
    "mismatched pair": (lambda t, w: _train(t, w, *_pairs(t, _blob(), _blob((40, 40)))),
                        "must match"),
    "missing partner": (lambda t, w: _train(t, w, *_pairs(t, _blob(), _blob(), "a.tif",
                                                          "b.tif")[:1], w["high"]), "a.tif"),
    "NaN in training data": (lambda t, w: _train(t, w, *_pairs(t, _nan(np.nan), _blob())),
                             "NaN"),
    "Inf in training data": (lambda t, w: _train(t, w, *_pairs(t, _nan(np.inf), _blob())),
                             "NaN"),
    "3x3 training image": (lambda t, w: _train(t, w, *_pairs(t, _blob((3, 3)),
                                                             _blob((3, 3), 1))), "patch"),
    "complex training data": (lambda t, w: _train(t, w, *_pairs(t, _blob().astype(
        np.complex64), _blob())), "complex"),
    "resume without checkpoint": (lambda t, w: _train(t, w, None, None, None, "--resume"),
                                  "nothing to resume"),
    "pickle in checkpoint": (_pickle_checkpoint, "last.ckpt"),
    # broken bundles
    "missing model": (lambda t, w: _pred(t, w, t / "nomodel"), "nomodel"),
    "bad yaml": (lambda t, w: _pred(t, w, _broken(t, w, "config.yaml", b"a: [1, 2\n")),
                 "config.yaml"),
    "truncated weights": (lambda t, w: _pred(t, w, _broken(t, w, "weights.safetensors",
                                                            (w["model"] / "weights.safetensors")
                                                            .read_bytes()[:100])),
                          "weights.safetensors"),
    "invalid model.json": (lambda t, w: _pred(t, w, _broken(t, w, "model.json", b"{oops")),
                           "model.json"),
    "model.json of another kind": (lambda t, w: _pred(t, w, _broken(t, w, "model.json",
                                                                     b"[1, 2]")), "model.json"),
    "missing normalization": (lambda t, w: _pred(t, w, _broken(t, w, "normalization.json",
                                                                None)), "normalization.json"),
    "zero-byte zip": (lambda t, w: _pred(t, w, (t / "m.zip").touch() or t / "m.zip"), "m.zip"),
    "not a zip": (lambda t, w: _pred(t, w, _text(t, "m.zip")), "m.zip"),
    "zip bomb declared 2 GiB": (lambda t, w: _pred(t, w, _declared_bomb(t, w)), "inflate"),
    "zip bomb 64 MiB of zeros": (lambda t, w: ["info", _real_bomb(t, w)], "inflate"),
    "zip path traversal": (lambda t, w: ["info", _zip_of(w["model"], t / "m.zip",
                                                         {"../evil.txt": b"x"})],
                           "outside"),
}


def _truncated(tmp: Path) -> Path:
    path = _img(tmp, "cut.tif", _blob((64, 64)))
    path.write_bytes(path.read_bytes()[:300])
    return path


def _text(tmp: Path, name: str) -> Path:
    (tmp / name).write_text("these are my notes, not an image\n")
    return tmp / name


def _nan(value: float) -> np.ndarray:
    x = _blob()
    x[3, 4] = value
    return x


@pytest.fixture(scope="module")
def world(tiny_model):
    model, low, high = tiny_model
    return {"model": model.path, "low": low, "high": high, "image": low / "im0.tif"}


@pytest.mark.parametrize("case", list(CASES))
def test_mistake(case, world, tmp_path, capsys, monkeypatch):
    setup, words = CASES[case]
    args = setup(tmp_path, world, monkeypatch) if setup is _readonly else setup(tmp_path, world)
    shared = [world["model"], world["low"], world["high"]]
    before = fingerprint(tmp_path, *shared)
    code, err, _ = run_cli(capsys, args)
    assert code == 2, (code, err)
    assert len(err) == 1, err
    assert err[0].startswith("microsight: error:"), err
    assert words.lower() in err[0].lower(), err
    assert "Traceback" not in err[0]
    assert fingerprint(tmp_path, *shared) == before
    assert not (tmp_path / "MARKER").exists()


def test_zip_bomb_fails_fast_with_bounded_memory(world, tmp_path):
    import time
    import tracemalloc

    from microsight import load_model
    from microsight.errors import MicrosightError

    bomb = _declared_bomb(tmp_path, world)
    assert bomb.stat().st_size < 4 << 20
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(MicrosightError, match="inflate"):
        load_model(bomb)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 1.0
    assert peak < 16 << 20


def test_existing_folder_survives_overwrite(world, tmp_path, capsys):
    run_cli(capsys, _existing_dir(tmp_path, world))
    assert (tmp_path / "target.tif" / "precious.txt").read_text() == "keep me"


def test_json_of_the_model_is_still_readable(world):
    # The shared model is a valid bundle: the broken copies above differ only in one file.
    assert json.loads((world["model"] / "model.json").read_text())["format_version"] == 1


def test_hints_point_at_what_the_user_can_do(tmp_path, monkeypatch):
    """No 'write .zarr instead' on a permission error; a fix the command line can act on."""
    import microsight.io.writers as writers
    from microsight.errors import MicrosightError
    from microsight.metrics.restoration import psnr

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(writers.tifffile, "imwrite", denied)
    with pytest.raises(MicrosightError) as err:
        write_image(tmp_path / "x.tif", _blob(), "YX")
    assert "permission denied" in str(err.value) and "zarr" not in str(err.value)
    assert not list(tmp_path.iterdir())
    with pytest.raises(MicrosightError) as err:
        psnr(_blob(), np.ones((48, 48), np.float32))
    # The command line has no data_range option: the fix it can act on comes first.
    assert "evaluate against target images that show structure" in str(err.value)
