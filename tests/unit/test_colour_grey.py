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
