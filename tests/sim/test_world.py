import dataclasses
from pathlib import Path

import numpy as np
import pytest

from policies.expert import ExpertDriver
from sim.embedded.config import WorldConfig
from sim.embedded.traffic import LightState, light_states
from sim.embedded.world import World, make_world
from sim.maps import connector_id, get_map, register_map
from sim.metrics import Infraction, RouteStatus
from sim.scenarios import Scenario, sample_scenario
from sim.scene.records import INFRACTIONS, ActorKind

MAP = "junction4-60"
EAST_TO_WEST = (0, connector_id(0, 2), 5)  # inbound from the east, straight across, out to the west


def _scenario(*, start: float = 10.0, end: float = 120.0, offset: float = 0.0, timeout: float = 60.0,
              traffic: int = 0) -> Scenario:
    return Scenario(map_name=MAP, route=EAST_TO_WEST, start_s_m=start, end_s_m=end, traffic_vehicles=traffic,
                    traffic_seed=0, light_offset_s=offset, timeout_s=timeout)


def _run(world: World, action: tuple[float, float], steps: int) -> None:
    for _ in range(steps):
        world.step(np.tile(np.array(action), (world.batch_size, 1)))


def test_reset_places_ego_on_route_start() -> None:
    world = make_world(MAP, 1)
    world.reset([_scenario(start=10.0)])
    # inbound east lane runs from x = 70 to x = 10 at y = +1.75, heading west
    assert float(world.ego.x_m[0]) == pytest.approx(60.0)
    assert float(world.ego.y_m[0]) == pytest.approx(1.75)
    assert abs(float(world.ego.yaw_rad[0])) == pytest.approx(np.pi)
    assert float(world.route_completion()[0]) == 0.0


def _count(world: World, kind: Infraction, env: int = 0) -> int:
    return int(world.infractions[env, INFRACTIONS.index(kind)])


def test_constant_speed_and_braking_distance() -> None:
    world = make_world(MAP, 2)
    world.reset([_scenario(start=2.0, end=130.0), _scenario(start=2.0, end=130.0)])
    x0 = world.ego.x_m.copy()
    world.scene.ego.speed_mps[:] = 20.0
    _run(world, (0.0, 0.0), 40)  # 2 s at 20 m/s, heading west
    assert x0[0] - world.ego.x_m[0] == pytest.approx(40.0, abs=1e-9)
    # full braking from 20 m/s at 8 m/s^2 stops in v^2 / 2a = 25 m (explicit mid-point integration: exact)
    x1 = world.ego.x_m.copy()
    _run(world, (0.0, -1.0), 60)
    assert world.ego.speed_mps[0] == 0.0
    assert x1[0] - world.ego.x_m[0] == pytest.approx(25.0, abs=1e-9)


def test_lights_follow_the_split_phase_program() -> None:
    world = make_world(MAP, 3)
    world.reset([_scenario(offset=o) for o in (0.0, 7.5, 20.0)])
    for _ in range(150):
        _run(world, (0.0, 0.0), 1)
        expected = light_states(world.time_s, np.array([0.0, 7.5, 20.0]), 4, world.config.lights)
        np.testing.assert_array_equal(world.lights, expected)


def test_driving_into_a_parked_car_is_one_vehicle_collision() -> None:
    world = make_world(MAP, 1)
    world.reset([_scenario(offset=0.0)])  # group 0 (our approach) is green at t = 0
    world.placement(0).place_vehicle(0, EAST_TO_WEST, s_m=25.0, speed_mps=0.0, desired_speed_mps=0.0)
    _run(world, (0.0, 0.5), 120)  # 6 s pushing into the car 15 m ahead: in contact for seconds
    assert _count(world, Infraction.COLLISION_VEHICLE) == 1
    assert [e.kind for e in world.events] == ["collision_vehicle"]
    assert world.events[0].actor == 0


