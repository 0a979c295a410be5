"""Prediction results to napari layer data (pure numpy: runs without napari)."""

from __future__ import annotations

import numpy as np
import pytest

from microsight.data.points import make_points
from microsight.errors import MicrosightError
from microsight.io.localizations import LOC_DTYPE
from microsight.napari.results import prediction_layers


def test_image_with_uncertainty_gives_two_image_layers():
    img, unc = np.ones((8, 8)), np.full((8, 8), 0.1)
    layers = prediction_layers(("image", "uncertainty"), (img, unc), "x care", {"m": 1})
    assert [(kind, kw["name"]) for _, kw, kind in layers] == [
        ("image", "x care"), ("image", "x care uncertainty")]
    assert all(kw["metadata"] == {"m": 1} for _, kw, _ in layers)


def test_labels_are_integer_labels():
    [(data, _, kind)] = prediction_layers(("labels", "objects"), np.eye(4), "seg", {})
    assert kind == "labels" and data.dtype == np.int32


def test_points_of_a_plane_and_of_a_stack():
    table = make_points(np.array([[1.0, 2.0], [3.0, 4.0]]), classes=[0, 1])
    [(coords, kw, kind)] = prediction_layers(("points",), table, "det", {})
    assert kind == "points" and coords.tolist() == [[1, 2], [3, 4]]
    assert list(kw["features"]["class"]) == [0, 1]
    [(coords, _, _)] = prediction_layers(("points",), [table, table[:1]], "det", {})
    assert coords[:, 0].tolist() == [0, 0, 1]  # the plane index comes first


def test_localizations_in_pixels_of_the_movie():
    table = np.zeros(2, LOC_DTYPE)
    table["frame"], table["x"], table["y"], table["photons"] = [0, 3], [150, 50], [50, 250], 9
    [(coords, kw, _)] = prediction_layers(("localizations",), table, "loc", {}, 100.0)
    # Pixel i covers [i, i+1) * 100 nm: its centre, (i + 0.5) * 100 nm, maps to i.
    assert coords.tolist() == [[0, 0, 1], [3, 2, 0]]
    assert list(kw["features"]["photons"]) == [9, 9]


def test_outputs_without_a_layer_type_say_so():
    with pytest.raises(MicrosightError, match="command line"):
        prediction_layers(("embedding",), np.zeros(3), "e", {})


def test_a_stack_without_points_is_an_empty_layer():
    [(coords, kw, _)] = prediction_layers(("points",), [], "det", {})
    assert coords.shape == (0, 3) and len(kw["features"]["score"]) == 0
