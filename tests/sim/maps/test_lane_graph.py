import dataclasses
import json

import numpy as np
import pytest

from sim.maps import Lane, LaneGraph, LanePath, LanePiece, connector_id, get_map


def test_locate_finds_lane_arc_length_and_side() -> None:
    graph = get_map("junction4-60")
    # inbound east lane (id 0) runs west along y = +1.75 from x = 70
    located = graph.locate(np.array([[50.0, 2.25], [50.0, -1.0]]), np.array([np.pi, 0.0]))
    assert located.lane.tolist() == [0, 1]
    assert located.s_m[0] == pytest.approx(20.0)
    assert located.lateral_m[0] == pytest.approx(-0.5)  # north of a westbound lane is its right
    # without headings the nearest centreline wins, whatever its direction
    assert graph.locate(np.array([[50.0, 0.5]])).lane.tolist() == [0]


def test_shortest_path_through_the_junction() -> None:
    graph = get_map("junction4-60")
    assert graph.shortest_path(0, 5) == [0, connector_id(0, 2), 5]
    assert graph.shortest_path(0, 0, start_s_m=5.0, goal_s_m=30.0) == [0]
    with pytest.raises(ValueError, match="cannot be reached"):
        graph.shortest_path(1, 0)  # outbound lanes lead nowhere


def _corridor() -> LaneGraph:
    """Two parallel eastbound lanes (0 left of 1), each followed by one more lane; a lane change joins them."""
    def line(y: float, x0: float, x1: float) -> np.ndarray:
        return np.stack([np.linspace(x0, x1, 11), np.full(11, y)], axis=-1)

    lanes = (
        Lane(0, line(3.5, 0, 100), 3.5, (2,), right_neighbor=1),
        Lane(1, line(0.0, 0, 100), 3.5, (3,), left_neighbor=0),
        Lane(2, line(3.5, 100, 200), 3.5, ()),
        Lane(3, line(0.0, 100, 200), 3.5, ()),
    )
    return LaneGraph("corridor", lanes, (0.0, -5.0, 200.0, 10.0), ())


def test_lane_changes_join_parallel_lanes() -> None:
    graph = _corridor()
    assert graph.lane_changes(0) == (1,)
    assert graph.predecessors == ((), (), (0,), (1,))
    assert graph.shortest_path(0, 3, lane_changes=True) == [0, 1, 3]
    with pytest.raises(ValueError):
        graph.shortest_path(0, 3, lane_changes=False)
    # driven from 20 m on lane 0 to 50 m on lane 3: the change leaves lane 0 at 20 m, joins lane 1 10 m on
    path = LanePath(tuple(graph.leg([0, 1, 3], 20.0, 50.0)))
    assert path.pieces == (LanePiece(0, 20.0, 20.0), LanePiece(1, 30.0, 100.0), LanePiece(3, 0.0, 50.0))
    polyline = path.polyline(graph)
    assert polyline[0].tolist() == [20.0, 3.5] and polyline[-1].tolist() == [150.0, 0.0]
    assert polyline[1].tolist() == [30.0, 0.0]
    assert np.all(np.diff(polyline[:, 0]) > 0)  # it moves forward while changing lanes
    with pytest.raises(ValueError, match="neither follows nor neighbours"):
        graph.leg([0, 3], 0.0, 10.0)
    with pytest.raises(ValueError, match="does not follow"):
        graph.path_polyline([0, 1])


def test_bad_references_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown lane 7"):
        LaneGraph("broken", (Lane(0, np.zeros((2, 2)) + [[0, 0], [1, 0]], 3.5, (7,)),), (0, 0, 1, 1), ())


def _assert_same_map(a: LaneGraph, b: LaneGraph) -> None:
    """Field by field (the dataclasses hold arrays, so ``==`` does not apply)."""
    def same(x: object, y: object) -> None:
        if isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray) and x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
        elif isinstance(x, tuple):
            assert isinstance(y, tuple) and len(x) == len(y)
            for u, v in zip(x, y, strict=True):
                same(u, v)
        elif dataclasses.is_dataclass(x):
            assert type(x) is type(y)
            for field in dataclasses.fields(x):
                same(getattr(x, field.name), getattr(y, field.name))
        else:
            assert x == y and type(x) is type(y)

    same(a, b)


@pytest.mark.parametrize("name", ["town-1", "junction4-60"])
def test_lane_graph_round_trips_through_json(name: str) -> None:
    graph = get_map(name)
    restored = LaneGraph.from_dict(json.loads(json.dumps(graph.to_dict())))
    _assert_same_map(restored, graph)


def test_lane_graph_round_trip_keeps_source_boundaries() -> None:
    graph = _corridor()
    left, right = graph.lanes[0].boundaries()
    lanes = (dataclasses.replace(graph.lanes[0], left_boundary=left, right_boundary=right, source_id="av2:7"),
             *graph.lanes[1:])
    graph = dataclasses.replace(graph, lanes=lanes)
    _assert_same_map(LaneGraph.from_dict(json.loads(json.dumps(graph.to_dict()))), graph)
    with pytest.raises(ValueError, match="format None"):
        LaneGraph.from_dict({"name": "x"})


def test_registering_the_same_map_again_gives_the_known_one_and_a_different_one_is_refused() -> None:
    from sim.maps import register_map

    base = get_map("junction4-60")
    first = register_map(dataclasses.replace(base, name="registered-twice"))
    again = dataclasses.replace(base, name="registered-twice")  # the same map read a second time
    assert register_map(again) is first and get_map("registered-twice") is first
    slower = (dataclasses.replace(base.lanes[0], speed_limit_mps=base.lanes[0].speed_limit_mps + 1.0), *base.lanes[1:])
    moved = dataclasses.replace(base, name="registered-twice", lanes=slower)
    with pytest.raises(ValueError, match="another map is already registered as 'registered-twice'"):
        register_map(moved)