def test_collisions_count_by_actor_type() -> None:
    world = make_world(MAP, 2)
    world.reset([_scenario(offset=0.0), _scenario(offset=0.0)])
    x, y = float(world.ego.x_m[0]), float(world.ego.y_m[0])
    world.placement(0).place_pedestrian(0, np.array([[x - 8.0, y], [x - 8.0, y + 0.5]]), start_time_s=100.0)
    world.placement(1).place_static(0, (x - 8.0, y), 0.0, length_m=0.8, width_m=0.8)
    _run(world, (0.0, 0.5), 80)
    assert _count(world, Infraction.COLLISION_PEDESTRIAN, 0) == 1 and _count(world, Infraction.COLLISION_STATIC, 0) == 0
    assert _count(world, Infraction.COLLISION_STATIC, 1) == 1 and _count(world, Infraction.COLLISION_PEDESTRIAN, 1) == 0


def test_background_vehicles_keep_off_a_pedestrian_on_their_lane() -> None:
    world = make_world(MAP, 1)
    world.reset([_scenario(start=5.0)])
    world.placement(0).place_vehicle(0, (2, connector_id(1, 3), 7), s_m=5.0, speed_mps=8.0, desired_speed_mps=9.0)
    lane = world.map.lanes[2].centerline  # north inbound, heading south
    walker = lane[0] + 0.6 * (lane[1] - lane[0])
    world.placement(0).place_pedestrian(0, np.stack([walker, walker + 0.1]), start_time_s=100.0)
    for _ in range(300):
        _run(world, (0.0, -1.0), 1)
        gap = np.linalg.norm(world.vehicles().xy[0, 0] - walker)
        assert gap > 2.5
    assert world.vehicles().speed_mps[0, 0] < 0.1
    assert _count(world, Infraction.COLLISION_VEHICLE) == 0


def test_crossing_the_stop_line_on_red_is_a_red_light_infraction() -> None:
    world = make_world(MAP, 2)
    # env 0: our group is red for the first 24 s; env 1: green for the first 5 s
    world.reset([_scenario(start=40.0, offset=8.0), _scenario(start=56.0, offset=0.0)])
    assert world.lights[0, 0] == LightState.RED and world.lights[1, 0] == LightState.GREEN
    _run(world, (0.0, 1.0), 80)  # 4 s: both cross the stop line at s = 60 m
    red = list(Infraction).index(Infraction.RED_LIGHT)
    assert world.infractions[0, red] == 1
    assert world.infractions[1, red] == 0


def test_leaving_the_route_ends_it() -> None:
    world = make_world(MAP, 1)
    # the route turns left (south) at the junction; driving straight on leaves it
    world.reset([_scenario().model_copy(update={"route": (0, connector_id(0, 3), 7), "end_s_m": 100.0})])
    world.scene.ego.speed_mps[:] = 8.0
    _run(world, (0.0, 0.0), 300)
    assert world.route_status(0) is RouteStatus.ROUTE_DEVIATION
    assert abs(world.lateral_m[0]) > 30.0
    assert not world.running[0]


def test_driving_circles_is_off_road_and_blocking_ends_the_route() -> None:
    world = make_world(MAP, 2, WorldConfig(blocked_s=3.0))
    world.reset([_scenario(start=30.0), _scenario()])
    for _ in range(200):
        world.step(np.array([[1.0, 0.2 if world.ego.speed_mps[0] < 4.0 else 0.0], [0.0, 0.0]]))
    assert world.route_record(0).outside_lanes_share > 0.0  # against the traffic on the opposite lane
    assert world.running[0]
    assert world.route_status(1) is RouteStatus.AGENT_BLOCKED


def test_standing_still_times_out_and_finished_routes_freeze() -> None:
    world = make_world(MAP, 1)
    world.reset([_scenario(timeout=2.0)])
    _run(world, (0.0, 0.0), 40)
    assert world.route_status(0) is RouteStatus.ROUTE_TIMEOUT
    frozen_time, frozen_x = world.time_s.copy(), world.ego.x_m.copy()
    _run(world, (0.0, 1.0), 10)
    np.testing.assert_array_equal(world.time_s, frozen_time)
    np.testing.assert_array_equal(world.ego.x_m, frozen_x)


def test_completing_the_route_scores_full_completion() -> None:
    world = make_world(MAP, 1)
    world.reset([_scenario(start=40.0, end=90.0, offset=0.0)])
    expert = ExpertDriver(world)
    while world.running.any():
        world.step(expert.act())
    record = world.route_record(0)
    assert record.status is RouteStatus.COMPLETED
    assert record.route_completion == 1.0
    assert record.infractions == {}


