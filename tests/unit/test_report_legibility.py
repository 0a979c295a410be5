"""Reports a biologist can read: outlines, crops, words for values, one rule per check."""

from __future__ import annotations

import re

import numpy as np
import pytest

from microsight.families.restoration.module import resolution_comment
from microsight.metrics.segmentation import matched_pairs
from microsight.qc import Report
from microsight.qc.crop import crop_region
from microsight.qc.glossary import describe, glossary_entries
from microsight.qc.overfitting import add_training_sections, data_findings, validation_noise
from microsight.qc.overlay import OUTLINE_COLOURS, outline_overlay, segmentation_figure
from microsight.qc.verdict import network_verdict


def _square(labels: np.ndarray, value: int, y: int, x: int, size: int = 6) -> None:
    labels[y:y + size, x:x + size] = value


def test_overlay_colours_matched_missed_and_false_objects():
    truth = np.zeros((32, 32), np.int32)
    pred = np.zeros_like(truth)
    _square(truth, 1, 2, 2)
    _square(pred, 5, 2, 2)       # the same square: matched (IoU 1)
    _square(truth, 2, 20, 2)     # not predicted: missed
    _square(pred, 7, 20, 20)     # not in the truth: false positive
    _square(truth, 3, 2, 20)
    _square(pred, 8, 4, 22)      # overlaps truth 3 with IoU 16/56 < 0.5: a miss and a false one
    image = np.random.default_rng(0).random((32, 32))
    rgb, counts = outline_overlay(image, truth, pred)
    assert counts == {"tp": 1, "fn": 2, "fp": 2}
    colour = {k: np.array(v) for k, v in OUTLINE_COLOURS.items()}
    np.testing.assert_allclose(rgb[2, 4], colour["tp"])      # top edge of the matched square
    np.testing.assert_allclose(rgb[20, 4], colour["fn"])     # edge of the missed square
    np.testing.assert_allclose(rgb[25, 22], colour["fp"])    # edge of the false square
    np.testing.assert_allclose(rgb[9, 25], colour["fp"])     # the shifted prediction's edge...
    np.testing.assert_allclose(rgb[2, 21], colour["fn"])     # ...and the truth it missed
    for y, x in ((4, 4), (12, 12), (30, 30)):                # inside objects and background:
        assert rgb[y, x, 0] == rgb[y, x, 1] == rgb[y, x, 2]  # the grey image
    # Enlarged, the outline stays a thin line on the object's edge.
    big, _ = outline_overlay(image, truth, pred, scale=4)
    assert big.shape == (128, 128, 3)
    np.testing.assert_allclose(big[8, 16], colour["tp"])
    assert big[16, 16, 0] == big[16, 16, 1]


def test_matched_pairs_are_one_to_one_at_the_threshold():
    truth = np.zeros((10, 10), np.int32)
    truth[:4, :4], truth[6:, 6:] = 3, 9
    pred = np.zeros_like(truth)
    pred[:4, :3], pred[6:, :2] = 4, 2
    t, p = matched_pairs(truth, pred, 0.5)
    assert t.tolist() == [3] and p.tolist() == [4]
    assert matched_pairs(truth, pred, 0.9)[0].size == 0
    with pytest.raises(ValueError):
        matched_pairs(truth, pred, 0)


def test_crop_region_of_an_elongated_image_finds_the_structure():
    strip = np.zeros((128, 512))
    strip[60:70, 400:410] = 1.0
    rows, cols = crop_region(strip)
    assert (rows.stop - rows.start, cols.stop - cols.start) == (128, 192)
    assert cols.start <= 400 and cols.stop >= 410
    assert crop_region(np.zeros((48, 48))) is None


def test_image_panels_are_large_and_say_what_they_show():
    rng = np.random.default_rng(0)
    target = rng.random((128, 512))
    rep = Report("t")
    rep.add_image_panels("P", {"input": target * 3, "prediction": target, "target": target,
                               "|prediction - target|": target * 0},
                         shared_range=["input", "prediction", "target"],
                         from_zero=["|prediction - target|"])
    page = rep.to_html()
    assert "Region of interest shown: rows 0-127" in page
    assert "input, prediction, target: one display range" in page


