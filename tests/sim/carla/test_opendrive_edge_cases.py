"""OpenDRIVE lanes that crash CARLA's own lane walks, and the child process every OpenDRIVE import runs in.

The map here is written as text: a road whose second lane section adds a lane with width 0 at its start (no
predecessor), a road whose lane narrows to width 0 and ends mid-road (no successor), roads at the map's edge (lanes
with no predecessor, dead ends), a junction where two connectors merge onto one lane (they overlap), and a road that
links to nothing (CARLA's topology leaves its lane out).
"""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from sim.carla.crash_guard import ChildCrashed, ChildTraceback, run_guarded

carla = pytest.importorskip("carla", reason="the OpenDRIVE importer needs the carla package (autoloop[carla])")
from sim.carla.opendrive import load_opendrive  # noqa: E402

W = ((0.0, 3.5, 0.0, 0.0, 0.0),)  # width records: sOffset, a, b, c, d (metres)
# width 0 at the section's start, 3.5 m from 20 m on (a cubic with zero slope at both ends)
GROWING = ((0.0, 0.0, 0.0, 3 * 3.5 / 20**2, -2 * 3.5 / 20**3), (20.0, 3.5, 0.0, 0.0, 0.0))
SHRINKING = ((0.0, 3.5, 0.0, -3 * 3.5 / 50**2, 2 * 3.5 / 50**3),)  # 3.5 m to 0 over 50 m


def _lane(lane_id: int, widths: tuple[tuple[float, ...], ...], *, before: int | None = None,
          after: int | None = None) -> str:
    links = (f'<predecessor id="{before}"/>' if before is not None else "") + (
        f'<successor id="{after}"/>' if after is not None else "")
    width = "".join(f'<width sOffset="{s}" a="{a}" b="{b}" c="{c}" d="{d}"/>' for s, a, b, c, d in widths)
    return f'<lane id="{lane_id}" type="driving" level="false"><link>{links}</link>{width}</lane>'


def _section(s: float, left: tuple[str, ...] = (), right: tuple[str, ...] = ()) -> str:
    return (f'<laneSection s="{s}"><left>{"".join(left)}</left><center><lane id="0" type="none" level="false"/>'
            f'</center><right>{"".join(right)}</right></laneSection>')


def _road(road_id: int, x: float, y: float, hdg: float, length: float, sections: tuple[str, ...], *,
          junction: int = -1, link: str = "") -> str:
    return (f'<road name="road{road_id}" length="{length}" id="{road_id}" junction="{junction}"><link>{link}</link>'
            f'<planView><geometry s="0" x="{x}" y="{y}" hdg="{hdg}" length="{length}"><line/></geometry>'
            f'</planView><lanes>{"".join(sections)}</lanes></road>')


def _connector(road_id: int, x: float, y: float, hdg: float, length: float, before: int, after: int, *,
               from_road: int, from_end: str, to_road: int, to_end: str) -> str:
    """A connecting road of junction 100 with one lane (-1) from lane ``before`` to lane ``after``."""
    link = (f'<predecessor elementType="road" elementId="{from_road}" contactPoint="{from_end}"/>'
            f'<successor elementType="road" elementId="{to_road}" contactPoint="{to_end}"/>')
    return _road(road_id, x, y, hdg, length, (_section(0, right=(_lane(-1, W, before=before, after=after),)),),
                 junction=100, link=link)


