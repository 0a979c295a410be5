"""``microsight predict ... --scene``: a multi-scene CZI file through the command line."""

from __future__ import annotations

import numpy as np
import pytest

from microsight.cli import main
from microsight.io import read_image
from tests.unit.test_vendor_formats import _write_czi

pytest.importorskip("pylibCZIrw")


def test_predict_picks_a_scene_and_notes_the_default(tiny_model, tmp_path, capsys):
    model = tiny_model[0]
    data = np.random.default_rng(0).integers(0, 200, (1, 1, 48, 48)).astype(np.uint16)
    czi = tmp_path / "two.czi"
    _write_czi(czi, data, scenes=2)
    assert main(["predict", str(model.path), str(czi), "--out", str(tmp_path / "a.tif"),
                 "--no-progress", "--no-check"]) == 0
    assert "holds 2 scenes; reading the first" in capsys.readouterr().err
    assert main(["predict", str(model.path), str(czi), "--scene", "1", "--out",
                 str(tmp_path / "b.tif"), "--no-progress", "--no-check"]) == 0
    assert "scenes" not in capsys.readouterr().err
    first, second = read_image(tmp_path / "a.tif"), read_image(tmp_path / "b.tif")
    assert first.axes == second.axes == "YX"
    assert first.pixel_sizes == pytest.approx({"Y": 0.25, "X": 0.2})
    assert not np.array_equal(first.numpy(), second.numpy())
    assert main(["predict", str(model.path), str(czi), "--scene", "5", "--out",
                 str(tmp_path / "c.tif"), "--no-progress"]) == 2
    assert "--scene must be 0..1" in capsys.readouterr().err