def test_background_traffic_stops_for_red_lights_and_stop_signs() -> None:
    town = "town-grid-3"  # signalized and all-way-stop junctions
    world = make_world(town, 4, WorldConfig(max_vehicles=20))
    world.reset([sample_scenario(seed, map_name=town, traffic_vehicles=20) for seed in range(4)])
    lanes, entered, stopped_before = world.map.lanes, 0, 0
    sc = world.scene
    slots = world.config.max_vehicles
    slowest: dict[tuple[int, int, int], float] = {}
    for _ in range(1200):
        lane_before, s_before = sc.vehicles.lanes[:, :, 0].copy(), sc.vehicles.lane_s_m.copy()
        lights = world.lights.copy()
        world.step(np.zeros((4, 2)))
        for env, slot in zip(*np.nonzero(world.npc_valid), strict=True):
            lane = lanes[lane_before[env, slot]]
            half = 0.5 * sc.actors.length_m[env, slot]
            key = (int(env), int(slot), lane.lane_id)
            slowest[key] = min(slowest.get(key, np.inf), float(sc.actors.speed_mps[env, slot]))
            moved_on = sc.vehicles.lanes[env, slot, 0] != lane.lane_id
            front_after = (lane.length_m if moved_on else 0.0) + sc.vehicles.lane_s_m[env, slot] + half
            if lane.is_junction or not s_before[env, slot] + half < lane.length_m <= front_after:
                continue  # the front bumper did not cross this lane's end (its stop line) in this step
            if lane.light_group is not None:
                entered += 1
                assert lights[env, lane.light_group] != LightState.RED
            if lane.stop_sign:
                stopped_before += 1
                assert slowest[key] < 0.3  # came to a stop before entering the junction
    del slots
    assert entered > 10 and stopped_before > 3


def test_same_seed_same_trajectory_whatever_the_batch() -> None:
    """Bit-identical scenarios whatever the batch size, the scenario's slot and the threads stepping the batch."""
    town = "town-1"
    config = WorldConfig(max_vehicles=12, max_pedestrians=6)
    scenarios = [sample_scenario(seed, map_name=town, traffic_vehicles=12, pedestrians=6) for seed in (3, 4, 5)]

    def trace(batch: list[Scenario], threads: int) -> np.ndarray:
        world = make_world(town, len(batch), dataclasses.replace(config, threads=threads))
        world.reset(batch)
        expert = ExpertDriver(world)
        steps = []
        for _ in range(400):
            world.step(expert.act())
            steps.append(np.concatenate([world.ego.x_m[:, None], world.ego.y_m[:, None], world.vehicles().xy[..., 0],
                                         world.scene.actors.speed_mps], axis=1))
        return np.stack(steps, axis=1)  # (B, T, features)

    together = trace(scenarios, 1)
    padded = [sample_scenario(seed, map_name=town, traffic_vehicles=12, pedestrians=6) for seed in range(20, 50)]
    shuffled = trace(padded[:20] + [scenarios[2], scenarios[0]] + padded[20:] + [scenarios[1]], 2)
    for index, position in ((0, 21), (1, 32), (2, 20)):
        np.testing.assert_array_equal(together[index], trace([scenarios[index]], 1)[0])
        np.testing.assert_array_equal(together[index], shuffled[position])


def test_minimum_speed_compares_the_ego_with_surrounding_traffic_like_the_leaderboard() -> None:
    """scenario_runner's MinimumSpeedRouteTest: frames without background traffic around count for neither side;
    a checkpoint compares the mean speeds over the others."""
    world = make_world(MAP, 1)
    world.reset([_scenario(timeout=60.0, traffic=6)])
    sc, vehicles, radius = world.scene, world.config.max_vehicles, world.config.min_speed_radius_m
    background = sc.vehicles.background[0].copy()
    sc.vehicles.background[0] = False  # no background traffic: the ego stands, and that does not count
    _run(world, (0.0, 0.0), 100)
    sc.vehicles.background[0] = background
    ego_sum = traffic_sum = 0.0
    while sc.outcome.ms_section[0] == 0:  # the first quarter, slowly
        world.step(np.array([[0.0, 0.3]]))
        distance = np.hypot(sc.actors.x_m[0, :vehicles] - sc.ego.x_m[0], sc.actors.y_m[0, :vehicles] - sc.ego.y_m[0])
        around = sc.actors.valid[0,
                                 :vehicles] & ~sc.vehicles.parked[0] & sc.vehicles.background[0] & (distance < radius)
        if around.any():
            ego_sum += float(sc.ego.speed_mps[0])
            traffic_sum += float(sc.actors.speed_mps[0, :vehicles][around].mean())
    assert 0.0 < ego_sum < traffic_sum
    assert sc.outcome.min_speed_pct[0, 0] == pytest.approx(100.0 * ego_sum / traffic_sum)


