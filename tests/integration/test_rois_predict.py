"""``microsight predict --rois``: a segmentation's objects as an ImageJ ROI set."""

from __future__ import annotations

import numpy as np
import pytest

from microsight.cli import main
from microsight.io.labels import read_labels
from tests.integration.test_segmentation_methods import tiny, write_set

roifile = pytest.importorskip("roifile")


def test_predict_writes_rois_that_paint_back_the_labels(tmp_path, capsys):
    from microsight import api
    from microsight.io.rois import read_rois, rois_to_labels

    images, labels = write_set(tmp_path / "data")
    api.train("distmap", images, labels, out=tmp_path / "m", config=tiny("distmap"),
              progress=False)
    rois = tmp_path / "cells.roi.zip"
    assert main(["predict", str(tmp_path / "m"), str(images / "n0.tif"), "--out",
                 str(tmp_path / "pred.tif"), "--rois", str(rois), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"wrote in {tmp_path}:" in out
    assert any(line.split()[:1] == [rois.name] and "ROI set" in line
               for line in out.splitlines())
    pred = read_labels(tmp_path / "pred.tif")
    opened = roifile.roiread(rois)
    ids = [i for i in np.unique(pred) if i > 0]
    assert len(opened if isinstance(opened, list) else [opened]) == len(ids)
    back = rois_to_labels(read_rois(rois), pred.shape)
    # Painting the ROIs gives every (one-piece) object back.
    for n, i in enumerate(ids, start=1):
        a, b = pred == i, back == n
        assert (a & b).sum() / (a | b).sum() > 0.95

    # Returned labels (no --out) work too.
    api.predict(tmp_path / "m", images / "n1.tif", rois=tmp_path / "n1.zip")
    assert (tmp_path / "n1.zip").is_file()


def test_rois_refused_for_a_restoration_model(tiny_model, tmp_path, capsys):
    model, low, _ = tiny_model
    code = main(["predict", str(model.path), str(next(low.iterdir())), "--out",
                 str(tmp_path / "r.tif"), "--rois", str(tmp_path / "r.zip"), "--no-progress"])
    assert code == 2
    assert "needs a segmentation model" in capsys.readouterr().err
    assert not (tmp_path / "r.tif").exists()
