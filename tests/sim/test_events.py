"""Scenario events staged by the embedded world: each situation happens, a naive driver runs into it, the expert
does not."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from policies.expert import ExpertDriver, NaiveDriver
from sim.embedded.config import WorldConfig
from sim.embedded.world import World, make_world
from sim.metrics import Infraction
from sim.scenarios import Scenario, sample_scenario
from sim.scenarios import events as ev
from sim.scene import codes
from sim.scene.kernels import geometry
from sim.scene.records import INFRACTIONS

MAP = "town-1"
CONFIG = WorldConfig(max_vehicles=12, max_pedestrians=4)
ROUTES = 8


def _scenarios(make: Callable[[float], object], traffic: int = 0) -> list[Scenario]:
    """``ROUTES`` routes from fixed seeds, each with the event at the first trigger (from 30 m after the start, in
    10 m steps) where it stages."""
    world = make_world(MAP, 1, CONFIG)
    found = []
    for seed in range(100):
        base = sample_scenario(seed, map_name=MAP, traffic_vehicles=traffic)
        for trigger in np.arange(base.start_s_m + 30.0, base.end_s_m - 30.0, 10.0):
            scenario = base.model_copy(update={"events": (make(float(trigger)),)})
            try:
                world.reset([scenario])
            except ValueError:
                continue
            found.append(scenario)
            break
        if len(found) == ROUTES:
            return found
    raise AssertionError("too few routes stage the event")


def _drive(scenarios: list[Scenario], driver: Callable[[World], object], steps: int = 4000) -> World:
    world = make_world(MAP, len(scenarios), CONFIG)
    world.reset(scenarios)
    agent = driver(world)
    for _ in range(steps):
        if not world.running.any():
            break
        world.step(agent.act())  # type: ignore[attr-defined]
    return world


#: The infraction each event type is staged to provoke (in a driver that keeps going).
PROVOKED = {
    "PedestrianCrossing": Infraction.COLLISION_PEDESTRIAN,
    "DynamicObjectCrossing": Infraction.COLLISION_PEDESTRIAN,
    "VehicleTurningRoutePedestrian": Infraction.COLLISION_PEDESTRIAN,
    "HardBreakRoute": Infraction.COLLISION_VEHICLE,
    "OppositeVehicleRunningRedLight": Infraction.COLLISION_VEHICLE,
    "OppositeVehicleTakingPriority": Infraction.COLLISION_VEHICLE,
    "ParkingCutIn": Infraction.COLLISION_VEHICLE,
    "ParkedObstacle": Infraction.COLLISION_VEHICLE,
    "Accident": Infraction.COLLISION_VEHICLE,
    "ConstructionObstacle": Infraction.COLLISION_STATIC,
    "StaticCutIn": Infraction.COLLISION_VEHICLE,
    "SignalizedJunctionLeftTurn": Infraction.COLLISION_VEHICLE,
    "SignalizedJunctionRightTurn": Infraction.COLLISION_VEHICLE,
    "NonSignalizedJunctionLeftTurn": Infraction.COLLISION_VEHICLE,
    "YieldToEmergencyVehicle": Infraction.YIELD_TO_EMERGENCY,
    "InvadingTurn": Infraction.COLLISION_VEHICLE,
    "ParkingExit": Infraction.COLLISION_VEHICLE,
    "CurbsidePickup": Infraction.MISSED_CURBSIDE_STOP,
    "CurbsideDropoff": Infraction.MISSED_CURBSIDE_STOP,
}


@pytest.mark.parametrize("name", sorted(PROVOKED))
def test_naive_driver_runs_into_the_event_and_the_expert_does_not(name: str) -> None:
    provoked = PROVOKED[name]
    scenarios = _scenarios(lambda t: ev.EVENT_TYPES[name](trigger_s_m=t))
    column = INFRACTIONS.index(provoked)
    naive = _drive(scenarios, NaiveDriver).infractions[:, column]
    expert_world = _drive(scenarios, ExpertDriver)
    expert = expert_world.infractions[:, column]
    assert (naive > 0).sum() >= 0.75 * ROUTES, f"{name}: the naive driver hit it on {(naive > 0).sum()} routes"
    assert expert.sum() == 0, f"{name}: the expert committed {provoked.value} on {np.flatnonzero(expert)}"
    collisions = [INFRACTIONS.index(k) for k in (Infraction.COLLISION_PEDESTRIAN, Infraction.COLLISION_VEHICLE,
                                                 Infraction.COLLISION_STATIC)]
    assert expert_world.infractions[:, collisions].sum() == 0
    assert list(expert_world.status_names()) == ["completed"] * ROUTES


def test_crossing_pedestrian_is_in_the_lane_when_the_ego_gets_there() -> None:
    scenario = _scenarios(lambda t: ev.PedestrianCrossing(trigger_s_m=t))[0]
    event = scenario.events[0]
    assert isinstance(event, ev.PedestrianCrossing)
    meet = event.trigger_s_m + event.distance_m
    world = make_world(MAP, 1, CONFIG)
    world.reset([scenario])
    driver = NaiveDriver(world)
    slot = scenario.pedestrians  # events take the slots right after the background's
    actor = CONFIG.max_vehicles + slot
    st, sc = world.state, world.scene
    ego_there = ped_there = None
    started_at_trigger = None
    for _ in range(600):
        world.step(driver.act())
        if started_at_trigger is None and np.isfinite(st.pedestrians.start_s[0, slot]):
            started_at_trigger = float(sc.route.progress_m[0])
        t = float(sc.time_s[0])
        if ego_there is None and sc.route.progress_m[0] >= meet:
            ego_there = t
        if ped_there is None and sc.route.progress_m[0] > meet - 10.0 and _lateral(world, actor) < 0.5:
            ped_there = t
        if ego_there is not None and ped_there is not None:
            break
    assert started_at_trigger is not None, "the pedestrian never set off"
    assert event.trigger_s_m <= started_at_trigger < event.trigger_s_m + 1.0
    assert ego_there is not None and ped_there is not None
    assert abs(ego_there - ped_there) < 0.6, (ego_there, ped_there)
    assert sc.outcome.infractions[0, INFRACTIONS.index(Infraction.COLLISION_PEDESTRIAN)] >= 1


def _lateral(world: World, actor: int) -> float:
    """Distance of ``actor`` from the route polyline of scenario 0."""
    sc = world.scene
    points = np.stack([world.route_xy[0, :, 0], world.route_xy[0, :, 1]], axis=-1)
    xy = np.array([sc.actors.x_m[0, actor], sc.actors.y_m[0, actor]])
    return float(np.min(np.linalg.norm(points - xy, axis=1)))


def test_the_event_waits_for_its_trigger() -> None:
    scenario = _scenarios(lambda t: ev.OppositeVehicleRunningRedLight(trigger_s_m=t))[0]
    world = make_world(MAP, 1, CONFIG)
    world.reset([scenario])
    slot = scenario.traffic_vehicles
    assert not world.scene.actors.valid[0, slot], "the red-light runner is hidden until the trigger"
    still = np.zeros((1, 2))
    for _ in range(100):  # the ego stands: nothing happens
        world.step(still)
    assert not world.scene.actors.valid[0, slot]
    driver = NaiveDriver(world)
    for _ in range(400):
        world.step(driver.act())
        if world.scene.actors.valid[0, slot]:
            break
    assert world.scene.actors.valid[0, slot]
    assert world.progress_s[0] >= scenario.events[0].trigger_s_m


def test_an_event_that_does_not_fit_its_route_names_itself() -> None:
    base = sample_scenario(3, map_name=MAP)
    late = base.model_copy(update={"events": (ev.OppositeVehicleRunningRedLight(trigger_s_m=base.end_s_m,
                                                                                 name="RedLight_7"),)})
    with pytest.raises(ValueError, match=r"OppositeVehicleRunningRedLight 'RedLight_7'.*no junction after the trigger"):
        make_world(MAP, 1, CONFIG).reset([late])
    crowded = base.model_copy(update={"traffic_vehicles": CONFIG.max_vehicles,
                                      "events": (ev.HardBreakRoute(trigger_s_m=base.start_s_m + 10.0),)})
    with pytest.raises(ValueError, match="no vehicle slot left"):
        make_world(MAP, 1, CONFIG).reset([crowded])


def test_scenarios_with_events_round_trip_through_yaml() -> None:
    base = sample_scenario(5, map_name=MAP)
    scenario = base.model_copy(update={"events": (
        ev.PedestrianCrossing(trigger_s_m=40.0, direction="left", name="PedestrianCrossing_1"),
        ev.HardBreakRoute(trigger_s_m=80.0, decel_mps2=6.0),
    )})
    text = scenario.to_yaml()
    assert "PedestrianCrossing" in text
    assert Scenario.from_yaml(text) == scenario
    broken = text.replace("direction: left", "direction: sideways")
    with pytest.raises(ValueError, match=r"route.yaml: invalid scenario \(events\.0\.PedestrianCrossing\.direction"):
        Scenario.from_yaml(broken, source="route.yaml")


def test_the_expert_passes_a_blocked_lane_only_once_oncoming_traffic_has_gone_by() -> None:
    scenario = _scenarios(lambda t: ev.Accident(trigger_s_m=t))[0]
    event = scenario.events[0]
    assert isinstance(event, ev.Accident)
    world = make_world(MAP, 1, CONFIG)
    world.reset([scenario])
    lanes = world.map.lanes
    sc = world.scene
    # an oncoming car in the lane the ego would pass on, beside the crash and heading for the ego
    middle = scenario.traffic_vehicles + 1  # the accident's second car
    xy = np.array([sc.actors.x_m[0, middle], sc.actors.y_m[0, middle]])
    yaw = float(sc.actors.yaw_rad[0, middle])
    beside = xy + 3.5 * np.array([-np.sin(yaw), np.cos(yaw)])
    out = [np.zeros(4, dtype=np.int64)] + [np.zeros(4) for _ in range(4)]
    count = geometry.locate(world.arrays, float(beside[0]), float(beside[1]), 0.0, *out)
    lane_ids, s_on, headings = out[0][:count], out[1][:count], out[3][:count]
    oncoming_k = int(np.argmin(np.cos(headings - yaw)))
    assert np.cos(headings[oncoming_k] - yaw) < -0.9, "the lane to the left of the crash is the oncoming one"
    oncoming = lanes[int(lane_ids[oncoming_k])]
    s = float(s_on[oncoming_k])
    car = CONFIG.max_vehicles - 1  # a slot the event leaves free
    world.placement(0).place_vehicle(car, (oncoming.lane_id,), s_m=max(s - 30.0, 0.0), speed_mps=4.0,
                                     desired_speed_mps=4.0)
    expert = ExpertDriver(world)
    passed_by_at = started_at = None
    while world.running[0]:
        world.step(expert.act())
        t = float(sc.time_s[0])
        to_car = np.array([sc.actors.x_m[0, car] - sc.ego.x_m[0], sc.actors.y_m[0, car] - sc.ego.y_m[0]])
        behind = to_car @ np.array([np.cos(sc.ego.yaw_rad[0]), np.sin(sc.ego.yaw_rad[0])]) < 0.0
        if passed_by_at is None and (behind or not sc.actors.valid[0, car]):
            passed_by_at = t
        if started_at is None and sc.facts.nudge_m[0] != 0.0:
            started_at = t
    assert world.route_status(0) is not None and world.route_status(0).value == "completed"
    assert world.infractions[0].sum() == 0
    assert passed_by_at is not None and started_at is not None
    assert started_at >= passed_by_at - 1.0, (started_at, passed_by_at)


def test_a_junction_flow_event_holds_the_junctions_lights_from_its_trigger() -> None:
    scenario = _scenarios(lambda t: ev.SignalizedJunctionLeftTurn(trigger_s_m=t))[0]
    world = make_world(MAP, 1, CONFIG)
    world.reset([scenario])
    st, sc = world.state, world.scene
    forced = np.flatnonzero(st.program.force[0] >= 0)
    green = [int(g) for g in forced if st.program.force[0, g] == codes.GREEN]
    assert len(green) == 2 and len(forced) >= 3, "the ego's and the flow's groups green, the junction's others red"
    driver = NaiveDriver(world)
    held_at = None
    for _ in range(1500):
        world.step(driver.act())
        if held_at is None and float(sc.time_s[0]) < float(st.program.force_until_s[0]):
            held_at = float(sc.time_s[0])
        if held_at is not None:
            assert all(sc.lights[0, g] == codes.GREEN for g in green)
            assert all(sc.lights[0, g] == codes.RED for g in forced if g not in green)
            if float(sc.time_s[0]) > held_at + 5.0:
                break
    assert held_at is not None, "the lights were never held"
    assert world.progress_s[0] >= float(st.program.force_trigger_m[0]) - 1.0


def test_the_emergency_vehicle_gets_past_the_expert_and_is_held_up_by_the_naive_driver() -> None:
    scenarios = _scenarios(lambda t: ev.YieldToEmergencyVehicle(trigger_s_m=t))
    expert = _drive(scenarios, ExpertDriver)
    assert expert.scene.emergency.done.all(), "the emergency vehicle caught up with every expert ego and got past"
    column = INFRACTIONS.index(Infraction.YIELD_TO_EMERGENCY)
    assert expert.infractions[:, column].sum() == 0
    naive = _drive(scenarios, NaiveDriver)
    assert (naive.infractions[:, column] > 0).all()


def test_the_robotaxi_mission_is_its_curbside_events_in_route_order() -> None:
    base = _scenarios(lambda t: ev.CurbsidePickup(trigger_s_m=t))[0]
    pickup = base.events[0]
    assert isinstance(pickup, ev.CurbsidePickup)
    dropoff = ev.CurbsideDropoff(trigger_s_m=pickup.trigger_s_m - 20.0, distance_m=5.0, dwell_s=2.0)
    scenario = base.model_copy(update={"events": (pickup, dropoff)})
    assert scenario.mission == (dropoff, pickup)
    assert Scenario.from_yaml(scenario.to_yaml()) == scenario
    naive = _drive([base], NaiveDriver)
    assert naive.infractions[0, INFRACTIONS.index(Infraction.MISSED_CURBSIDE_STOP)] == 1
    expert = _drive([base], ExpertDriver)
    sc = expert.scene
    assert int(sc.mission.stop_next[0]) == int(sc.mission.stop_n[0]) == 1, "the expert served the stop"
    assert expert.infractions[0].sum() == 0


class _CreepAfterContact:
    """Keeps 8 m/s until it has hit a vehicle, then creeps on at a walking pace (as a learner may, where a vehicle
    could follow it inside its box)."""

    def __init__(self, world: World) -> None:
        self.world, self.naive = world, NaiveDriver(world)

    def act(self) -> np.ndarray:
        actions = self.naive.act()
        hit = self.world.infractions[:, INFRACTIONS.index(Infraction.COLLISION_VEHICLE)] > 0
        creep = np.where(self.world.ego.speed_mps > 1.0, -0.3, 0.2)
        actions[:, 1] = np.where(hit, creep, actions[:, 1])
        return actions


def test_a_vehicle_that_hit_the_ego_stands_and_the_one_crash_counts_once() -> None:
    scenarios = _scenarios(lambda t: ev.NonSignalizedJunctionLeftTurn(trigger_s_m=t))[:4]
    world = make_world(MAP, len(scenarios), CONFIG)
    world.reset(scenarios)
    driver = _CreepAfterContact(world)
    contact_speeds: list[float] = []
    for _ in range(1200):
        if not world.running.any():
            break
        world.step(driver.act())
        for event in world.events:
            if event.kind == Infraction.COLLISION_VEHICLE.value:
                env, actor = event.env, event.actor
                ego = world.ego
                if geometry.boxes_touch(ego.x_m[env], ego.y_m[env], ego.yaw_rad[env], CONFIG.ego_length_m,
                                       CONFIG.ego_width_m, world.scene.actors.x_m[env, actor],
                                       world.scene.actors.y_m[env, actor], world.scene.actors.yaw_rad[env, actor],
                                       world.scene.actors.length_m[env, actor], world.scene.actors.width_m[env, actor]):
                    contact_speeds.append(float(world.scene.actors.speed_mps[env, actor]))
    crashes = [(e.env, e.actor) for e in world.events if e.kind == Infraction.COLLISION_VEHICLE.value]
    assert len(set(crashes)) >= 2, "the flow hit the ego that kept going"
    assert len(crashes) == len(set(crashes)), f"each crash counted once: {crashes}"
    assert contact_speeds and min(contact_speeds) == 0.0, "the vehicle came to a stand while touching the ego"