def test_minimum_speed_records_the_last_checkpoint_only_near_the_route_end() -> None:
    world = make_world(MAP, 1)
    world.reset([_scenario(timeout=20.0, traffic=6)])
    _run(world, (0.0, 0.0), 400)  # the ego stands; traffic drives around it
    record = world.route_record(0)
    assert record.status is RouteStatus.ROUTE_TIMEOUT
    assert record.min_speed_percentages == ()  # timed out at 0 % of the route: no checkpoint passed


def test_scenario_errors_name_the_problem() -> None:
    world = make_world(MAP, 1)
    with pytest.raises(ValueError, match="this world runs 'junction4-60'"):
        world.reset([_scenario().model_copy(update={"map_name": "junction4-80"})])
    with pytest.raises(ValueError, match=r"start 10\.0 and end 500\.0"):
        world.reset([_scenario(end=500.0)])
    with pytest.raises(ValueError, match="max_vehicles"):
        world.reset([_scenario(traffic=20)])
    with pytest.raises(ValueError, match="max_pedestrians"):
        world.reset([_scenario().model_copy(update={"pedestrians": 20})])


def test_stop_signs_need_a_full_stop_near_the_line() -> None:
    town = get_map("town-grid-3")
    lane = next(lane for lane in town.lanes if lane.stop_sign and lane.length_m > 40.0)
    connector = lane.successors[0]
    route = (lane.lane_id, connector, town.lanes[connector].successors[0])
    scenario = Scenario(map_name=town.name, route=route, start_s_m=lane.length_m - 30.0,
                        end_s_m=lane.length_m + town.lanes[connector].length_m + 10.0, traffic_vehicles=0,
                        traffic_seed=0, timeout_s=60.0)
    world = make_world(town.name, 2)
    world.reset([scenario, scenario])
    expert = ExpertDriver(world)
    while world.running.any():
        actions = expert.act()
        actions[0] = (actions[0, 0], 0.3 if world.ego.speed_mps[0] < 5.0 else 0.0)  # env 0 rolls through
        world.step(actions)
    assert world.route_status(0) is RouteStatus.COMPLETED and world.route_status(1) is RouteStatus.COMPLETED
    assert _count(world, Infraction.STOP_SIGN, 0) == 1
    assert _count(world, Infraction.STOP_SIGN, 1) == 0


def test_the_world_runs_on_imported_carla_towns(shared_data: Path) -> None:
    pytest.importorskip("carla", reason="the OpenDRIVE importer needs the carla package (autoloop[carla])")
    from sim.carla.opendrive import load_opendrive

    town = register_map(load_opendrive(shared_data / "carla" / "maps" / "Town01.xodr", name="Town01-world-test"))
    config = WorldConfig(max_vehicles=20, max_pedestrians=4)
    scenarios = [sample_scenario(seed, map_name=town.name, traffic_vehicles=20, pedestrians=4) for seed in range(8)]
    world = make_world(town.name, len(scenarios), config)
    world.reset(scenarios)
    expert = ExpertDriver(world)
    while world.running.any():
        world.step(expert.act())
    records = [world.route_record(env) for env in range(len(scenarios))]
    assert all(record.status is RouteStatus.COMPLETED for record in records)
    assert all(set(record.infractions) <= {Infraction.MIN_SPEED} for record in records)
    assert world.lights.shape[1] == town.light_groups > 0


