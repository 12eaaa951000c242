"""The expert in replays of real logs, on synthetic replays that reproduce what it did wrong there: it stood at a
junction facing a replayed car that stood too (each waiting for the other) until the route timed out, and it
passed an oncoming truck close by at full speed where the person who drove had slowed down."""

from __future__ import annotations

import math

import numpy as np
import pytest

from policies.expert import ExpertDriver, ExpertParams
from sim.embedded.config import WorldConfig
from sim.embedded.world import World, make_world
from sim.geometry import interpolate_along
from sim.metrics import Infraction
from sim.scenarios import Scenario, sample_scenario
from sim.scenarios import events as ev
from sim.scene.kernels.planner import CREEP_CLEARANCE_M
from sim.scene.records import INFRACTIONS

MAP = "town-1"
#: Long straight arms for meeting oncoming traffic.
ARMS = "junction4-200"
CONFIG = WorldConfig(max_vehicles=4, max_pedestrians=2, max_statics=4, track_points=100)
CAR_LENGTH_M, CAR_WIDTH_M = 4.6, 2.0
TRUCK_LENGTH_M, TRUCK_WIDTH_M = 9.0, 2.6
#: Replayed actors that stand (or drive) for longer than any route here lasts.
FOREVER_S = 1000.0
#: A truck this close to the ego's path (side to side) is beside the ego's lane, not on it (it is no leader).
CLOSE_M = 0.6
COLLISIONS = [INFRACTIONS.index(k) for k in (Infraction.COLLISION_PEDESTRIAN, Infraction.COLLISION_VEHICLE,
                                             Infraction.COLLISION_STATIC)]


def _replay(base: Scenario, actors: list[ev.ReplayActor], ego_speed_mps: float = 0.0) -> Scenario:
    replay = ev.LogReplay(trigger_s_m=0.0, reactive=False, ego_speed_mps=ego_speed_mps, actors=tuple(actors))
    return base.model_copy(update={"events": (replay,), "traffic_vehicles": 0, "pedestrians": 0, "timeout_s": 120.0})


def _standing(x: float, y: float, yaw: float, name: str = "car") -> ev.ReplayActor:
    return ev.ReplayActor(actor_id=name, kind="vehicle", x_m=x, y_m=y, yaw_rad=yaw, speed_mps=0.0,
                          length_m=CAR_LENGTH_M, width_m=CAR_WIDTH_M,
                          track=((0.0, x, y, yaw, 0.0), (FOREVER_S, x, y, yaw, 0.0)))


def _junction_waits(seeds: range) -> list[tuple[Scenario, tuple[float, float, float], tuple[float, float, float]]]:
    """Routes through a junction, each with two places for a standing car on a junction lane that conflicts with
    the route's: one clear of the ego's path (with room to spare), one on it: ``(x, y, yaw)`` each."""
    world = make_world(MAP, 1, CONFIG)
    arrays, lanes = world.arrays, world.map.lanes
    clear_m = CAR_LENGTH_M / 2 + world.params.ego_width / 2 + CREEP_CLEARANCE_M + 1.0
    found = []
    for seed in seeds:
        base = sample_scenario(seed, map_name=MAP, traffic_vehicles=0)
        world.reset([base])
        route = world.scene.route
        pieces = [int(route.piece_lane[0, r]) for r in range(route.piece_n[0])]
        path = np.asarray(world.route_xy[0])
        for r in range(1, len(pieces)):
            ours = pieces[r]
            if arrays.lane_junction[ours] < 0 or arrays.lane_junction[pieces[r - 1]] >= 0:
                continue
            if route.piece_offset_m[0, r] < base.start_s_m + 30.0:
                continue
            beside = on = None
            for other in np.flatnonzero(arrays.conflict[ours]):
                line = np.asarray(lanes[other].centerline)
                for k in range(1, len(line) - 1):
                    distance = float(np.min(np.hypot(*(path - line[k]).T)))
                    yaw = math.atan2(*(line[k + 1] - line[k - 1])[::-1])
                    if beside is None and clear_m < distance < clear_m + 3.0:
                        beside = (float(line[k, 0]), float(line[k, 1]), yaw)
                    if on is None and distance < 0.3:
                        on = (float(line[k, 0]), float(line[k, 1]), yaw)
            if beside and on:
                found.append((base, beside, on))
            break
        if len(found) == 4:
            return found
    raise AssertionError("too few routes through a junction with a conflicting lane to stand on")


def _drive(scenarios: list[Scenario], seconds: float) -> World:
    world = make_world(MAP, len(scenarios), CONFIG)
    world.reset(scenarios)
    expert = ExpertDriver(world)
    for _ in range(int(seconds / world.params.dt)):
        if not world.running.any():
            break
        world.step(expert.act())
    return world


@pytest.fixture(scope="module")
def junction_waits() -> list[tuple[Scenario, tuple[float, float, float], tuple[float, float, float]]]:
    return _junction_waits(range(60))


