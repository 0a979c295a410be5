"""Stitching objects across tiles and post-processing blocks; oracle post-processing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.draw import disk

from microsight.api import build_config
from microsight.data.shapes import normalized_edt, star_distances
from microsight.data.stitching import BlockStitcher, Objects
from microsight.engine.bundle import Model
from microsight.engine.predict import TileSettings
from microsight.families.segmentation.tuning import tune_postprocessing
from microsight.methods.distmap.module import DistMapModule, watershed_from_maps
from microsight.methods.starconvex.module import polygons_from_maps
from microsight.metrics.segmentation import matching


def touching_disks(shape=(120, 60), seed=0, n=14, radius=(4, 7)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.int32)
    for i in range(n):
        centre = rng.uniform(4, np.array(shape) - 4)
        lab[disk(tuple(centre), rng.uniform(*radius), shape=shape)] = i + 1
    # Keep one connected piece per id (a later disk may cut an earlier one).
    out = np.zeros_like(lab)
    for i in range(1, n + 1):
        pieces, k = ndimage.label(lab == i)
        if k:
            sizes = np.bincount(pieces.ravel())[1:]
            out[pieces == 1 + int(np.argmax(sizes))] = i
    return out


def components(dense: np.ndarray) -> Objects:
    labels, n = ndimage.label(dense[0] > 0.5)
    seeds = np.asarray(ndimage.center_of_mass(labels > 0, labels, np.arange(1, n + 1)))
    return Objects(labels.astype(np.int32), seeds.reshape(n, 2), np.ones(n))


def test_objects_crossing_block_borders_come_out_whole_and_once() -> None:
    truth, n = ndimage.label(touching_disks(seed=3) > 0)
    dense = (truth > 0).astype(np.float32)[None]
    out = np.zeros(truth.shape, np.int32)

    def put(region, block):
        out[region] = block

    st = BlockStitcher(truth.shape, components, block=10, margin=16, write_labels=put)
    for start in range(0, truth.shape[0], 7):  # bands unrelated to the blocks
        stop = min(start + 7, truth.shape[0])
        st.add((slice(start, stop), slice(0, truth.shape[1])), dense[:, start:stop])
    res = matching(truth, out, 0.99)[0.99]
    assert (res["tp"], res["fp"], res["fn"]) == (n, 0, 0)
    table = st.table()
    assert len(table["label"]) == n and sorted(table["label"]) == list(range(1, n + 1))
    assert np.array_equal(np.sort(table["area"]), np.sort(np.bincount(truth.ravel())[1:]))


def test_starconvex_postprocessing_recovers_touching_objects_from_ideal_maps() -> None:
    truth = touching_disks(seed=1)
    prob, dist = normalized_edt(truth), star_distances(truth, 32)
    obj = polygons_from_maps(prob, dist, prob_threshold=0.5, nms_threshold=0.4)
    res = matching(truth, obj.labels, 0.7)[0.7]
    assert res["ap"] > 0.85
    assert obj.polygons.shape == (len(obj.scores), 32, 2)


def test_distmap_postprocessing_recovers_touching_objects_from_ideal_maps() -> None:
    truth = touching_disks(seed=2)
    obj = watershed_from_maps((truth > 0).astype(np.float32), normalized_edt(truth),
                              mask_threshold=0.5, marker_threshold=0.5)
    assert matching(truth, obj.labels, 0.7)[0.7]["ap"] > 0.85


def test_distmap_marker_h_seeds_only_peaks_of_that_height() -> None:
    """Two cones 8 px apart: their saddle (0.6) is above the marker threshold."""
    yy, xx = np.mgrid[:40, :60]
    cones = [np.clip(1 - np.hypot(yy - 20, xx - c) / 10, 0, None) for c in (26, 34)]
    distance = np.maximum(*cones).astype(np.float32)
    foreground = (distance > 0).astype(np.float32)
    kwargs = {"mask_threshold": 0.5, "marker_threshold": 0.5}
    assert watershed_from_maps(foreground, distance, **kwargs).labels.max() == 1
    split = watershed_from_maps(foreground, distance, marker_h=0.2, **kwargs).labels
    assert split.max() == 2
    # The cut runs along the saddle, between the two centres.
    assert split[20, 26] != split[20, 34] and split[20, 26] > 0 and split[20, 34] > 0
    # A single cone keeps a single seed (no spurious maxima from the smoothing).
    single = (cones[0] > 0).astype(np.float32), cones[0].astype(np.float32)
    assert watershed_from_maps(*single, marker_h=0.2, **kwargs).labels.max() == 1
    # The other side: a peak rising less than marker_h above the saddle to a higher
    # neighbour seeds nothing, and that neighbour floods it.
    low = 0.8 - np.hypot(yy - 20, xx - 36) / 20  # saddle with the high cone: 0.6
    two = np.maximum(np.clip(1 - np.hypot(yy - 20, xx - 24) / 20, 0, None),
                     np.clip(low, 0, None)).astype(np.float32)
    wide = (two > 0).astype(np.float32)
    kwargs["marker_threshold"] = 0.65
    assert watershed_from_maps(wide, two, **kwargs).labels.max() == 2
    assert watershed_from_maps(wide, two, marker_h=0.1, **kwargs).labels.max() == 2
    assert watershed_from_maps(wide, two, marker_h=0.3, **kwargs).labels.max() == 1


class _Identity(torch.nn.Module):
    """Stands in for a network: returns its (already ideal) input maps."""

    divisor, out_channels, output_scale = 1, 2, 1
    prediction_channels = out_channels

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def predict_batch(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()


def test_tuning_chooses_thresholds_that_split_touching_objects() -> None:
    """Maps where the default markers merge two nuclei: tuning finds marker_h."""
    yy, xx = np.mgrid[:40, :60]
    cones = [np.clip(1 - np.hypot(yy - 20, xx - c) / 10, 0, None) for c in (26, 34)]
    distance = np.maximum(*cones).astype(np.float32)
    foreground = (distance > 0).astype(np.float32)
    truth = np.where(cones[0] >= cones[1], 1, 2) * (foreground > 0)
    config = build_config("distmap", {"method": {"method": "distmap", "min_size": 0}})
    ident = {"low": [0.0, 0.0], "high": [1.0, 1.0]}
    model = Model(config, _Identity(), {"mode": "dataset", "input": ident, "target": ident},
                  {})
    tuning = tune_postprocessing(model, [np.stack([foreground, distance])], [truth])
    assert tuning.score_before < 0.5 and tuning.score == 1.0
    assert tuning.params["marker_h"] > 0 and tuning.n_objects == 2
    assert model.config.method.marker_h == 0  # the model itself is left alone


@pytest.mark.parametrize("tile", [24, 200])
def test_tiled_instance_prediction_matches_whole_image(tile: int) -> None:
    """Small tiles and blocks: every object once and whole, as without tiling."""
    truth = touching_disks(shape=(150, 50), seed=4, n=16)
    maps = np.stack([(truth > 0).astype(np.float32), normalized_edt(truth)])
    config = build_config("distmap", {"method": {"method": "distmap", "block_pixels": 1024,
                                                 "block_margin": 32, "min_size": 0}})
    ident = {"low": [0.0, 0.0], "high": [1.0, 1.0]}
    model = Model(config, _Identity(), {"mode": "dataset", "input": ident, "target": ident},
                  {})
    seg = DistMapModule.segment(model, maps, TileSettings((tile, tile), (8, 8)))
    whole = watershed_from_maps(maps[0], maps[1], mask_threshold=0.5, marker_threshold=0.5)
    # Blending changes the maps by float rounding only, which can move a watershed
    # boundary on ties by a pixel: every object must still be there, once, nearly equal.
    assert np.abs(seg.probability - maps).max() < 1e-5
    res = matching(whole.labels, seg.labels, 0.9)[0.9]
    assert res["fp"] == 0 and res["fn"] == 0
    assert len(seg.table["label"]) == whole.labels.max()
    assert seg.probability.shape == (2, 150, 50)