def _track(t0: float, t1: float, x0: float, speed: float, *, y: float = 1.75) -> np.ndarray:
    """A vehicle driving west along the inbound east lane from ``x0`` at ``speed``, seen from ``t0`` to ``t1`` at
    10 Hz (the fleet logs' rate)."""
    t = np.arange(t0, t1 + 1e-9, 0.1)
    return np.stack([t, x0 - speed * (t - t0), np.full_like(t, y), np.full_like(t, np.pi), np.full_like(t, speed)],
                    axis=-1)


def test_a_recorded_track_replays_as_recorded_whatever_the_ego_does() -> None:
    config = WorldConfig(max_statics=2, track_points=300)
    world = make_world(MAP, 2, config)
    world.reset([_scenario(start=10.0, end=135.0), _scenario(start=10.0, end=135.0)])
    slot = config.max_vehicles + config.max_pedestrians  # the first static slot
    for env in range(2):
        world.placement(env).place_track(0, int(ActorKind.VEHICLE), _track(0.0, 20.0, 40.0, 4.0), length_m=4.5,
                                         width_m=1.9)
        crossing = np.array([[2.0, 30.0, 8.0, -np.pi / 2, 1.0], [4.0, 30.0, 6.0, -np.pi / 2, 1.0]])
        world.placement(env).place_track(1, int(ActorKind.PEDESTRIAN), crossing, length_m=0.5, width_m=0.5)
    expert = ExpertDriver(world)
    followed = False
    for step in range(1, 201):  # 10 s: env 0 stands, env 1 drives behind the recorded car
        actions = expert.act()
        actions[0] = (0.0, -1.0)
        world.step(actions)
        t = step * config.dt_s
        assert world.scene.actors.x_m[:, slot] == pytest.approx(40.0 - 4.0 * t, abs=1e-9)
        assert world.scene.actors.speed_mps[:, slot] == pytest.approx(4.0)
        # the pedestrian is there only while the record has it
        assert bool(world.scene.actors.valid[0, slot + 1]) == (2.0 - 1e-9 <= t <= 4.0 + 1e-9)
        if world.scene.actors.valid[0, slot + 1]:
            assert world.scene.actors.y_m[:, slot + 1] == pytest.approx(8.0 - (t - 2.0), abs=1e-9)
        followed |= bool(world.scene.facts.leader_gap_m[1] < 30.0 and abs(world.scene.facts.leader_speed_mps[1]
                                                                          - 4.0) < 1e-6)
    assert followed, "the expert follows the recorded car as traffic, at its recorded speed"
    assert world.infractions.sum() == 0
    assert world.ego.speed_mps[1] > 1.0 and world.scene.ego.x_m[1] > world.scene.actors.x_m[1, slot] + 4.5


def test_driving_into_a_recorded_vehicle_is_a_vehicle_collision() -> None:
    config = WorldConfig(max_statics=1, track_points=10)
    world = make_world(MAP, 1, config)
    world.reset([_scenario(start=10.0, end=135.0)])
    world.placement(0).place_track(0, int(ActorKind.VEHICLE), _track(0.0, 0.5, 45.0, 0.0), length_m=4.5, width_m=1.9)
    world.scene.ego.speed_mps[:] = 10.0
    _run(world, (0.0, 0.5), 20)  # the record ends at 0.5 s: the car stands there for as long as it was seen ...
    assert not world.scene.actors.valid[0, config.max_vehicles + config.max_pedestrians]  # ... then it is gone
    assert _count(world, Infraction.COLLISION_VEHICLE) == 0
    world.reset([_scenario(start=10.0, end=135.0)])
    standing = np.array([[0.0, 45.0, 1.75, np.pi, 0.0], [30.0, 45.0, 1.75, np.pi, 0.0]])  # seen at 0 s and 30 s
    world.placement(0).place_track(0, int(ActorKind.VEHICLE), standing, length_m=4.5, width_m=1.9)
    world.scene.ego.speed_mps[:] = 10.0
    _run(world, (0.0, 0.5), 20)
    assert _count(world, Infraction.COLLISION_VEHICLE) == 1
    with pytest.raises(ValueError, match="track_points"):
        world.placement(0).place_track(0, int(ActorKind.VEHICLE), _track(0.0, 3.0, 45.0, 0.0), length_m=4.5,
                                       width_m=1.9)
