"""Classification building blocks: metrics, crops at borders, balancing, splits, ResNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microsight.data.crops import (
    balanced_weights,
    extract_crop,
    fit_to_size,
    handcrafted_features,
    object_crops,
    stratified_split,
)
from microsight.metrics.classification import (
    accuracy,
    balanced_accuracy,
    classification_metrics,
    confusion_matrix,
    per_class_metrics,
)
from microsight.nn.resnet import ResNet


def test_confusion_and_accuracies():
    y = [0, 0, 0, 0, 1, 2]
    p = [0, 0, 0, 1, 1, 0]
    cm = confusion_matrix(y, p, 3)
    assert cm.tolist() == [[3, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert accuracy(y, p) == pytest.approx(4 / 6)
    # recalls 0.75, 1, 0 -> mean 0.5833: the rare class counts as much as the common one
    assert balanced_accuracy(y, p, 3) == pytest.approx((0.75 + 1 + 0) / 3)
    rows = per_class_metrics(y, p, ["a", "b", "c"])
    assert rows[0]["precision"] == pytest.approx(0.75) and rows[1]["precision"] == 0.5
    assert np.isnan(rows[2]["precision"]) and rows[2]["recall"] == 0
    assert classification_metrics(y, p, 3)["accuracy"] == pytest.approx(4 / 6)
    with pytest.raises(ValueError):
        confusion_matrix([0, 3], [0, 0], 3)


def test_balanced_accuracy_ignores_absent_classes():
    assert balanced_accuracy([0, 0, 1], [0, 0, 1], 5) == 1.0


def test_extract_crop_inside_and_at_borders():
    img = np.arange(2 * 10 * 12, dtype=np.float32).reshape(2, 10, 12)
    inside = extract_crop(img, (5, 6), 4)
    assert inside.shape == (2, 4, 4)
    np.testing.assert_array_equal(inside, img[:, 3:7, 4:8])
    corner = extract_crop(img, (0, 0), 4, fill=np.array([-1.0, -2.0]))
    assert corner.shape == (2, 4, 4)
    np.testing.assert_array_equal(corner[:, 2:, 2:], img[:, :2, :2])
    assert (corner[0, :2] == -1).all() and (corner[1, :, :2] == -2).all()
    far = extract_crop(img, (9.4, 11.6), 5, fill=0.0)  # bottom-right corner, rounded centre
    np.testing.assert_array_equal(far[:, :3, :2], img[:, 7:, 10:])
    assert (far[:, 3:] == 0).all() and (far[:, :, 2:] == 0).all()
    outside = extract_crop(img, (-50, -50), 4, fill=7.0)
    assert (outside == 7).all()


def test_fit_to_size_centre_crops_and_pads():
    img = np.ones((1, 6, 9), np.float32)
    assert fit_to_size(img, 8).shape == (1, 8, 8)
    big = np.arange(100, dtype=np.float32).reshape(1, 10, 10)
    np.testing.assert_array_equal(fit_to_size(big, 4), big[:, 3:7, 3:7])


def test_object_crops_at_border():
    img = np.random.default_rng(0).normal(size=(1, 20, 20)).astype(np.float32)
    labels = np.zeros((20, 20), np.int32)
    labels[0:3, 0:3] = 4
    labels[10:14, 15:20] = 9
    ids, centroids, crops = object_crops(img, labels, 8)
    assert ids.tolist() == [4, 9]
    np.testing.assert_allclose(centroids[0], [1, 1])
    assert crops.shape == (2, 1, 8, 8)
    # object 4's crop starts 3 pixels above/left of the image: pixel (0, 0) lands at (3, 3)
    assert crops[0, 0, 3, 3] == img[0, 0, 0]
    assert object_crops(img, np.zeros((20, 20), int), 8)[2].shape == (0, 1, 8, 8)


def test_balanced_weights_draw_classes_equally():
    labels = np.array([0] * 90 + [1] * 9 + [2])
    w = balanced_weights(labels, 3)
    per_class = [w[labels == c].sum() for c in range(3)]
    np.testing.assert_allclose(per_class, [1 / 3] * 3)
    draws = torch.multinomial(torch.as_tensor(w), 30_000, replacement=True,
                              generator=torch.Generator().manual_seed(0)).numpy()
    freq = np.bincount(labels[draws], minlength=3) / len(draws)
    np.testing.assert_allclose(freq, 1 / 3, atol=0.02)
    natural = balanced_weights(labels, 3, power=0)
    np.testing.assert_allclose(natural, 1 / len(labels))


def test_stratified_split_keeps_rare_classes_everywhere():
    labels = np.array([0] * 50 + [1] * 3 + [2] * 10)
    fr = {"train": 0.6, "val": 0.2, "test": 0.2}
    split = stratified_split(labels, fr, seed=0)
    for c in range(3):
        assert {"train", "val", "test"} <= set(split[labels == c])
    assert (split == stratified_split(labels, fr, seed=0)).all()
    assert (split[labels == 0] == "test").sum() == 10


def test_handcrafted_features_and_resnet_shapes():
    crops = np.random.default_rng(1).normal(size=(3, 2, 16, 16)).astype(np.float32)
    assert handcrafted_features(crops).shape == (3, 30)
    net = ResNet(5, 7, widths=(4, 8), blocks=1)
    assert net(torch.zeros(2, 5, 24, 24)).shape == (2, 7)
    assert net.features(torch.zeros(2, 5, 17, 17)).shape == (2, 8)