def edge_case_map() -> str:
    """Road 1 (x 0..100 along +x): lanes 1 and -1; from s = 50 lane -2 appears with width 0. Junction 100 joins
    its end to road 2 (x 120..220): road 10 takes lane -1 and road 11 lane -2, both onto road 2's lane -1; road 12
    takes road 2's lane 1 back onto road 1's lane 1. Road 2's lane -2 narrows to 0 and ends at s = 50, where its
    second section starts. Road 1 has no predecessor and road 2 no successor. Road 3 (y -30) links to nothing."""
    roads = (
        _road(1, 0, 0, 0, 100, (
            _section(0, (_lane(1, W, after=1),), (_lane(-1, W, after=-1),)),
            _section(50, (_lane(1, W, before=1),), (_lane(-1, W, before=-1), _lane(-2, GROWING))),
        ), link='<successor elementType="junction" elementId="100"/>'),
        _road(2, 120, 0, 0, 100, (
            _section(0, (_lane(1, W, after=1),), (_lane(-1, W, after=-1), _lane(-2, SHRINKING))),
            _section(50, (_lane(1, W, before=1),), (_lane(-1, W, before=-1),)),
        ), link='<predecessor elementType="junction" elementId="100"/>'),
        _road(3, 0, -30, 0, 30, (_section(0, right=(_lane(-1, W),)),)),
        _connector(10, 100, 0, 0, 20, -1, -1, from_road=1, from_end="end", to_road=2, to_end="start"),
        _connector(11, 100, -3.5, math.atan2(3.5, 20), math.hypot(20, 3.5), -2, -1,
                   from_road=1, from_end="end", to_road=2, to_end="start"),
        _connector(12, 120, 0, math.pi, 20, 1, 1, from_road=2, from_end="start", to_road=1, to_end="end"),
    )
    connections = "".join(
        f'<connection id="{i}" incomingRoad="{incoming}" connectingRoad="{connecting}" contactPoint="start">'
        f'<laneLink from="{lane}" to="-1"/></connection>'
        for i, (incoming, connecting, lane) in enumerate(((1, 10, -1), (1, 11, -2), (2, 12, 1))))
    return ('<?xml version="1.0" encoding="UTF-8"?><OpenDRIVE><header revMajor="1" revMinor="4" name="edge" '
            f'version="1"/>{"".join(roads)}<junction id="100" name="j100">{connections}</junction></OpenDRIVE>')


def _id(road: int, section: int, lane: int) -> str:
    return f"road {road} section {section} lane {lane}"


#: The lane graph the file describes: each driving lane (road, section, lane) and the lanes it leads into.
EXPECTED_SUCCESSORS = {
    _id(1, 0, -1): {_id(1, 1, -1)},
    _id(1, 1, -1): {_id(10, 0, -1)},
    _id(1, 1, -2): {_id(11, 0, -1)},
    _id(1, 1, 1): {_id(1, 0, 1)},
    _id(1, 0, 1): set(),  # road 1 has no predecessor: its lane 1 ends there
    _id(10, 0, -1): {_id(2, 0, -1)},
    _id(11, 0, -1): {_id(2, 0, -1)},
    _id(2, 0, -1): {_id(2, 1, -1)},
    _id(2, 1, -1): set(),  # road 2 has no successor
    _id(2, 0, -2): set(),  # ends mid-road
    _id(2, 1, 1): {_id(2, 0, 1)},
    _id(2, 0, 1): {_id(12, 0, -1)},
    _id(12, 0, -1): {_id(1, 1, 1)},
    _id(3, 0, -1): set(),
}


@pytest.fixture
def edge_map_file(tmp_path: Path) -> Path:
    path = tmp_path / "edge.xodr"
    path.write_text(edge_case_map())
    return path


def walk_with_carla(path: Path, walk: str) -> int:
    """CARLA's own walk to a lane's start or end (``previous_until_lane_start``, ``next_until_lane_end``) from
    waypoints every 5 m of every lane; returns how many waypoints it walked (on this map it dies instead)."""
    carla_map = carla.Map("edge", path.read_text())
    return sum(len(getattr(waypoint, walk)(1.0)) for waypoint in carla_map.generate_waypoints(5.0))


def die_by_segfault() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def raise_key_error() -> None:
    raise KeyError("no such lane")


@pytest.mark.parametrize("walk", ["previous_until_lane_start", "next_until_lane_end"])
def test_carlas_own_lane_walks_die_on_this_map(edge_map_file: Path, walk: str) -> None:
    """The map reaches the cases that kill CARLA (walking back to a road without predecessor, on to the end of a lane
    that ends mid-road), caught by the guard."""
    with pytest.raises(ChildCrashed, match=rf"^{walk} crashed on .*edge\.xodr \(signal 11, SIGSEGV\)$"):
        run_guarded(f"{walk} crashed on {edge_map_file}", walk_with_carla, edge_map_file, walk)


