"""The automatic split keeps fields of view together; validation images given apart."""

from __future__ import annotations

import numpy as np
import pytest

from microsight.data.groups import group_items, group_name
from microsight.data.overlap import check_split
from microsight.data.split import given_split, split_items
from microsight.errors import MicrosightError


def _items(n: int, size: int = 32, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((1, size, size), dtype=np.float32) for _ in range(n)]


def _side(data, names: list[str]) -> dict[str, set[str]]:
    """Which side each group's frames went to (a frame name is 'fovX_NN.tif')."""
    val = set(data.summary["val_names"])
    sides: dict[str, set[str]] = {}
    for name in names:
        sides.setdefault(name.split("_")[0], set()).add("val" if name in val else "train")
    return sides


@pytest.mark.parametrize("seed", range(6))
def test_frames_of_one_field_of_view_stay_on_one_side(seed):
    # 4 fields of view with 5 noisy frames each: frame numbers in three spellings.
    names = [f"fov{f}{sep}{i:02d}.tif" for f in "ABCD" for i, sep in
             zip(range(5), ["_", "-", "_t", "_frame", "_"], strict=True)]
    data = split_items(_items(20), _items(20, seed=1), val_fraction=0.25,
                       patch_size=[16, 16], seed=seed, names=names)
    assert data.summary["split_rule"] == "groups" and data.summary["groups"] == 4
    sides = _side(data, names)
    assert all(len(s) == 1 for s in sides.values()), sides
    assert {"train", "val"} == set().union(*sides.values())
    assert len(data.val_inputs) == 5 and len(data.train_inputs) == 15


def test_default_rule_keeps_plain_numbers_apart():
    assert group_name("im0.tif") == "im0" and group_name("im1.tif") == "im1"
    assert group_name("cell_t003.ome.tif") == "cell" == group_name("cell-12.png")
    assert group_name("img_0001_t03.tif") == "img_0001"


def test_custom_pattern_names_the_group():
    # The field of view sits in the middle of the name, the noise level at the end.
    names = [f"plate1_fov{f}_noise{k}.tif" for f in range(4) for k in range(3)]
    ids = group_items(names, pattern=r"fov(\d+)")
    assert ids == [i // 3 for i in range(12)]
    # Without a capture group the whole match names it.
    assert group_items(names, pattern=r"fov\d") == ids
    data = split_items(_items(12), None, val_fraction=0.25, patch_size=[16, 16],
                       names=names, group_pattern=r"fov(\d+)")
    assert data.summary["groups"] == 4 and "fov" in data.summary["group_rule"]
    val = data.summary["val_names"]
    assert len(val) == 3 and len({n.split("_")[1] for n in val}) == 1


def test_pattern_mistakes_are_one_line():
    with pytest.raises(MicrosightError, match="not a valid regular expression"):
        group_items(["a.tif"], pattern="fov(")
    with pytest.raises(MicrosightError, match=r"does not match the file name b\.tif"):
        group_items(["fov1.tif", "b.tif"], pattern=r"fov\d")


def test_items_of_one_file_and_shared_targets_are_grouped():
    names = ["movie.tif[T=0]", "movie.tif[T=1]", "plate.tif[S=0,T=0]", "plate.tif[S=1,T=0]",
             "x.tif", "y.tif"]
    shared = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    targets = [np.zeros((1, 4, 4), np.float32)] * 4 + [shared, shared.copy()]
    assert group_items(names, targets) == [0, 0, 1, 2, 3, 3]
    # Constant (empty) targets do not join unrelated images.
    assert group_items(["a.tif", "b.tif"], [targets[0], targets[1]]) == [0, 1]


def test_one_field_of_view_falls_back_to_rows_with_the_fix():
    names = [f"fov_{i}.tif" for i in range(4)]
    data = split_items(_items(4, 48), None, val_fraction=0.25, patch_size=[16, 16],
                       names=names)
    assert data.summary["split_rule"] == "rows"
    assert [x.shape[-2] for x in data.train_inputs] == [32] * 4
    assert [x.shape[-2] for x in data.val_inputs] == [16] * 4
    (warning,) = data.summary["split_warnings"]
    assert "--val-input" in warning and "--group-pattern" in warning


def test_single_image_needs_no_warning():
    data = split_items(_items(1, 64), None, val_fraction=0.25, patch_size=[16, 16],
                       names=["one.tif"])
    assert data.summary["split"].startswith("one image: rows 0-47")
    assert "split_warnings" not in data.summary


def test_given_validation_keeps_every_training_item():
    train, val = _items(3), _items(2, seed=5)
    data = given_split(train, None, val, None, patch_size=[16, 16],
                       val_names=["v0.tif", "v1.tif"])
    assert len(data.train_inputs) == 3 and len(data.val_inputs) == 2
    assert data.summary["split_rule"] == "given"
    assert data.summary["val_names"] == ["v0.tif", "v1.tif"]


def test_given_validation_with_other_channels_is_refused():
    two = [np.zeros((2, 32, 32), np.float32)]
    with pytest.raises(MicrosightError, match=r"--val-input images have 2 channel\(s\) but "
                                              r"the training inputs have 1 \(axes CYX vs YX\)"):
        given_split(_items(2), None, two, None, patch_size=[16, 16], axes=(["YX"], ["CYX"]))


def test_repeat_warning_says_how_to_fix_it():
    items = _items(2, 64)
    warnings, _ = check_split(items, [items[0].copy()], patch_size=[32, 32])
    (repeat,) = [w for w in warnings if "repeat" in w]
    assert "--val-input/--val-target" in repeat and "--group-pattern REGEX" in repeat


def test_one_large_group_does_not_swallow_validation():
    names = [f"big_{i:02d}.tif" for i in range(18)] + ["a.tif", "b.tif"]
    for seed in range(5):
        data = split_items(_items(20), None, val_fraction=0.1, patch_size=[16, 16],
                           seed=seed, names=names)
        assert sorted(data.summary["val_names"]) in (["a.tif"], ["b.tif"], ["a.tif", "b.tif"])


def test_captures_sharing_one_annotation_stay_together(tmp_path):
    import tifffile

    from microsight.api import build_config
    from microsight.config import get_method

    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    labels = np.zeros((32, 32), np.uint16)
    for k in range(6):  # six objects: their random ids almost never come out the same
        labels[2 + 10 * (k // 3):9 + 10 * (k // 3), 2 + 10 * (k % 3):9 + 10 * (k % 3)] = k + 1
    other = np.roll(labels, 5, axis=1)
    for name, lab in (("a.tif", labels), ("b.tif", labels), ("c.tif", other)):
        tifffile.imwrite(tmp_path / "img" / name, _items(1, seed=len(name))[0][0])
        tifffile.imwrite(tmp_path / "lab" / name, lab)
    cfg = build_config("distmap", {"data": {"patch_size": [16, 16], "val_fraction": 0.3}})
    prepare = get_method("distmap").load().part("training_data")
    data, _ = prepare(cfg, tmp_path / "img", tmp_path / "lab", None)
    assert data.summary["groups"] == 2
    assert data.summary["val_names"] in (["a.tif", "b.tif"], ["c.tif"])
