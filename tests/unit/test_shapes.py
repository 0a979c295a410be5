"""Geometry of objects: star distances, polygons, NMS, tables, outlines, CSV/GeoJSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage.draw import disk

from microsight.data.shapes import (
    inner_boundaries,
    label_outlines,
    normalized_edt,
    object_table,
    polygon_nms,
    polygon_vertices,
    polygons_to_labels,
    rasterize_polygon,
    ray_angles,
    relabel_random,
    star_distances,
)
from microsight.io.shapes import read_geojson, read_table, write_geojson, write_table
from microsight.metrics.segmentation import matching


def disk_labels(shape=(40, 40), centre=(20, 20), radius=8.0) -> np.ndarray:
    lab = np.zeros(shape, np.int32)
    lab[disk(centre, radius, shape=shape)] = 1
    return lab


def test_ray_angles_start_along_x() -> None:
    a = ray_angles(4)
    assert np.allclose(a, [0, np.pi / 2, np.pi, 3 * np.pi / 2])
    v = polygon_vertices(np.array([[10.0, 10.0]]), np.array([[2.0, 3.0, 4.0, 5.0]]))[0]
    # ray 0 -> +x, ray 1 -> +y, ray 2 -> -x, ray 3 -> -y
    assert np.allclose(v, [[10, 12], [13, 10], [10, 6], [5, 10]])


def test_star_distances_of_a_disk_are_its_radius() -> None:
    lab = disk_labels(radius=8)
    d = star_distances(lab, 16)
    assert d.shape == (16, 40, 40)
    assert np.all(np.abs(d[:, 20, 20] - 8) <= 1.0)
    assert d[:, 0, 0].sum() == 0  # background


def test_star_distances_stop_at_a_touching_neighbour_and_the_edge() -> None:
    lab = np.zeros((10, 20), np.int32)
    lab[2:8, 0:10] = 1
    lab[2:8, 10:20] = 2
    d = star_distances(lab, 4)
    # from (5, 7): +x meets object 2 after 3 steps, -x leaves the image after 8
    assert d[0, 5, 7] == pytest.approx(2.5)
    assert d[2, 5, 7] == pytest.approx(7.5)
    batch = star_distances(np.stack([lab, lab]), 4)
    assert np.array_equal(batch[1], d)


def one_ray(lab: np.ndarray, y: int, x: int, angle: float, max_steps: int) -> float:
    """Star distance of one pixel along one ray, marched point by point."""
    for t in range(1, max_steps + 1):
        yy, xx = round(y + t * np.sin(angle)), round(x + t * np.cos(angle))
        if not (0 <= yy < lab.shape[0] and 0 <= xx < lab.shape[1]) or lab[yy, xx] != lab[y, x]:
            return t - 0.5
    return float(max_steps)


@pytest.mark.parametrize("max_steps", [None, 3])
def test_star_distances_match_marching_each_ray_alone(max_steps) -> None:
    rng = np.random.default_rng(3)
    lab = np.zeros((2, 24, 30), np.int32)
    for b in range(2):
        for k in range(1, 7):
            lab[b][disk(rng.uniform(0, 24, 2), rng.uniform(2, 8), shape=(24, 30))] = k
    d = star_distances(lab, 8, max_steps=max_steps)
    for b, y, x in zip(*np.nonzero(lab), strict=True):
        expected = [one_ray(lab[b], y, x, a, max_steps or 30) for a in ray_angles(8)]
        assert np.allclose(d[b, :, y, x], expected)
    assert np.all(d[0][:, lab[0] == 0] == 0)  # background


def test_polygon_from_star_distances_recovers_the_object() -> None:
    lab = disk_labels(radius=9)
    d = star_distances(lab, 32)
    verts = polygon_vertices(np.array([[20, 20]]), d[:, 20, 20][None])
    painted = polygons_to_labels(verts, lab.shape)
    assert matching(lab, painted, 0.9)[0.9]["tp"] == 1


def test_polygon_nms_suppresses_duplicates_keeps_neighbours() -> None:
    centres = np.array([[20.0, 20.0], [21.0, 20.0], [20.0, 36.0]])
    dists = np.full((3, 16), 6.0)
    verts = polygon_vertices(centres, dists)
    kept, labels = polygon_nms(verts, np.array([0.9, 0.8, 0.7]), (40, 60), 0.5)
    assert list(kept) == [0, 2]
    assert set(np.unique(labels)) == {0, 1, 2}
    kept_all, _ = polygon_nms(verts, np.array([0.9, 0.8, 0.7]), (40, 60), 0.95)
    assert list(kept_all) == [0, 1, 2]


def test_rasterize_clips_to_the_image() -> None:
    verts = polygon_vertices(np.array([[0.0, 0.0]]), np.full((1, 8), 5.0))[0]
    rr, cc = rasterize_polygon(verts, (10, 10))
    assert len(rr) > 0 and rr.min() >= 0 and cc.min() >= 0


def test_normalized_edt_peaks_at_one_per_object() -> None:
    lab = np.zeros((20, 30), np.int32)
    lab[2:8, 2:8] = 1
    lab[2:18, 8:28] = 2  # touches object 1
    e = normalized_edt(lab)
    assert e[lab == 1].max() == pytest.approx(1) and e[lab == 2].max() == pytest.approx(1)
    assert e[lab == 0].max() == 0 and e[lab > 0].min() > 0
    assert e[5, 7] < e[5, 4]  # next to the neighbour, close to the border


def test_inner_boundaries_separate_touching_objects() -> None:
    lab = np.zeros((6, 8), np.int32)
    lab[1:5, 1:4] = 1
    lab[1:5, 4:7] = 2
    edge = inner_boundaries(lab)
    assert edge[2, 3] and edge[2, 4] and not edge[0, 0]
    assert not edge[2, 2] and not edge[2, 5]


def test_object_table_and_outlines() -> None:
    lab = np.zeros((20, 20), np.int32)
    lab[2:6, 3:9] = 4
    lab[10:15, 10:12] = 7
    t = object_table(lab, scores={4: 0.5})
    assert list(t["label"]) == [4, 7] and list(t["area"]) == [24, 10]
    assert t["y"][0] == pytest.approx(3.5) and t["x"][0] == pytest.approx(5.5)
    assert (t["min_y"][0], t["max_y"][0], t["min_x"][0], t["max_x"][0]) == (2, 6, 3, 9)
    assert t["score"][0] == 0.5 and np.isnan(t["score"][1])
    outlines = label_outlines(lab)
    assert set(outlines) == {4, 7}
    back = polygons_to_labels([outlines[4]], lab.shape)
    assert (back > 0).sum() == 24


def test_relabel_random_keeps_objects() -> None:
    lab = np.zeros((10, 10), np.int32)
    lab[0:2, 0:2], lab[5:7, 5:7], lab[8:10, 0:3] = 3, 9, 12
    out = relabel_random(lab, np.random.default_rng(0))
    assert sorted(np.unique(out)) == [0, 1, 2, 3]
    assert matching(lab, out, 0.99)[0.99]["tp"] == 3


def test_csv_and_geojson_round_trip(tmp_path: Path) -> None:
    table = {"label": np.array([1, 2]), "y": np.array([1.5, 2.25]), "score": np.array([0.9,
                                                                                     np.nan])}
    back = read_table(write_table(tmp_path / "t.csv", table))
    assert list(back["label"]) == [1, 2] and back["y"][1] == pytest.approx(2.25)
    assert np.isnan(back["score"][1])
    polys = {3: np.array([[0, 0], [0, 4], [4, 4.5]]), 8: np.array([[5, 5], [5, 9], [9, 9]])}
    path = write_geojson(tmp_path / "p.geojson", polys, properties={3: {"score": 0.5}})
    import json

    data = json.loads(path.read_text())
    assert data["type"] == "FeatureCollection" and len(data["features"]) == 2
    ring = data["features"][0]["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and ring[2] == [4.5, 4]  # [x, y], closed
    assert data["features"][0]["properties"]["measurements"] == {"score": 0.5}
    read = read_geojson(path)
    assert set(read) == {3, 8} and np.allclose(read[3], polys[3])


def test_export_objects_writes_csv_and_geojson(tmp_path: Path) -> None:
    from microsight.families.segmentation.report import export_objects

    lab = np.zeros((30, 30), np.int32)
    lab[2:10, 2:10], lab[15:25, 12:20] = 1, 2
    table = export_objects(lab, csv=tmp_path / "o.csv", geojson=tmp_path / "o.geojson",
                           scores={1: 0.25, 2: 0.75})
    assert list(read_table(tmp_path / "o.csv")["area"]) == [64, 80]
    polys = read_geojson(tmp_path / "o.geojson")
    back = polygons_to_labels([polys[1], polys[2]], lab.shape)
    assert matching(lab, back, 0.95)[0.95]["tp"] == 2
    assert list(table["score"]) == [0.25, 0.75]