def test_every_lane_imports_with_the_successors_the_file_gives(edge_map_file: Path) -> None:
    graph = load_opendrive(edge_map_file)
    by_id = {lane.source_id: lane for lane in graph.lanes}
    assert {source: {graph.lanes[s].source_id for s in lane.successors} for source, lane in by_id.items()} == (
        EXPECTED_SUCCESSORS)
    lengths_m = {source: lane.length_m for source, lane in by_id.items()}
    assert lengths_m[_id(1, 0, 1)] == pytest.approx(50.0, abs=0.01)  # the dead ends run to the road's end
    assert lengths_m[_id(2, 1, -1)] == pytest.approx(50.0, abs=0.01)
    assert lengths_m[_id(2, 1, 1)] == pytest.approx(50.0, abs=0.01)  # from its start, which nothing leads into
    assert lengths_m[_id(2, 0, -2)] == pytest.approx(50.0, abs=0.1)  # to where it ends, mid-road, width 0
    np.testing.assert_allclose(by_id[_id(2, 0, -2)].centerline[-1], [170.0, -3.5], atol=0.01)
    assert lengths_m[_id(3, 0, -1)] == pytest.approx(30.0, abs=0.01)
    assert lengths_m[_id(10, 0, -1)] == pytest.approx(20.0, abs=0.01)
    assert lengths_m[_id(11, 0, -1)] == pytest.approx(20.0, abs=0.1)
    # the added lane starts on its neighbour's edge (width 0), then runs 1.75 m beside it
    added, beside = by_id[_id(1, 1, -2)], by_id[_id(1, 1, -1)]
    np.testing.assert_allclose(added.centerline[0], [50.0, -3.5], atol=0.01)
    halfway = added.centerline[np.argmin(np.abs(added.centerline[:, 0] - 75.0))]
    np.testing.assert_allclose(halfway, [75.0, -5.25], atol=0.01)
    assert (beside.right_neighbor, added.left_neighbor) == (added.lane_id, beside.lane_id)
    # the two connectors that merge end where road 2's lane starts; all three connectors are junction 100's
    merged = [by_id[_id(road, 0, -1)] for road in (10, 11)]
    for lane in merged:
        np.testing.assert_allclose(lane.centerline[-1], [120.0, -1.75], atol=0.01)
    assert {lane.junction_id for lane in graph.lanes if lane.is_junction} == {100}
    assert sorted(lane.source_id for lane in graph.lanes if lane.is_junction) == [
        _id(10, 0, -1), _id(11, 0, -1), _id(12, 0, -1)]


def test_a_map_whose_only_lane_links_to_nothing_imports_it(tmp_path: Path) -> None:
    """CARLA's topology of this map is empty; the lane is still there."""
    path = tmp_path / "one_road.xodr"
    road = _road(3, 0, -30, 0, 30, (_section(0, right=(_lane(-1, W),)),))
    path.write_text(f'<?xml version="1.0"?><OpenDRIVE><header revMajor="1" revMinor="4"/>{road}</OpenDRIVE>')
    assert not carla.Map("one_road", path.read_text()).get_topology()
    (lane,) = load_opendrive(path).lanes
    assert (lane.source_id, lane.successors) == (_id(3, 0, -1), ())
    np.testing.assert_allclose(lane.centerline[[0, -1]], [[0.0, -31.75], [30.0, -31.75]], atol=0.01)


def test_a_child_killed_by_a_signal_is_a_one_line_error_and_the_caller_lives_on(edge_map_file: Path) -> None:
    with pytest.raises(ChildCrashed, match=r"^the carla parser crashed on .*edge\.xodr \(signal 11, SIGSEGV\)$"):
        run_guarded(f"the carla parser crashed on {edge_map_file}", die_by_segfault)
    assert issubclass(ChildCrashed, ValueError)  # map loading reports it as bad input
    assert len(load_opendrive(edge_map_file).lanes) == len(EXPECTED_SUCCESSORS)


def test_an_exception_in_the_child_is_raised_again_with_the_childs_traceback() -> None:
    with pytest.raises(KeyError, match="no such lane") as raised:
        run_guarded("never shown", raise_key_error)
    assert isinstance(raised.value.__cause__, ChildTraceback)
    assert "raise_key_error" in str(raised.value.__cause__)


class TwoPartError(Exception):
    def __init__(self, part: str, other: str) -> None:
        super().__init__(f"{part} {other}")


def raise_two_part_error() -> None:
    raise TwoPartError("lane", "lost")


def test_an_exception_that_does_not_unpickle_comes_back_as_its_text() -> None:
    with pytest.raises(RuntimeError, match=r"^TwoPartError: lane lost$"):
        run_guarded("never shown", raise_two_part_error)
