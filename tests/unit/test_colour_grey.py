"""Colour (8-bit RGB) images are made grey for one-channel segmentation models."""

from pathlib import Path

import numpy as np
import pytest

from microsight.api import ColourWarning, load_model, predict
from microsight.io import Image
from microsight.io.image import colour_to_grey

DISTMAP = Path(__file__).parents[1] / "data" / "bundles_cf7f17a" / "distmap"


@pytest.mark.parametrize("channels", [3, 4])
def test_colour_to_grey_is_the_mean_of_rgb(channels):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, channels), dtype=np.uint8)
    grey = colour_to_grey(Image(rgb, "YXC"))
    assert grey.axes == "YX"
    np.testing.assert_allclose(grey.data, rgb[..., :3].astype(np.float32).mean(-1))


@pytest.mark.parametrize(("data", "axes"), [
    (np.zeros((3, 5, 6), np.uint16), "CYX"),   # three fluorescence channels
    (np.zeros((2, 5, 6), np.uint8), "CYX"),    # two channels
    (np.zeros((5, 6), np.uint8), "YX"),        # already grey
])
def test_other_images_are_not_colour(data, axes):
    assert colour_to_grey(Image(data, axes)) is None


def test_predict_makes_a_colour_image_grey_and_says_so():
    model = load_model(DISTMAP)
    rgb = np.random.default_rng(1).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    with pytest.warns(ColourWarning, match="made grey"):
        labels = predict(model, rgb, axes="YXC", check=False)
    expected = predict(model, rgb.astype(np.float32).mean(-1), axes="YX", check=False)
    np.testing.assert_array_equal(labels, expected)


def _colour_pairs(folder: Path) -> tuple[Path, Path]:
    """Two RGB images (dark blobs on a bright background) and their label images."""
    import tifffile

    images, labels = folder / "images", folder / "labels"
    images.mkdir(parents=True), labels.mkdir()
    yy, xx = np.mgrid[:64, :64]
    for i in range(2):
        mask = np.zeros((64, 64), np.uint16)
        for k, (cy, cx) in enumerate(((16 + i, 16), (44, 40 - i), (20, 48)), start=1):
            mask[(yy - cy) ** 2 + (xx - cx) ** 2 < 36] = k
        rgb = np.stack([np.where(mask > 0, v, 230) for v in (90, 40, 150)], -1)
        tifffile.imwrite(images / f"im{i}.tif", rgb.astype(np.uint8), photometric="rgb")
        tifffile.imwrite(labels / f"im{i}.tif", mask)
    return images, labels


def test_evaluate_makes_colour_images_grey(tmp_path):
    from microsight.api import evaluate

    images, labels = _colour_pairs(tmp_path)
    with pytest.warns(ColourWarning, match="2 of 2 input image"):
        result = evaluate(DISTMAP, images, labels)
    assert {row["source"] for row in result.summary} >= {"network"}


def test_fine_tuning_a_grey_model_on_colour_images(tmp_path):
    from microsight.api import train
    from microsight.api.training import fine_tune_base

    images, labels = _colour_pairs(tmp_path)
    config = fine_tune_base(DISTMAP)
    config["data"]["patch_size"] = [32, 32]
    with pytest.warns(ColourWarning, match="made grey"):
        model = train("distmap", images, labels, out=tmp_path / "tuned", init_from=DISTMAP,
                    steps=2, epochs=1, config=config, progress=False)
    assert model.module.in_channels == 1
