"""Route waypoints go on the lanes the route drives: where junction connectors overlap, or roads cross, a waypoint
goes on the lane the route comes by and leaves by, so densified routes take no detours."""

import itertools
from pathlib import Path

import numpy as np
import pytest

from sim.geometry import FloatArray, cumulative_length
from sim.maps import Lane, LaneGraph, get_map
from sim.scenarios.routes import OFF_MAP_M, RouteSpec, densify, densify_waypoints, read_routes


def _lane(lane_id: int, points: list[tuple[float, float]], successors: tuple[int, ...], *,
          junction: bool = False) -> Lane:
    dense = np.concatenate([np.linspace(a, b, 20, endpoint=False) for a, b in itertools.pairwise(points)])
    centerline = np.concatenate([dense, np.array(points[-1:], dtype=np.float64)])
    return Lane(lane_id, centerline, 3.5, successors, is_junction=junction, junction_id=0 if junction else None)


def _overlapping_connectors() -> LaneGraph:
    """An eastward road through a junction (approach 0, straight connector 1, exit 2), a loop (3) from the exit
    round to a second approach (4) whose connector (5) joins the exit across the first, passing 0.05 m from the
    point (10, 0.25) that lies 0.25 m from the straight connector."""
    lanes = (
        _lane(0, [(-100.0, 0.0), (0.0, 0.0)], (1,)),
        _lane(1, [(0.0, 0.0), (20.0, 0.0)], (2,), junction=True),
        _lane(2, [(20.0, 0.0), (100.0, 0.0)], (3,)),
        _lane(3, [(100.0, 0.0), (100.0, -100.0), (-100.0, -100.0), (-100.0, -5.0)], (4,)),
        _lane(4, [(-100.0, -5.0), (0.0, -5.0)], (5,)),
        _lane(5, [(0.0, -5.0), (10.0, 0.3), (20.0, 0.0)], (2,), junction=True),
    )
    return LaneGraph("overlapping-connectors", lanes, (-110.0, -110.0, 110.0, 10.0), ())


def _length_m(polyline: FloatArray) -> float:
    return float(cumulative_length(polyline)[-1])


def test_a_waypoint_on_overlapping_connectors_goes_on_the_one_the_route_drives() -> None:
    graph = _overlapping_connectors()
    waypoints = np.array([[-50.0, 0.0], [10.0, 0.25], [60.0, 0.0]])
    # the nearest lane to the junction's waypoint is the connector reached only round the loop
    nearest = graph.locate(waypoints, np.zeros(3))
    assert nearest.lane.tolist() == [0, 5, 2]
    detour = graph.shortest_path(0, 5, start_s_m=50.0, goal_s_m=float(nearest.s_m[1]))
    assert detour == [0, 1, 2, 3, 4, 5]  # placed there, the route would drive the loop: 800 m for a 60 m leg
    path = densify_waypoints(graph, waypoints)
    assert path.lanes == (0, 1, 2)
    assert _length_m(path.polyline(graph)) == pytest.approx(110.0, abs=0.5)
    # with a heading per waypoint (a Leaderboard 1.0 file) too
    assert densify_waypoints(graph, waypoints, np.zeros(3)).lanes == (0, 1, 2)
    # a route that does come round the loop takes the crossing connector
    around = np.array([[-50.0, -5.0], [10.0, 0.25], [60.0, 0.0]])
    assert densify_waypoints(graph, around).lanes == (4, 5, 2)


def test_one_search_finds_the_shortest_paths_to_several_goals() -> None:
    graph = _overlapping_connectors()
    found = graph.shortest_paths(0, [(2, 40.0), (5, 5.0), (0, 10.0), (0, 80.0)], start_s_m=50.0)
    costs_m = [None if f is None else round(f[0], 6) for f in found]
    assert costs_m == [110.0, 50.0 + 20.0 + 80.0 + 395.0 + 100.0 + 5.0, None, 30.0]  # lane 0 is behind: no way back
    assert [None if f is None else f[1] for f in found] == [[0, 1, 2], [0, 1, 2, 3, 4, 5], None, [0]]
    lone = LaneGraph("lone", (_lane(0, [(0.0, 0.0), (10.0, 0.0)], ()), _lane(1, [(0.0, 5.0), (10.0, 5.0)], ())),
                     (0.0, 0.0, 10.0, 5.0), ())
    assert lone.shortest_paths(0, [(1, 5.0), (0, 8.0)]) == [None, (8.0, [0])]


def _routes_on_available_towns(data: Path) -> list[tuple[Path, list[RouteSpec]]]:
    towns = {path.stem for path in (data / "carla" / "maps").glob("*.xodr")}
    files = sorted((data / "carla" / "routes").glob("*.xml"))
    return [(file, [route for route in read_routes(file) if route.town in towns]) for file in files]


def test_leaderboard_routes_densify_without_detours(shared_data: Path) -> None:
    pytest.importorskip("carla", reason="the OpenDRIVE importer needs the carla package (autoloop[carla])")
    checked = 0
    for file, routes in _routes_on_available_towns(shared_data):
        for route in routes:
            graph = get_map(f"opendrive:carla/maps/{route.town}.xodr")
            try:
                path = densify(graph, route)
            except ValueError as error:
                # only a waypoint off the imported lanes, whatever their direction, may stop a route
                assert "is off map" in str(error), error
                index = int(str(error).split("waypoint ")[1].split()[0])
                assert abs(graph.locate(route.waypoints[index : index + 1]).lateral_m[0]) > OFF_MAP_M, error
                continue
            polyline = path.polyline(graph)
            ratio = _length_m(polyline) / _length_m(route.waypoints)
            assert ratio <= 1.2, f"{file.name} route {route.route_id}: {ratio:.2f} times its waypoints' length"
            distance_m = np.linalg.norm(polyline[None] - route.waypoints[:, None], axis=-1).min(axis=1)
            assert distance_m.max() < 2.0, f"{file.name} route {route.route_id}: waypoint {distance_m.argmax()}"
            checked += 1
    if not checked:
        pytest.skip("no route file in the shared data has a route on a town it holds")
