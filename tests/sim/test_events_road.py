"""Road, side-hazard and obstacle events (a pedestrian from between parked cars, an open door, slow bicycles, a
blocked lane on a bend, a crossing by a junction): each situation happens, a naive driver runs into it, the expert
does not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from policies.expert import ExpertDriver, NaiveDriver
from sim.embedded.world import make_world
from sim.geometry import cumulative_length, interpolate_along, wrap_angle
from sim.metrics import Infraction
from sim.scenarios import Scenario, sample_scenario
from sim.scenarios import events as ev
from sim.scenarios.routes import read_routes, route_events
from sim.scene.records import INFRACTIONS
from tests.sim.test_events import CONFIG, MAP, ROUTES, _drive, _scenarios

#: The event of each type the pair test stages (shorter than the Leaderboard's defaults where the routes of
#: town-1 have no room for those), and the infraction it provokes in a driver that keeps going.
CASES: dict[str, tuple[Callable[[float], object], Infraction]] = {
    "ParkingCrossingPedestrian": (lambda t: ev.ParkingCrossingPedestrian(trigger_s_m=t),
                                  Infraction.COLLISION_PEDESTRIAN),
    "VehicleOpensDoorTwoWays": (lambda t: ev.VehicleOpensDoorTwoWays(trigger_s_m=t, distance_m=30.0),
                                Infraction.COLLISION_STATIC),
    "HazardAtSideLane": (lambda t: ev.HazardAtSideLane(trigger_s_m=t, distance_m=30.0,
                                                        bicycle_drive_distance_m=30.0),
                         Infraction.COLLISION_VEHICLE),
    "EnterActorFlow": (lambda t: ev.EnterActorFlow(trigger_s_m=t), Infraction.COLLISION_VEHICLE),
    "HighwayExit": (lambda t: ev.HighwayExit(trigger_s_m=t), Infraction.COLLISION_VEHICLE),
    "HighwayCutIn": (lambda t: ev.HighwayCutIn(trigger_s_m=t), Infraction.COLLISION_VEHICLE),
}

_COLLISIONS = [INFRACTIONS.index(k) for k in (Infraction.COLLISION_PEDESTRIAN, Infraction.COLLISION_VEHICLE,
                                              Infraction.COLLISION_STATIC)]


def _pair(scenarios: list[Scenario], provoked: Infraction, name: str) -> None:
    column = INFRACTIONS.index(provoked)
    naive = _drive(scenarios, NaiveDriver).infractions[:, column]
    expert_world = _drive(scenarios, ExpertDriver)
    assert (naive > 0).sum() >= 0.75 * ROUTES, f"{name}: the naive driver hit it on {(naive > 0).sum()} routes"
    assert expert_world.infractions[:, column].sum() == 0, \
        f"{name}: the expert committed {provoked.value} on {np.flatnonzero(expert_world.infractions[:, column])}"
    assert expert_world.infractions[:, _COLLISIONS].sum() == 0
    assert list(expert_world.status_names()) == ["completed"] * ROUTES


@pytest.mark.parametrize("name", sorted(CASES))
def test_naive_driver_runs_into_the_road_event_and_the_expert_does_not(name: str) -> None:
    make, provoked = CASES[name]
    _pair(_scenarios(make), provoked, name)


def _bend_scenarios(make: Callable[[float], object]) -> list[Scenario]:
    """``ROUTES`` routes from fixed seeds, each with the event at the first trigger where it stages with its place
    (``distance_m`` past the trigger) in a bend: the route passes a junction lane there and turns more than 0.3 rad
    over the 40 m around it."""
    world = make_world(MAP, 1, CONFIG)
    found = []
    for seed in range(300):
        base = sample_scenario(seed, map_name=MAP, traffic_vehicles=0)
        for trigger in np.arange(base.start_s_m + 30.0, base.end_s_m - 30.0, 5.0):
            event = make(float(trigger))
            scenario = base.model_copy(update={"events": (event,)})
            try:
                world.reset([scenario])
            except ValueError:
                continue
            at = float(trigger) + event.distance_m  # type: ignore[attr-defined]
            route = world.scene.route
            lengths = route.piece_end_m[0] - route.piece_start_m[0]
            in_junction = any(world.map.lanes[int(route.piece_lane[0, k])].is_junction
                              and route.piece_offset_m[0, k] < at + 20.0
                              and route.piece_offset_m[0, k] + lengths[k] > at - 10.0
                              for k in range(int(route.piece_n[0])))
            points = np.asarray(world.route_xy[0])
            s = cumulative_length(points)
            _, headings = interpolate_along(points[None], s[None], np.array([[at - 15.0, at + 25.0]]))
            if in_junction and abs(float(wrap_angle(headings[0, 1] - headings[0, 0]))) > 0.3:
                found.append(scenario)
                break
        if len(found) == ROUTES:
            return found
    raise AssertionError("too few routes stage the event in a bend")


#: The blocked-lane events staged in bends, and the infraction each provokes.
BLOCKED: dict[str, tuple[Callable[[float], object], Infraction]] = {
    "ParkedObstacle": (lambda t: ev.ParkedObstacle(trigger_s_m=t), Infraction.COLLISION_VEHICLE),
    "Accident": (lambda t: ev.Accident(trigger_s_m=t), Infraction.COLLISION_VEHICLE),
    "ConstructionObstacle": (lambda t: ev.ConstructionObstacle(trigger_s_m=t), Infraction.COLLISION_STATIC),
    "VehicleOpensDoorTwoWays": CASES["VehicleOpensDoorTwoWays"],
}


@pytest.mark.parametrize("name", sorted(BLOCKED))
def test_a_blocked_lane_in_a_bend_is_passed_by_the_expert_and_hit_by_the_naive_driver(name: str) -> None:
    make, provoked = BLOCKED[name]
    _pair(_bend_scenarios(make), provoked, name)


def test_a_blocked_lane_in_a_corner_does_not_stage() -> None:
    base = _bend_scenarios(lambda t: ev.Accident(trigger_s_m=t))[0]
    corners = 0
    world = make_world(MAP, 1, CONFIG)
    for trigger in np.arange(base.start_s_m + 30.0, base.end_s_m - 30.0, 2.0):
        scenario = base.model_copy(update={"events": (ev.Accident(trigger_s_m=float(trigger), name="Accident_3"),)})
        try:
            world.reset([scenario])
        except ValueError as error:
            corners += "degrees at the blocked stretch" in str(error) and "Accident 'Accident_3'" in str(error)
    assert corners > 0, "some place on the route is a corner sharper than a bend"


_ROUTE_XML = """<routes><route id="7" town="Town01"><waypoints>
<position x="0" y="0" z="0"/><position x="100" y="0" z="0"/></waypoints><scenarios>
<scenario name="ParkingCrossingPedestrian_1" type="ParkingCrossingPedestrian">
  <trigger_point x="10" y="0" z="0" yaw="0"/><distance value="15"/><direction value="left"/></scenario>