def test_tables_scroll_explain_dashes_and_carry_the_glossary():
    rep = Report("t")
    rep.add_verdict("Verdict", "within noise", "The network is not clearly different.\nRule: x",
                    level="info")
    rep.add_table("Metrics", [{"source": "network", "ap@0.5": 0.5, "ap@0.5 95% CI": None,
                               "nrmse": float("nan")}], missing="nothing was matched")
    rep.add_key_values("Training", {"precision": "bf16-mixed", "stopped_early": False,
                                    "pixel_sizes_um": {}})
    page = rep.to_html()
    # The verdict is the first paragraph, before the table of contents.
    assert page.index('<div class="verdict info"><p><strong>within noise.</strong>') < \
        page.index('<nav class="toc">')
    assert re.search(r"<header>.*?</header>", page, re.S).group(0).count("<p") == 0
    assert '<div class="scroll"><table>' in page
    assert "fewer than 3 test images" in page and "— elsewhere: nothing was matched." in page
    assert '<abbr title="Average precision' in page and "Higher is better" in page
    assert page.rindex(">Glossary</h2>") > page.index(">Training</h2>")
    # Settings are not metrics: "precision" there gets no glossary meaning.
    assert "<th>precision</th>" in page and "<th>stopped early</th><td>no</td>" in page
    assert "<th>pixel size (µm)</th><td>none</td>" in page


def test_glossary_says_which_direction_is_better():
    assert "Lower is better" in describe("nrmse") and "Higher is better" in describe("psnr")
    assert "Higher is better" in describe("pooled f1@0.5")
    assert "interval" in describe("ssim 95% CI")
    entries = glossary_entries(["ap@0.5", "ap@0.75", "jaccard", "rse", "rsp", "image"])
    assert list(entries) == ["ap@t", "jaccard", "rse", "rsp"]


def test_validation_size_is_judged_once():
    # Four scored tiles, while the split check (in patches) found nothing: one warning,
    # and no "large enough" next to it.
    qc = {"validation": validation_noise(np.full(4, 0.01)), "data_checks": [],
          "overlap": {"inputs": {"val_patches": 9}}}
    problems, fine = data_findings(qc)
    assert len(problems) == 1 and "only 4 tile" in problems[0]
    assert not any("large enough" in f for f in fine) and "9 checked" in fine[0]
    # Both checks complain: said once, by the tile rule.
    qc["data_checks"] = ["The validation set holds 2.0 patches' worth of pixels (fewer than "
                         "8): its score will be noisy; raise data.val_fraction or add images."]
    problems, _ = data_findings(qc)
    assert len(problems) == 1 and "tile" in problems[0]
    rep = Report("t")
    add_training_sections(rep, [], qc)
    page = rep.to_html()
    assert "Validation set size" not in page and "large enough" not in page
    # Enough tiles and no leak: one OK that says both.
    ok = {"validation": validation_noise(np.full(20, 0.01)), "data_checks": []}
    problems, fine = data_findings(ok)
    assert not problems and "large enough (20 tiles)" in " ".join(fine)


def test_resolution_finer_than_the_truth_is_flagged():
    assert "noise" in resolution_comment(2.0, 4.0)
    assert resolution_comment(4.0, 4.0) == "" and resolution_comment(float("nan"), 4.0) == ""


def test_verdict_sentence_reads_in_the_metric_direction():
    def rows(net, base, metric):
        return ([{"image": f"i{k}", "source": "network", metric: v} for k, v in enumerate(net)]
                + [{"image": f"i{k}", "source": "gaussian", metric: v}
                   for k, v in enumerate(base)])

    better = network_verdict(rows([32.0, 33.0, 34.0, 35.0], [30.0, 31.0, 32.0, 33.0], "psnr"),
                             "psnr")
    assert better.kind == "clearly better"
    assert "psnr (higher is better) is on average 2 higher for the network" in better.text
    worse = network_verdict(rows([0.3, 0.4, 0.5], [0.1, 0.2, 0.3], "nrmse"), "nrmse")
    assert worse.kind == "worse: do not use"
    assert "nrmse (lower is better) is on average 0.2 higher for the network" in worse.text
    one = network_verdict(rows([31.0], [30.0], "psnr"), "psnr")
    assert one.kind == "within noise" and "one test image gives no interval" in one.text


def test_segmentation_figure_shows_where_the_objects_are():
    truth = np.zeros((64, 600), np.int32)
    _square(truth, 1, 20, 500, size=10)
    image = np.random.default_rng(1).random(truth.shape)
    fig, caption = segmentation_figure(image, truth, truth, probability=truth > 0)
    cols = re.search(r"columns (\d+)-(\d+)", caption)
    assert cols and int(cols.group(1)) <= 500 and int(cols.group(2)) >= 509
    assert "most objects" in caption and len(fig.axes) == 4  # 3 panels and a colour bar