def test_standing_at_a_junction_for_a_car_that_stands_in_it_the_expert_creeps_past(junction_waits: list) -> None:
    # the replayed car stands on a junction lane that crosses the route's, clear of the ego's path: the expert gives
    # way to it, stands, and the car (as in the log, where it waited for the person driving) never goes
    scenarios = [_replay(base, [_standing(*beside)]) for base, beside, _ in junction_waits]
    world = _drive(scenarios, 120.0)
    assert list(world.status_names()) == ["completed"] * len(scenarios)
    assert world.scene.outcome.infractions[:, COLLISIONS].sum() == 0


def test_a_car_standing_on_the_expert_s_path_is_not_crept_into(junction_waits: list) -> None:
    scenarios = [_replay(base, [_standing(*on)]) for base, _, on in junction_waits]
    world = _drive(scenarios, 60.0)
    assert world.scene.outcome.infractions[:, COLLISIONS].sum() == 0
    assert (world.scene.facts.creep_lane == -1).all()


def _straight_starts(count: int) -> list[Scenario]:
    """Routes whose first 110 m past the start turn less than 10 degrees and cross no junction."""
    world = make_world(ARMS, 1, CONFIG)
    found = []
    for seed in range(200):
        base = sample_scenario(seed, map_name=ARMS, traffic_vehicles=0, route_length_m=(250.0, 400.0))
        world.reset([base])
        s = base.start_s_m + np.arange(0.0, 110.0, 5.0)
        _, heading = interpolate_along(world.route_xy, world.route_s, s[None, :])
        turn = np.abs(np.angle(np.exp(1j * (heading[0] - heading[0, 0]))))
        route = world.scene.route
        junction = [route.piece_offset_m[0, r] for r in range(route.piece_n[0])
                    if world.arrays.lane_junction[route.piece_lane[0, r]] >= 0]
        if turn.max() < math.radians(10.0) and base.end_s_m > base.start_s_m + 110.0 and \
                min(junction, default=np.inf) > base.start_s_m + 110.0:
            found.append(base)
        if len(found) == count:
            return found
    raise AssertionError("too few straight starts")


def _oncoming_truck(world: World, base: Scenario, gap_m: float, speed_mps: float = 6.0) -> ev.ReplayActor:
    """A truck driving towards the ego along the route, from 100 m ahead, ``gap_m`` to the left of the ego's path
    side to side."""
    world.reset([base])
    lateral = world.params.ego_width / 2 + TRUCK_WIDTH_M / 2 + gap_m
    times = np.arange(0.0, 40.0, 0.5)
    s = base.start_s_m + 100.0 - speed_mps * times
    point, heading = interpolate_along(world.route_xy, world.route_s, s[None, :])
    xy = point[0] + lateral * np.stack([-np.sin(heading[0]), np.cos(heading[0])], axis=-1)
    yaw = heading[0] + math.pi
    track = tuple((float(t), float(x), float(y), float(a), speed_mps) for t, (x, y), a in zip(times, xy, yaw,
                                                                                              strict=True))
    return ev.ReplayActor(actor_id="truck", kind="vehicle", x_m=track[0][1], y_m=track[0][2], yaw_rad=track[0][3],
                          speed_mps=speed_mps, length_m=TRUCK_LENGTH_M, width_m=TRUCK_WIDTH_M, track=track)


def _speed_abreast(scenarios: list[Scenario], speed_mps: float = 6.0) -> tuple[np.ndarray, World]:
    """The ego's speed when the truck's centre is beside its own."""
    world = make_world(ARMS, len(scenarios), CONFIG)
    world.reset(scenarios)
    expert = ExpertDriver(world)
    abreast = np.full(len(scenarios), np.nan)
    starts = np.array([sc.start_s_m for sc in scenarios])
    for _ in range(int(30.0 / world.params.dt)):
        truck_s = starts + 100.0 - speed_mps * world.scene.time_s
        beside = np.abs(truck_s - world.progress_s) < 1.0
        abreast = np.where(beside & np.isnan(abreast), world.ego.speed_mps, abreast)
        if not np.isnan(abreast).any():
            break
        world.step(expert.act())
    return abreast, world


def test_an_oncoming_truck_close_by_is_passed_slowly_and_one_at_a_lane_s_distance_is_not() -> None:
    bases = _straight_starts(4)
    world = make_world(ARMS, 1, CONFIG)
    params = ExpertParams()
    close = [_replay(b, [_oncoming_truck(world, b, CLOSE_M)], ego_speed_mps=8.0) for b in bases]
    speed, driven = _speed_abreast(close)
    assert not np.isnan(speed).any()
    assert (speed <= params.oncoming_speed_mps + params.oncoming_speed_per_m * CLOSE_M + 0.5).all(), speed
    assert driven.scene.outcome.infractions[:, COLLISIONS].sum() == 0
    # a lane away (1.5 m side to side), the expert meets it at its own pace
    apart = [_replay(b, [_oncoming_truck(world, b, 1.5)], ego_speed_mps=8.0) for b in bases]
    speed, driven = _speed_abreast(apart)
    assert (speed > 6.0).all(), speed
    assert driven.scene.outcome.infractions[:, COLLISIONS].sum() == 0
