"""Pedestrians walk somewhere and never linger on a crosswalk: on the CARLA towns (their sidewalks joined across
their crosswalks) and on a map with crosswalks and no sidewalks at all; the expert drives the towns' routes
among them without being blocked."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from policies.expert import ExpertDriver
from sim.embedded.config import WorldConfig
from sim.embedded.world import World, make_world
from sim.geometry import FloatArray, cumulative_length
from sim.maps import LaneGraph, get_map, register_map
from sim.maps.compiled import compile_map
from sim.maps.walkways import STUB_M
from sim.metrics import RouteStatus
from sim.scenarios import Scenario, sample_scenario
from sim.scenarios.routes import densify, lane_route, read_routes

TOWNS = ("Town01", "Town04", "Town10HD")
#: Slowest background pedestrian (the world draws 1.0 .. 1.6 m/s).
SLOWEST_MPS = 1.0
#: Time on a crosswalk beyond walking across it at the slowest pace: stopping for moving vehicles in the way.
MARGIN_S = 30.0


def _town(name: str) -> str:
    return f"opendrive:carla/maps/{name}.xodr"


@pytest.fixture(params=TOWNS)
def town(request: pytest.FixtureRequest, shared_data: Path) -> str:
    pytest.importorskip("carla", reason="the OpenDRIVE importer needs the carla package (autoloop[carla])")
    return _town(request.param)


def _inside(polygon: FloatArray, xy: FloatArray) -> np.ndarray:
    """Which of the points ``xy`` lie inside ``polygon`` (ray casting)."""
    x, y = xy[:, 0, None], xy[:, 1, None]
    ax, ay = polygon[:, 0], polygon[:, 1]
    bx, by = np.roll(ax, -1), np.roll(ay, -1)
    crosses = ((ay > y) != (by > y)) & (x < ax + (y - ay) * (bx - ax) / np.where(by == ay, 1e-12, by - ay))
    inside: np.ndarray = np.count_nonzero(crosses, axis=1) % 2 == 1
    return inside


def _crosswalk_bound_s(graph: LaneGraph) -> float:
    """The longest a pedestrian may spend on a crosswalk: the longest crossing walked at the slowest pace, plus
    ``MARGIN_S``."""
    crossings = [float(cumulative_length(w.centerline)[-1]) for w in graph.walkways if w.crossing]
    if not crossings:  # a map without sidewalks: the crossings the compiled network makes
        arrays = compile_map(graph)
        ends = arrays.walk_offset[1:] - 1
        crossings = list(arrays.walk_s[ends][arrays.walk_crossing])
    return max(crossings, default=0.0) / SLOWEST_MPS + MARGIN_S


def _walk(world: World, steps: int) -> tuple[float, FloatArray]:
    """Walk the world's pedestrians ``steps`` steps (the ego standing): the longest any stayed on a crosswalk (inside
    its polygon or on a crossing walkway) at a stretch, and how far each got from where it started. Waiting to
    cross is never on the crosswalk."""
    first = world.config.max_vehicles
    count = world.config.max_pedestrians
    start = np.stack([world.scene.actors.x_m[:, first:first + count], world.scene.actors.y_m[:, first:first + count]],
                     axis=-1)
    polygons = world.map.crosswalks
    run = np.zeros((world.batch_size, count))
    longest = 0.0
    brake = np.tile([0.0, -1.0], (world.batch_size, 1))
    for _ in range(steps):
        world.step(brake)
        xy = np.stack([world.scene.actors.x_m[:, first:first + count],
                       world.scene.actors.y_m[:, first:first + count]], axis=-1).reshape(-1, 2)
        on = np.zeros(len(xy), dtype=bool)
        for polygon in polygons:
            on |= _inside(polygon, xy)
        walk = world.state.pedestrians.walk
        crossing = (walk >= 0) & world.arrays.walk_crossing[np.maximum(walk, 0)]
        on = (on.reshape(world.batch_size, count) | crossing) & world.scene.actors.valid[:, first:first + count]
        waiting = world.state.pedestrians.next >= 0
        assert not (on & waiting).any(), "a pedestrian waits to cross on the crosswalk"
        run = np.where(on, run + world.config.dt_s, 0.0)
        longest = max(longest, float(run.max()))
    end = np.stack([world.scene.actors.x_m[:, first:first + count], world.scene.actors.y_m[:, first:first + count]],
                   axis=-1)
    return longest, np.linalg.norm(end - start, axis=-1)[world.scene.actors.valid[:, first:first + count]]


def _route_scenarios(shared_data: Path, town: str, *, seed: int, traffic: int, pedestrians: int,
                     shortest: int | None = None) -> list[Scenario]:
    """The routes on ``town`` in the Leaderboard 1 training file that densify onto the map (all of them, or the
    ``shortest`` few of those that densify sanely: at most 10 % longer than their waypoints' chords)."""
    graph = get_map(town)
    name = town.split("/")[-1].removesuffix(".xodr")
    found = []
    for spec in read_routes(shared_data / "carla" / "routes" / "lb1_routes_training.xml"):
        if spec.town != name:
            continue
        try:
            lanes, start, end = lane_route(graph, densify(graph, spec))
        except ValueError:  # a route that does not densify onto the map is the router's concern, not ours
            continue
        chords_m = float(np.sum(np.linalg.norm(np.diff(spec.waypoints, axis=0), axis=1)))
        if shortest is None or end - start <= 1.1 * chords_m:
            found.append((end - start, lanes, start, end))
    if shortest is not None:
        found = sorted(found, key=lambda row: row[0])[:shortest]
    return [Scenario(map_name=town, route=lanes, start_s_m=start, end_s_m=end, traffic_vehicles=traffic,
                     pedestrians=pedestrians, traffic_seed=seed + k, timeout_s=60.0 + (end - start) / 2.0)
            for k, (_, lanes, start, end) in enumerate(found)]


def test_the_towns_have_sidewalks_joined_across_their_crosswalks(town: str) -> None:
    graph = get_map(town)
    walkways = graph.walkways
    sidewalks = [w for w in walkways if not w.crossing]
    assert len(sidewalks) > 50
    # every walkway leads on, and every crossing leads onto pavement at the end it reaches
    assert all(w.successors for w in walkways)
    for walkway in walkways:
        if walkway.crossing:
            assert walkway.successors and not any(walkways[s].crossing for s in walkway.successors)
            follow = walkways[walkway.successors[0]]
            assert np.linalg.norm(follow.centerline[0] - walkway.centerline[-1]) < 1e-6
    crossings = [w for w in walkways if w.crossing]
    assert len(crossings) == 2 * len(graph.crosswalks)
    # sidewalks joined: nearly every crossing leads onto a sidewalk (not a kerb's stub, which ends where it turns)
    def stub(index: int) -> bool:
        line = walkways[index].centerline
        return len(line) == 2 and abs(float(np.linalg.norm(line[1] - line[0])) - STUB_M) < 1e-6

    onto_sidewalks = [w for w in crossings if not all(stub(s) for s in w.successors)]
    assert len(onto_sidewalks) >= 0.9 * len(crossings)


def test_pedestrians_on_the_towns_walk_somewhere_and_never_linger_on_a_crosswalk(town: str, shared_data: Path) -> None:
    scenario = sample_scenario(5, map_name=town, traffic_vehicles=20, pedestrians=60)
    world = make_world(town, 1, WorldConfig(max_vehicles=20, max_pedestrians=60))
    world.reset([scenario.model_copy(update={"timeout_s": 1000.0})])
    longest_s, moved_m = _walk(world, 4000)
    assert longest_s <= _crosswalk_bound_s(world.map)
    assert len(moved_m) == 60 and np.median(moved_m) > 10.0  # 200 s of walking takes them somewhere


@pytest.fixture(scope="module")
def bare_crossings() -> str:
    """A town whose crosswalks have no sidewalks."""
    graph = get_map("town-1")
    bare = dataclasses.replace(graph, name="town-1-no-sidewalks", walkways=())
    return register_map(bare).name


def test_pedestrians_cross_and_leave_crosswalks_without_sidewalks(bare_crossings: str) -> None:
    world = make_world(bare_crossings, 2, WorldConfig(max_vehicles=6, max_pedestrians=12))
    world.reset([sample_scenario(seed, map_name=bare_crossings, traffic_vehicles=6, pedestrians=12)
                 .model_copy(update={"timeout_s": 1000.0}) for seed in (1, 2)])
    longest_s, _ = _walk(world, 3000)
    assert longest_s <= _crosswalk_bound_s(world.map)
    # they do walk onto the crosswalks
    assert longest_s > 0.0


def _drive(scenarios: list[Scenario], config: WorldConfig) -> list[RouteStatus | None]:
    world = make_world(scenarios[0].map_name, len(scenarios), config)
    world.reset(scenarios)
    expert = ExpertDriver(world)
    while world.running.any():
        world.step(expert.act())
    return [world.route_status(env) for env in range(len(scenarios))]


@pytest.mark.parametrize("name", ["Town01", "Town04"])
def test_the_expert_drives_town_routes_among_pedestrians(name: str, shared_data: Path) -> None:
    pytest.importorskip("carla", reason="the OpenDRIVE importer needs the carla package (autoloop[carla])")
    scenarios = _route_scenarios(shared_data, _town(name), seed=11, traffic=20, pedestrians=30, shortest=2)
    statuses = _drive(scenarios, WorldConfig(max_vehicles=20, max_pedestrians=30))
    assert statuses == [RouteStatus.COMPLETED] * len(scenarios)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["Town01", "Town04"])
def test_the_expert_drives_every_town_route_among_pedestrians(name: str, shared_data: Path) -> None:
    pytest.importorskip("carla", reason="the OpenDRIVE importer needs the carla package (autoloop[carla])")
    scenarios = _route_scenarios(shared_data, _town(name), seed=11, traffic=20, pedestrians=30)
    assert len(scenarios) >= 9
    statuses = _drive(scenarios, WorldConfig(max_vehicles=20, max_pedestrians=30))
    assert RouteStatus.AGENT_BLOCKED not in statuses, statuses
