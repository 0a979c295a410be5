"""``data.normalization.invert``: dark objects on a bright background made to look like
fluorescence, stored so that prediction inverts every new image the same way."""

import numpy as np
import pytest

from microsight.api import build_config
from microsight.data.split import TrainingSet
from microsight.engine.predict import input_normalizer
from microsight.engine.training import normalize_inputs


def _set(rng):
    items = [rng.uniform(50, 200, (1, 32, 32)).astype(np.float32) for _ in range(3)]
    labels = [np.zeros((1, 32, 32), np.float32) for _ in items]
    return TrainingSet(items[:2], labels[:2], items[2:], labels[2:])


@pytest.mark.parametrize("mode", ["per_image", "dataset"])
def test_inverted_inputs_are_one_minus_the_plain_ones(mode):
    plain, inverted = _set(np.random.default_rng(0)), _set(np.random.default_rng(0))
    config = {"data": {"normalization": {"mode": mode}}}
    p = normalize_inputs(plain, build_config("distmap", config), 1)
    config["data"]["normalization"]["invert"] = True
    q = normalize_inputs(inverted, build_config("distmap", config), 1)
    for a, b in zip(plain.train_inputs + plain.val_inputs,
                    inverted.train_inputs + inverted.val_inputs, strict=True):
        np.testing.assert_allclose(b, 1 - a, atol=1e-5)
    np.testing.assert_array_equal(inverted.train_targets[0], plain.train_targets[0])
    # What the bundle stores inverts new images at prediction too.
    image = np.random.default_rng(1).uniform(0, 255, (1, 16, 16)).astype(np.float32)
    a = input_normalizer(p, lambda: image).apply(image)
    b = input_normalizer(q, lambda: image).apply(image)
    np.testing.assert_allclose(b, 1 - a, atol=1e-4)


def test_invert_is_off_by_default():
    assert build_config("distmap").data.normalization.invert is False


def test_the_classical_baseline_finds_dark_objects_of_an_inverted_model():
    from microsight.methods.distmap.module import DistMapModule

    yy, xx = np.mgrid[:48, :48]
    truth = ((yy - 14) ** 2 + (xx - 14) ** 2 < 40) + 2 * ((yy - 32) ** 2 + (xx - 34) ** 2 < 40)
    dark = np.where(truth > 0, 40.0, 200.0).astype(np.float32)[None]
    config = build_config("distmap", {"data": {"normalization": {"invert": True}}})
    (name, baseline), = DistMapModule.baselines(config).items()
    assert name.endswith("inverted)")
    assert len(np.unique(baseline(dark))) == 3  # background and the two dark discs
