"""The junction scenario types (the ego's turns, flows it crosses or joins, the junction's lights): each situation
happens where it stages, a naive driver runs into it, the expert does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from policies.expert import ExpertDriver, NaiveDriver
from sim.embedded.staging.junctions import find_junction
from sim.embedded.staging.route_geometry import RouteGeometry
from sim.embedded.world import make_world
from sim.metrics import Infraction
from sim.scenarios import Scenario
from sim.scenarios import events as ev
from sim.scenarios.routes import read_routes, route_events
from sim.scene import codes
from sim.scene.records import INFRACTIONS
from sim.scene.route_path import RoutePath
from tests.sim import test_events as base

COLLISIONS = [INFRACTIONS.index(k) for k in (Infraction.COLLISION_PEDESTRIAN, Infraction.COLLISION_VEHICLE,
                                             Infraction.COLLISION_STATIC)]

#: Per type: the town it is driven on (town-1 where it stages there) and the infraction it provokes in a driver
#: that keeps going.
PROVOKED = {
    "NonSignalizedJunctionRightTurn": ("town-irregular-2", Infraction.COLLISION_VEHICLE),
    "SignalizedJunctionLeftTurnEnterFlow": ("town-1", Infraction.COLLISION_VEHICLE),
    "NonSignalizedJunctionLeftTurnEnterFlow": ("town-1", Infraction.COLLISION_VEHICLE),
    "InterurbanActorFlow": ("town-1", Infraction.COLLISION_VEHICLE),
    "InterurbanAdvancedActorFlow": ("town-irregular-3", Infraction.COLLISION_VEHICLE),
    "CrossingBicycleFlow": ("town-1", Infraction.COLLISION_VEHICLE),
    "VehicleTurningRoute": ("town-1", Infraction.COLLISION_VEHICLE),
    "BlockedIntersection": ("town-1", Infraction.COLLISION_VEHICLE),
    "VanillaSignalizedTurnEncounterRedLight": ("town-1", Infraction.RED_LIGHT),
    "VanillaNonSignalizedTurnEncounterStopsign": ("town-1", Infraction.STOP_SIGN),
}
#: Types that provoke nothing (the ego should just drive on through the junction).
UNEVENTFUL = ("PriorityAtJunction", "VanillaSignalizedTurnEncounterGreenLight", "VanillaNonSignalizedTurn",
              "T_Junction")


def _on(monkeypatch: pytest.MonkeyPatch, town: str) -> None:
    """Drive :mod:`tests.sim.test_events`'s helpers on ``town``."""
    monkeypatch.setattr(base, "MAP", town)