<scenario name="VehicleOpensDoorTwoWays_1" type="VehicleOpensDoorTwoWays">
  <trigger_point x="20" y="0" z="0" yaw="0"/><distance value="40"/><frequency from="40" to="90"/></scenario>
<scenario name="HazardAtSideLaneTwoWays_1" type="HazardAtSideLaneTwoWays">
  <trigger_point x="30" y="0" z="0" yaw="0"/><distance value="50"/><bicycle_drive_distance value="80"/>
  <bicycle_speed value="8"/><frequency value="100"/></scenario>
<scenario name="MergerIntoSlowTraffic_1" type="MergerIntoSlowTraffic">
  <trigger_point x="40" y="0" z="0" yaw="0"/><start_actor_flow x="1" y="2" z="0"/><end_actor_flow x="3" y="4" z="0"/>
  <flow_speed value="4"/><source_dist_interval from="10" to="25"/></scenario>
<scenario name="HighwayExit_1" type="HighwayExit">
  <trigger_point x="50" y="0" z="0" yaw="0"/><flow_speed value="9"/></scenario>
<scenario name="HighwayCutIn_1" type="HighwayCutIn">
  <trigger_point x="60" y="0" z="0" yaw="0"/><other_actor_location x="1" y="2" z="0"/></scenario>
