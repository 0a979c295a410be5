"""`microsight predict MODEL in_folder/ --out out_folder/`: every image, nothing lost."""

from __future__ import annotations

import tifffile

from microsight.cli import main
from tests.conftest import blobs, noisy


def _mixed(root):
    folder = root / "in"
    folder.mkdir()
    for i in range(3):
        tifffile.imwrite(folder / f"cell_{i}.tif", noisy(blobs((40, 48), i), 30 + i))
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub").mkdir()
    return folder


def test_folder_in_folder_out(tiny_model, tmp_path, capsys):
    folder, out = _mixed(tmp_path), tmp_path / "out"
    assert main(["predict", str(tiny_model[0].path), str(folder), "--out", str(out),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "3 written, 2 not an image" in text  # notes.txt and sub/
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"cell_{i}.tif" for i in range(3)] +
                           [f"cell_{i}.tif.qc.json" for i in range(3)])
    assert tifffile.imread(out / "cell_1.tif").shape == (40, 48)

    # A second run neither overwrites nor half-writes: refused, or skipped with --resume.
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["predict", str(tiny_model[0].path), str(folder), "--out", str(out),
                 "--no-progress"]) != 0
    assert main(["predict", str(tiny_model[0].path), str(folder), "--out", str(out),
                 "--resume", "--no-progress"]) == 0
    assert "3 skipped" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
