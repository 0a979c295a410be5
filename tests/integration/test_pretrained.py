"""Pretrained models found by name, offline: the registry, the CLI and the API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import microsight.pretrained as pretrained
from microsight.api import load_model, predict
from microsight.cli import main
from microsight.errors import MicrosightError
from microsight.io import read_image, write_image

TINY = Path(__file__).resolve().parents[1] / "data" / "bundles_cf7f17a"


def test_models_lists_and_shows_card(plugin_root, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "tiny-nuclei" in out and "0.25 / 0.12" in out
    assert all(len(line) <= 80 for line in out.splitlines())
    assert main(["models", "tiny"]) == 0
    card = yaml.safe_load(capsys.readouterr().out)
    assert card["name"] == "tiny-nuclei" and Path(card["path"]) == plugin_root


def test_unknown_name_lists_the_shipped_ones(plugin_root, capsys):
    assert main(["models", "nuclei-nope"]) != 0
    err = capsys.readouterr().err
    assert "no shipped model called 'nuclei-nope'" in err and "tiny-nuclei" in err
    with pytest.raises(MicrosightError, match="see microsight models"):
        load_model("nuclei-nope")


def test_predict_by_name_matches_the_folder(plugin_root, tmp_path):
    image = (TINY.parent / "bundles_cf7f17a" / "distmap_input.tif")
    by_name = tmp_path / "by_name.tif"
    assert main(["predict", "tiny-nuclei", str(image), "--out", str(by_name),
                 "--no-progress"]) == 0
    by_folder = predict(plugin_root, read_image(image).data)
    assert np.array_equal(read_image(by_name).data, by_folder)
    assert load_model("TINY").path == plugin_root


def test_a_local_folder_wins_over_a_shipped_name(plugin_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny-nuclei").mkdir()
    with pytest.raises(MicrosightError, match="not a complete microsight model"):
        load_model("tiny-nuclei")


def test_fine_tune_from_a_name(plugin_root, tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir(), labels.mkdir()
    yy, xx = np.mgrid[:64, :64]
    for i in range(2):
        mask = np.zeros((64, 64), np.uint16)
        for k, (cy, cx) in enumerate(((16 + i, 16), (44, 40 - i), (20, 48)), start=1):
            mask[(yy - cy) ** 2 + (xx - cx) ** 2 < 36] = k
        write_image(images / f"im{i}.tif", (mask > 0) * 200.0 + 10, "YX")
        write_image(labels / f"im{i}.tif", mask, "YX")
    out = tmp_path / "tuned"
    assert main(["train", "distmap", "--input", str(images), "--target", str(labels),
                 "--out", str(out), "--init-from", "tiny", "--steps", "2", "--epochs", "1",
                 "--patch-size", "32", "--no-progress"]) == 0
    assert load_model(out).config.training.init_from == "tiny"


def test_a_broken_card_is_skipped_with_a_warning(plugin_root):
    (plugin_root / "pretrained.yaml").write_text("[not a card")
    with pytest.warns(UserWarning, match="not a model card"):
        assert "tiny-nuclei" not in pretrained.pretrained_models()



def test_copy_pretrained_never_replaces(plugin_root, tmp_path, capsys):
    dest = tmp_path / "mine"
    assert main(["models", "tiny", "--copy-to", str(dest)]) == 0
    assert (dest / "weights.safetensors").is_file() and load_model(dest).method == "distmap"
    assert main(["models", "tiny", "--copy-to", str(dest)]) != 0
    assert "exists; nothing was copied" in capsys.readouterr().err



@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("a shipped model must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(("name", "least"), [("nuclei-fluo", (0.7, 0.3)),
                                             ("nuclei-fluo-large", (0.7, 0.55))])
def test_shipped_nuclei_models_segment_the_bundled_image(name, least, no_network, tmp_path,
                                                        capsys):
    from microsight.data.samples import sample_nuclei_annotated
    from microsight.metrics.segmentation import matching

    assert main(["models"]) == 0
    assert name in capsys.readouterr().out
    image, truth = sample_nuclei_annotated()
    path, out = tmp_path / "img.tif", tmp_path / "labels.tif"
    write_image(path, image, "YX")
    assert main(["predict", name, str(path), "--out", str(out), "--no-progress"]) == 0
    scores = matching(truth, read_image(out).data, (0.5, 0.75))
    # A test image of the benchmark split (never used in training or any choice):
    # nuclei-fluo scores 0.81 / 0.39 on it, nuclei-fluo-large 0.81 / 0.68 (43 of 49
    # nuclei matched at IoU 0.5 by both). The bounds catch weights that fail to load or
    # a broken post-processing, not noise.
    assert scores[0.5]["ap"] >= least[0] and scores[0.75]["ap"] >= least[1], scores


def test_nuclei_he_segments_a_colour_image(no_network, tmp_path, capsys):
    import tifffile

    from microsight.data.samples import sample_nuclei_he_annotated
    from microsight.metrics.segmentation import matching

    image, truth = sample_nuclei_he_annotated()
    path, out = tmp_path / "he.tif", tmp_path / "labels.tif"
    tifffile.imwrite(path, image, photometric="rgb")  # as a slide scanner's export
    assert main(["predict", "nuclei-he", str(path), "--out", str(out), "--no-progress"]) == 0
    assert "made grey" in capsys.readouterr().err
    scores = matching(truth, read_image(out).data, (0.5, 0.75))
    # A test image of the bright-background split, never used for training or a choice:
    # nuclei-he scores 0.67 / 0.43 on it (56 of 70 nuclei matched at IoU 0.5); the
    # bounds catch a broken colour conversion or lost inversion, not noise.
    assert scores[0.5]["ap"] >= 0.5 and scores[0.75]["ap"] >= 0.25, scores
    # The fluorescence model finds no nucleus here, and says the image is unlike its data.
    assert main(["predict", "nuclei-fluo", str(path), "--out", str(tmp_path / "f.tif"),
                 "--no-progress"]) == 0
    assert "unlike the model's training data" in capsys.readouterr().err