<scenario name="EnterActorFlowV2_1" type="EnterActorFlowV2"><trigger_point x="70" y="0" z="0" yaw="0"/></scenario>
<scenario name="ControlLoss_1" type="ControlLoss"><trigger_point x="80" y="0" z="0" yaw="0"/></scenario>
<scenario name="SequentialLaneChange_1" type="SequentialLaneChange"><trigger_point x="90" y="0" z="0" yaw="0"/>
</scenario>
</scenarios></route></routes>"""


def test_a_route_file_stages_the_road_events_with_its_parameters(tmp_path: Path) -> None:
    path = tmp_path / "routes.xml"
    path.write_text(_ROUTE_XML)
    route = read_routes(path)[0]
    polyline = np.array([[x, 0.0] for x in np.arange(0.0, 101.0, 1.0)])
    events, unsupported = route_events(route, polyline)
    assert unsupported == ()
    crossing, door, bicycles, merger, exit_flow, cut_in, enter, slip, lane_change = events
    assert crossing == ev.ParkingCrossingPedestrian(trigger_s_m=10.0, name="ParkingCrossingPedestrian_1",
                                                    distance_m=15.0, direction="left")
    assert door == ev.VehicleOpensDoorTwoWays(trigger_s_m=20.0, name="VehicleOpensDoorTwoWays_1", distance_m=40.0)
    assert bicycles == ev.HazardAtSideLane(trigger_s_m=30.0, name="HazardAtSideLaneTwoWays_1", distance_m=50.0,
                                           bicycle_drive_distance_m=80.0, bicycle_speed_kmh=8.0)
    assert merger == ev.EnterActorFlow(trigger_s_m=40.0, name="MergerIntoSlowTraffic_1", flow_speed_mps=4.0,
                                       source_dist_interval_m=(10.0, 25.0))
    assert exit_flow == ev.HighwayExit(trigger_s_m=50.0, name="HighwayExit_1", flow_speed_mps=9.0)
    assert cut_in == ev.HighwayCutIn(trigger_s_m=60.0, name="HighwayCutIn_1")
    assert enter == ev.EnterActorFlow(trigger_s_m=70.0, name="EnterActorFlowV2_1")
    assert slip == ev.ControlLoss(trigger_s_m=80.0, name="ControlLoss_1")
    assert lane_change == ev.SequentialLaneChange(trigger_s_m=90.0, name="SequentialLaneChange_1")


def _near_junction_scenarios(where: str) -> list[Scenario]:
    """``ROUTES`` routes from fixed seeds with a pedestrian crossing at the first trigger where it stages with its
    crossing point ``where`` a junction: ``before`` (within 8 m of its entry), ``inside`` or ``after`` (within 8 m
    of its exit)."""
    world = make_world(MAP, 1, CONFIG)
    found = []
    for seed in range(300):
        base = sample_scenario(seed, map_name=MAP, traffic_vehicles=0)
        for trigger in np.arange(base.start_s_m + 30.0, base.end_s_m - 30.0, 3.0):
            event = ev.PedestrianCrossing(trigger_s_m=float(trigger))
            scenario = base.model_copy(update={"events": (event,)})
            try:
                world.reset([scenario])
            except ValueError:
                continue
            at = event.trigger_s_m + event.distance_m
            route = world.scene.route
            for k in range(int(route.piece_n[0])):
                if not world.map.lanes[int(route.piece_lane[0, k])].is_junction:
                    continue
                start = float(route.piece_offset_m[0, k])
                end = start + float(route.piece_end_m[0, k] - route.piece_start_m[0, k])
                if {"before": 0.0 < start - at < 8.0, "inside": start < at < end, "after": 0.0 < at - end < 8.0}[where]:
                    found.append(scenario)
                    break
            if found and found[-1] is scenario:
                break
        if len(found) == ROUTES:
            return found
    raise AssertionError(f"too few routes stage a crossing {where} a junction")


@pytest.mark.parametrize("where", ["before", "inside", "after"])
def test_a_pedestrian_crossing_by_a_junction_is_hit_by_the_naive_driver_and_not_by_the_expert(where: str) -> None:
    _pair(_near_junction_scenarios(where), Infraction.COLLISION_PEDESTRIAN, f"PedestrianCrossing {where} a junction")


def test_the_controls_slip_on_the_bad_road_and_the_expert_keeps_its_lane() -> None:
    scenarios = _scenarios(lambda t: ev.ControlLoss(trigger_s_m=t))
    plain = [s.model_copy(update={"events": ()}) for s in scenarios]
    # the same driver on the same routes, with and without the event: the ego goes where it went until the first
    # slippery stretch (14 m past the trigger, 2 m either side), and elsewhere there
    world, without = make_world(MAP, ROUTES, CONFIG), make_world(MAP, ROUTES, CONFIG)
    world.reset(scenarios)
    without.reset(plain)
    driver, plain_driver = NaiveDriver(world), NaiveDriver(without)
    first = np.array([s.events[0].trigger_s_m + 12.0 for s in scenarios])
    before_apart = after_apart = np.zeros(ROUTES, dtype=bool)
    for _ in range(400):
        world.step(driver.act())
        without.step(plain_driver.act())
        apart = np.hypot(world.ego.x_m - without.ego.x_m, world.ego.y_m - without.ego.y_m) > 1e-6
        before = world.progress_s < first
        before_apart = before_apart | (apart & before)
        after_apart = after_apart | (apart & ~before)
    assert not before_apart.any(), "nothing slips before the first stretch"
    assert after_apart.all(), "the controls slipped on every route"
    expert = _drive(scenarios, ExpertDriver)
    assert expert.infractions.sum() == 0
    assert list(expert.status_names()) == ["completed"] * ROUTES
    naive = _drive(scenarios, NaiveDriver)  # the slips are small: the naive driver keeps its lane too
    assert naive.infractions[:, INFRACTIONS.index(Infraction.OUTSIDE_ROUTE_LANES)].sum() == 0


def _lane_change_routes() -> list[Scenario]:
    """``ROUTES`` routes on town-1 that start on a lane and change to the lane beside it (running the same way),
    then drive on, with the lane-change event at their start."""
    graph = make_world(MAP, 1, CONFIG).map
    found: list[Scenario] = []
    for lane in graph.lanes:
        beside = graph.lane_changes(lane.lane_id)
        if lane.is_junction or not beside:
            continue
        route = [lane.lane_id, beside[0]]
        while len(route) < 5 and graph.lanes[route[-1]].successors:
            route.append(graph.lanes[route[-1]].successors[0])
        length = float(cumulative_length(graph.route_path(route).polyline(graph))[-1])
        found.append(Scenario(map_name=MAP, route=tuple(route), start_s_m=2.0, end_s_m=round(length - 5.0, 2),
                              traffic_vehicles=0, traffic_seed=len(found), timeout_s=round(length / 4.0 + 60.0, 1),
                              events=(ev.SequentialLaneChange(trigger_s_m=2.0),)))
        if len(found) == ROUTES:
            return found
    raise AssertionError("too few lanes with a lane beside them on " + MAP)


def test_the_expert_changes_lanes_with_its_route() -> None:
    scenarios = _lane_change_routes()
    expert = _drive(scenarios, ExpertDriver)
    assert expert.infractions.sum() == 0
    assert list(expert.status_names()) == ["completed"] * ROUTES
    naive = _drive(scenarios, NaiveDriver)  # it follows the route through the lane change too
    assert naive.infractions[:, [INFRACTIONS.index(Infraction.OUTSIDE_ROUTE_LANES), *_COLLISIONS]].sum() == 0
    assert list(naive.status_names()) == ["completed"] * ROUTES
    straight = sample_scenario(3, map_name=MAP, traffic_vehicles=0)  # successor lanes only: no lane change
    unchanged = straight.model_copy(update={"events": (ev.SequentialLaneChange(trigger_s_m=straight.start_s_m,
                                                                               name="SequentialLaneChange_1"),)})
    with pytest.raises(ValueError, match=r"SequentialLaneChange 'SequentialLaneChange_1'.*changes no lanes"):
        make_world(MAP, 1, CONFIG).reset([unchanged])