def _pair(scenarios: list[Scenario]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    naive = base._drive(scenarios, NaiveDriver).infractions
    expert = base._drive(scenarios, ExpertDriver)
    return naive, expert.infractions, list(expert.status_names())


@pytest.mark.parametrize("name", sorted(PROVOKED))
def test_naive_driver_runs_into_the_junction_event_and_the_expert_does_not(name: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    town, provoked = PROVOKED[name]
    _on(monkeypatch, town)
    scenarios = base._scenarios(lambda t: ev.EVENT_TYPES[name](trigger_s_m=t))
    column = INFRACTIONS.index(provoked)
    naive, expert, statuses = _pair(scenarios)
    hits = int((naive[:, column] > 0).sum())
    assert hits >= 0.75 * base.ROUTES, f"{name}: the naive driver committed {provoked.value} on {hits} routes"
    assert expert[:, column].sum() == 0, f"{name}: the expert committed {provoked.value} on " \
                                         f"{np.flatnonzero(expert[:, column])}"
    assert expert[:, COLLISIONS].sum() == 0
    assert statuses == ["completed"] * base.ROUTES


@pytest.mark.parametrize("name", UNEVENTFUL)
def test_at_an_uneventful_junction_both_drive_through(name: str) -> None:
    scenarios = base._scenarios(lambda t: ev.EVENT_TYPES[name](trigger_s_m=t))
    naive, expert, statuses = _pair(scenarios)
    assert expert.sum() == 0 and statuses == ["completed"] * base.ROUTES
    assert naive[:, COLLISIONS].sum() == 0, "nothing is there to hit"


@pytest.mark.parametrize("name", ["PriorityAtJunction", "VanillaSignalizedTurnEncounterGreenLight"])
def test_the_egos_light_is_green_when_it_gets_to_the_junction(name: str) -> None:
    scenarios = base._scenarios(lambda t: ev.EVENT_TYPES[name](trigger_s_m=t))[:4]
    world = make_world(base.MAP, len(scenarios), base.CONFIG)
    world.reset(scenarios)
    turn = "any" if name == "PriorityAtJunction" else "turning"
    places = []  # (where the ego enters the junction, its light group) per route
    for env, scenario in enumerate(scenarios):
        geometry = RouteGeometry(world.placement(env), RoutePath.build(world.map, scenario.route), scenario.start_s_m)
        entry = find_junction(geometry, scenario.events[0], control="light", turn=turn)
        places.append((geometry.route.offsets[entry], world.map.lanes[geometry.route.pieces[entry - 1].lane]
                       .light_group))
    driver = NaiveDriver(world)
    seen: dict[int, int] = {}
    while world.running.any() and len(seen) < len(scenarios):
        world.step(driver.act())
        for env, (entry_s, group) in enumerate(places):
            if env not in seen and world.progress_s[env] >= entry_s:
                seen[env] = int(world.scene.lights[env, group])
    assert seen == dict.fromkeys(range(len(scenarios)), codes.GREEN), seen


def test_a_red_light_runner_takes_the_stop_sign_where_no_light_follows() -> None:
    world = make_world(base.MAP, 1, base.CONFIG)
    found = []
    for seed in range(100):
        scenario = base.sample_scenario(seed, map_name=base.MAP, traffic_vehicles=0)
        route = RoutePath.build(world.map, scenario.route)
        geometry = RouteGeometry(world.placement(0), route, scenario.start_s_m)
        for trigger in np.arange(scenario.start_s_m + 30.0, scenario.end_s_m - 30.0, 10.0):
            event = ev.OppositeVehicleRunningRedLight(trigger_s_m=float(trigger), direction="right")
            try:
                find_junction(geometry, event, control="light")
                continue
            except ValueError:
                pass
            staged = scenario.model_copy(update={"events": (event,)})
            try:
                world.reset([staged])
            except ValueError:
                continue
            found.append(staged)
            break
        if len(found) == 4:
            break
    assert len(found) == 4, "routes with no signalized junction after the trigger take the event"
    naive, expert, statuses = _pair(found)
    column = INFRACTIONS.index(Infraction.COLLISION_VEHICLE)
    assert (naive[:, column] > 0).sum() >= 3
    assert expert[:, COLLISIONS].sum() == 0 and statuses == ["completed"] * 4


_ROUTE = """<routes><route id="3" town="Town12">
  <waypoints><position x="0" y="0" z="0"/><position x="200" y="0" z="0"/></waypoints>
  <scenarios>
    <scenario name="InterurbanAdvancedActorFlow_1" type="InterurbanAdvancedActorFlow">
      <trigger_point x="20" y="0" z="0" yaw="0"/><start_actor_flow x="1" y="2" z="0"/>
      <flow_speed value="12"/><source_dist_interval from="25" to="40"/></scenario>
    <scenario name="CrossingBicycleFlow_1" type="CrossingBicycleFlow">
      <trigger_point x="60" y="0" z="0" yaw="0"/><flow_speed value="5"/></scenario>
    <scenario name="VanillaNonSignalizedTurnEncounterStopsignLong_1"
              type="VanillaNonSignalizedTurnEncounterStopsignLong"><trigger_point x="90" y="0" z="0"/></scenario>
    <scenario name="T_Junction_1" type="T_Junction"><trigger_point x="120" y="0" z="0"/></scenario>
  </scenarios></route></routes>"""


def test_route_files_give_the_junction_types_with_their_parameters(tmp_path: Path) -> None:
    path = tmp_path / "routes.xml"
    path.write_text(_ROUTE)
    route = read_routes(path)[0]
    events, unsupported = route_events(route, route.waypoints)
    assert unsupported == ()
    flow, bicycles, stop, tee = events
    assert isinstance(flow, ev.InterurbanAdvancedActorFlow) and flow.name == "InterurbanAdvancedActorFlow_1"
    assert (flow.trigger_s_m, flow.flow_speed_mps, flow.source_dist_interval_m) == (20.0, 12.0, (25.0, 40.0))
    assert isinstance(bicycles, ev.CrossingBicycleFlow)
    assert (bicycles.flow_speed_mps, bicycles.source_dist_interval_m) == (5.0, (20.0, 50.0))  # (the default)
    assert isinstance(stop, ev.VanillaNonSignalizedTurnEncounterStopsign)  # the Long variant: the same situation
    assert isinstance(tee, ev.T_Junction) and tee.trigger_s_m == 120.0


def test_the_red_light_turns_green_for_the_ego_after_its_time() -> None:
    scenarios = base._scenarios(lambda t: ev.VanillaSignalizedTurnEncounterRedLight(trigger_s_m=t))[:4]
    world = make_world(base.MAP, len(scenarios), base.CONFIG)
    world.reset(scenarios)
    st, sc = world.state, world.scene
    ego_groups = []
    for env, scenario in enumerate(scenarios):
        geometry = RouteGeometry(world.placement(env), RoutePath.build(world.map, scenario.route), scenario.start_s_m)
        entry = find_junction(geometry, scenario.events[0], control="light", turn="turning")
        ego_groups.append(world.map.lanes[geometry.route.pieces[entry - 1].lane].light_group)
    held = [np.flatnonzero(st.program.force[env] >= 0) for env in range(len(scenarios))]
    driver = ExpertDriver(world)
    red_s = scenarios[0].events[0].red_s  # type: ignore[union-attr]
    seen: dict[int, list[tuple[float, int, bool]]] = {env: [] for env in range(len(scenarios))}
    done = np.zeros(len(scenarios), dtype=bool)
    while world.running.any() and not done.all():
        world.step(driver.act())
        for env, group in enumerate(ego_groups):
            until = float(st.program.force_until_s[env])  # (-inf until the trigger)
            done[env] = np.isfinite(until) and float(sc.time_s[env]) >= until + 5.0
            since = float(sc.time_s[env]) - (float(st.program.force_until_s[env]) - red_s)
            if np.isfinite(since) and since < red_s + 5.0:
                others_red = bool(np.all(sc.lights[env, [g for g in held[env] if g != group]] == codes.RED))
                seen[env].append((since, int(sc.lights[env, group]), others_red))
    for env, samples in seen.items():
        assert samples, f"route {env}: the lights were never held"
        assert all(light == codes.RED and red for t, light, red in samples if t < red_s), env
        assert all(light == codes.GREEN and red for t, light, red in samples if t >= red_s), env
