"""CARLA towns imported through CARLA's own OpenDRIVE parser, checked against CARLA's waypoints."""

from collections import deque
from pathlib import Path

import numpy as np
import pytest

from sim.maps import LaneGraph
from sim.maps.frames import from_carla_xy
from sim.scenarios.routes import densify, read_routes

carla = pytest.importorskip("carla", reason="the OpenDRIVE importer needs the carla package (autoloop[carla])")
from sim.carla.opendrive import load_opendrive  # noqa: E402

TOWNS = ("Town01", "Town04", "Town10HD")


@pytest.fixture(scope="module", params=TOWNS)
def town(request: pytest.FixtureRequest, shared_data: Path) -> tuple[str, LaneGraph, object]:
    path = shared_data / "carla" / "maps" / f"{request.param}.xodr"
    return request.param, load_opendrive(path), carla.Map(request.param, path.read_text())


def _reachable(graph: LaneGraph, start: int) -> set[int]:
    """Lanes reachable from ``start`` by following lanes and changing lanes."""
    seen, queue = {start}, deque([start])
    while queue:
        lane = queue.popleft()
        for succ in (*graph.lanes[lane].successors, *graph.lane_changes(lane)):
            if succ not in seen:
                seen.add(succ)
                queue.append(succ)
    return seen


def test_driving_lane_length_matches_carla_waypoints(town: tuple[str, LaneGraph, object]) -> None:
    name, graph, carla_map = town
    total_m = sum(lane.length_m for lane in graph.lanes)
    carla_m = len(carla_map.generate_waypoints(1.0)) * 1.0  # one waypoint per metre of driving lane
    assert total_m == pytest.approx(carla_m, rel=0.03), name


def test_every_lane_lies_on_carla_waypoints(town: tuple[str, LaneGraph, object]) -> None:
    """CARLA's waypoints (converted to the map frame) all lie on some imported centreline, heading included."""
    _, graph, carla_map = town
    waypoints = carla_map.generate_waypoints(10.0)[::5]
    xy = from_carla_xy(np.array([[w.transform.location.x, w.transform.location.y] for w in waypoints]))
    yaw = -np.radians([w.transform.rotation.yaw for w in waypoints])
    located = graph.locate(xy, yaw, max_heading_error_rad=np.radians(30.0))
    assert np.all(np.abs(located.lateral_m) < 0.5)


def test_connectivity(town: tuple[str, LaneGraph, object]) -> None:
    """These towns are closed networks: no dead ends, and every lane reachable from every other (Town04's
    highway loops only through lane changes)."""
    name, graph, _ = town
    assert all(lane.successors for lane in graph.lanes), name
    assert all(graph.predecessors), name
    everything = set(range(len(graph.lanes)))
    assert all(_reachable(graph, start) == everything for start in range(0, len(graph.lanes), 25)), name
    for lane in graph.lanes:
        for succ in lane.successors:  # successors start where their predecessor ends
            assert np.linalg.norm(graph.lanes[succ].centerline[0] - lane.centerline[-1]) < 0.5


def test_junctions_lights_and_speeds(town: tuple[str, LaneGraph, object]) -> None:
    _, graph, _ = town
    connectors = [lane for lane in graph.lanes if lane.is_junction]
    assert connectors and all(lane.junction_id is not None for lane in connectors)
    controlled = [lane for lane in graph.lanes if lane.light_group is not None]
    assert controlled and graph.light_groups > 0
    # lights control approaches: the lanes they stop lead into junctions
    assert all(any(graph.lanes[s].is_junction for s in lane.successors) for lane in controlled)
    assert all(3.0 < lane.speed_limit_mps < 30.0 for lane in graph.lanes)
    assert all(2.5 <= lane.width_m <= 5.0 for lane in graph.lanes)


def test_town10_has_stop_signs_and_crosswalks(shared_data: Path) -> None:
    graph = load_opendrive(shared_data / "carla" / "maps" / "Town10HD.xodr")
    assert any(lane.stop_sign for lane in graph.lanes)
    assert len(graph.crosswalks) > 10
    assert all(len(polygon) >= 3 for polygon in graph.crosswalks)


def test_leaderboard_routes_densify_onto_connected_lane_paths(shared_data: Path) -> None:
    graph = load_opendrive(shared_data / "carla" / "maps" / "Town01.xodr")
    routes = [r for r in read_routes(shared_data / "carla" / "routes" / "lb1_routes_training.xml")
              if r.town == "Town01"]
    assert len(routes) == 10
    for route in routes:
        path = densify(graph, route)
        for first, second in zip(path.lanes, path.lanes[1:], strict=False):
            assert second in graph.lanes[first].successors or second in graph.lane_changes(first)
        polyline = path.polyline(graph)
        # the route passes through every waypoint (the route file's points lie on lane centres)
        distance = np.linalg.norm(polyline[None] - route.waypoints[:, None], axis=-1).min(axis=1)
        assert distance.max() < 1.0, route.route_id


def test_a_broken_map_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.xodr"
    path.write_text("<OpenDRIVE><header/></OpenDRIVE>")
    with pytest.raises(ValueError, match=r"broken\.xodr"):
        load_opendrive(path)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match=r"broken\.xodr: CARLA could not parse"):
        load_opendrive(path)
