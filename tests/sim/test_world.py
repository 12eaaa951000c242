import numpy as np
import pytest

from policies.expert import ExpertDriver
from sim.embedded.traffic import LightState
from sim.embedded.world import World, make_world
from sim.maps import connector_id
from sim.metrics import Infraction, RouteStatus
from sim.scenario import Scenario, sample_scenario

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


def test_driving_into_a_parked_car_is_one_vehicle_collision() -> None:
    world = make_world(MAP, 1)
    world.reset([_scenario(offset=0.0)])  # group 0 (our approach) is green at t = 0
    world.place_vehicle(0, 0, EAST_TO_WEST, s_m=25.0, speed_mps=0.0, desired_speed_mps=0.0)
    _run(world, (0.0, 0.5), 80)  # 4 s accelerating: ~15 m, through the car 15 m ahead
    counts = dict(zip([k.value for k in Infraction], world.infractions[0], strict=True))
    assert counts["collision_vehicle"] == 1
    assert world.collided[0, 0]
    assert [e.kind for e in world.events] == ["collision_vehicle"]
    assert world.events[0].actor == 0


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
    world.reset([_scenario()])
    _run(world, (1.0, 0.5), 200)
    assert world.route_status(0) is RouteStatus.ROUTE_DEVIATION
    assert world.route_record(0).outside_lanes_share > 0.0
    assert not world.running[0]


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


def test_background_traffic_stops_for_red_lights() -> None:
    world = make_world(MAP, 4)
    world.reset([sample_scenario(seed, traffic_vehicles=8) for seed in range(4)])
    for _ in range(600):
        before = world.npc_s.copy()
        world.step(np.zeros((4, 2)))
        crossed = (before < world.npc_stop_s) & (world.npc_s >= world.npc_stop_s) & world.npc_valid
        light = np.take_along_axis(world.lights, world.npc_stop_group, axis=1)
        assert not (crossed & (light == LightState.RED)).any()


def test_same_scenarios_give_identical_trajectories() -> None:
    scenarios = [sample_scenario(seed) for seed in (3, 4, 5)]
    runs = []
    for _ in range(2):
        world = make_world(MAP, 3)
        world.reset(scenarios)
        expert = ExpertDriver(world)
        trace = []
        for _ in range(300):
            world.step(expert.act())
            trace.append(np.concatenate([world.ego.x_m, world.npc_xy.ravel()]))
        runs.append(np.stack(trace))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_scenario_errors_name_the_problem() -> None:
    world = make_world(MAP, 1)
    with pytest.raises(ValueError, match="this world runs 'junction4-60'"):
        world.reset([_scenario().model_copy(update={"map_name": "junction4-80"})])
    with pytest.raises(ValueError, match=r"start 10\.0 and end 500\.0"):
        world.reset([_scenario(end=500.0)])
    with pytest.raises(ValueError, match="max_vehicles"):
        world.reset([_scenario(traffic=20)])
