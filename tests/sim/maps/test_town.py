"""Procedural towns: seeded, varied, connected, with every kind of junction control and a pedestrian network."""

from collections import deque

import numpy as np
import pytest

from sim.maps import LaneGraph, TownSpec, get_map, procedural_town


def _reachable(graph: LaneGraph, start: int) -> set[int]:
    seen, queue = {start}, deque([start])
    while queue:
        for succ in graph.lanes[queue.popleft()].successors:
            if succ not in seen:
                seen.add(succ)
                queue.append(succ)
    return seen


def test_same_seed_same_town_other_seeds_other_towns() -> None:
    a, b = procedural_town(3), procedural_town(3)
    assert a.name == "town-3" and len(a.lanes) == len(b.lanes)
    assert all(np.array_equal(x.centerline, y.centerline) for x, y in zip(a.lanes, b.lanes, strict=True))
    fingerprints = {(len(t.lanes), round(sum(lane.length_m for lane in t.lanes), 1))
                    for t in (procedural_town(seed) for seed in range(8))}
    assert len(fingerprints) >= 6
    assert get_map("town-grid-3").name == "town-grid-3" and get_map("town-3") is get_map("town-3")


@pytest.mark.parametrize("layout", ["grid", "irregular"])
@pytest.mark.parametrize("seed", [1, 2, 5])
def test_towns_are_closed_connected_networks(layout: str, seed: int) -> None:
    town = procedural_town(seed, TownSpec(layout=layout))  # type: ignore[arg-type]
    assert all(lane.successors for lane in town.lanes)  # no dead ends
    roads = [lane.lane_id for lane in town.lanes if not lane.is_junction]
    reach = _reachable(town, roads[0])
    assert set(roads) <= reach  # every road lane reachable from every other (the relation is symmetric here)
    for lane in town.lanes:
        for succ in lane.successors:  # successors continue where a lane ends
            assert np.linalg.norm(town.lanes[succ].centerline[0] - lane.centerline[-1]) < 1e-6


def test_towns_have_every_kind_of_junction_and_road() -> None:
    towns = [procedural_town(seed) for seed in range(6)]
    lanes = [lane for town in towns for lane in town.lanes]
    assert any(lane.light_group is not None for lane in lanes)
    assert any(lane.stop_sign for lane in lanes)
    assert any(lane.is_junction and lane.light_group is None and not lane.stop_sign for lane in lanes)
    # two lanes per direction: a right neighbour running the same way
    assert any(lane.right_neighbor is not None for lane in lanes)
    # one lane per direction: the left neighbour is the opposite lane
    single = [lane for lane in lanes if not lane.is_junction and lane.right_neighbor is None]
    assert single and all(lane.left_neighbor is not None for lane in single)
    signal_counts = [np.bincount(town.light_group_junctions()) for town in towns]
    assert {3, 4} <= {int(c) for counts in signal_counts for c in counts if c}  # T and 4-way signalized junctions


def test_crosswalks_walkways_and_curbside_stops() -> None:
    town = procedural_town(1)
    assert town.crosswalks and town.walkways and town.curbside_stops
    crossings = [w for w in town.walkways if w.crossing]
    assert len(crossings) == 2 * len(town.crosswalks)  # each crosswalk walked both ways
    for walkway in town.walkways:  # walkways join up: every one continues somewhere
        assert walkway.successors
        for succ in walkway.successors:
            assert np.linalg.norm(town.walkways[succ].centerline[0] - walkway.centerline[-1]) < 1e-6
    for seed in range(6):  # sidewalks lie off the driving lanes (at sharp irregular corners, up to their edge)
        other = procedural_town(seed)
        located = other.locate(np.concatenate([w.centerline for w in other.walkways if not w.crossing]))
        widths = np.array([other.lanes[lane].width_m for lane in located.lane])
        assert np.all(np.abs(located.lateral_m) > 0.5 * widths - 0.25), seed
    for stop in town.curbside_stops:
        lane = town.lanes[stop.lane_id]
        assert not lane.is_junction and lane.right_neighbor is None  # the curb lane
        assert 0.0 <= stop.start_s_m < stop.end_s_m <= lane.length_m
