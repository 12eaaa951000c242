"""Argoverse 2 vector maps from the shared sample logs."""

import json
from pathlib import Path

import numpy as np
import pytest

from sim.maps.argoverse import load_av2_map
from sim.scene.bev import rasterize_map


def _archives(shared_data: Path) -> list[Path]:
    found = sorted((shared_data / "av2").rglob("log_map_archive_*.json"))
    assert len(found) == 3
    return found


def test_every_archive_imports(shared_data: Path) -> None:
    for path in _archives(shared_data):
        raw = json.loads(path.read_text())
        graph = load_av2_map(path)
        assert len(graph.lanes) == len(raw["lane_segments"])
        assert len(graph.crosswalks) == len(raw["pedestrian_crossings"])
        assert len(graph.drivable_polygons) == len(raw["drivable_areas"])
        by_source = {lane.source_id: lane for lane in graph.lanes}
        for lane_id, segment in raw["lane_segments"].items():
            lane = by_source[lane_id]
            assert lane.is_junction == segment["is_intersection"]
            assert {graph.lanes[s].source_id for s in lane.successors} == {
                str(s) for s in segment["successors"] if str(s) in by_source}
            left, right = lane.boundaries()
            # the centreline runs midway between the boundaries
            half = np.linalg.norm(left - right, axis=1) / 2
            np.testing.assert_allclose(np.linalg.norm(lane.centerline - left, axis=1), half, atol=1e-9)
        road = [lane.width_m for lane in graph.lanes if lane.lane_type == "vehicle" and not lane.is_junction]
        assert 2.5 < float(np.median(road)) < 5.0
        for lane in graph.lanes:  # successors start where their predecessor ends
            for succ in lane.successors:
                assert np.linalg.norm(graph.lanes[succ].centerline[0] - lane.centerline[-1]) < 0.5


def test_drivable_area_covers_the_lanes(shared_data: Path) -> None:
    graph = load_av2_map(_archives(shared_data)[0])
    raster = rasterize_map(graph)
    points = np.concatenate([lane.centerline for lane in graph.lanes if lane.lane_type == "vehicle"])
    row, col, inside = raster.cells(points)
    assert inside.all()
    assert raster.layers[0][row, col].mean() > 0.95


def test_bad_archives_name_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "log_map_archive_bad.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"log_map_archive_bad\.json: not a readable AV2 map archive"):
        load_av2_map(path)
    path.write_text(json.dumps({"lane_segments": {"7": {"lane_type": "VEHICLE"}}}))
    with pytest.raises(ValueError, match=r"missing field 'lane_segments\.7\.left_lane_boundary'"):
        load_av2_map(path)
