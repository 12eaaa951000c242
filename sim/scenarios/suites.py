"""Scenario suites: named, versioned sets of scenarios with fixed seeds, identified by a content hash.

- ``smoke`` — a handful of short routes on ``town-1``, one per event family, for tests (seconds).
- ``train`` — routes on procedural towns ``town-<seed>`` (seeds 1..8999), every event type drawn at random,
  background traffic and pedestrians.
- ``eval`` — held-out towns (seeds from 9001 on, grid and irregular layouts too, never used by ``train``): every
  event type ``per_type`` times (on the next town when one has no place for it), plus plain routes through
  signalized and unsignalized junctions; at least 100 routes by default.
- ``carla-towns`` — CARLA Leaderboard routes on imported CARLA towns (:func:`leaderboard_suite`): the routes of
  the route files under the data root (``carla/routes/``) on Town01 and Town04, the maps we have (routes on other
  towns are skipped), each cut to its leading waypoints within ``CARLA_ROUTE_M`` of driving, with the route
  file's scenarios as events where we stage them and background traffic and pedestrians as in ``eval``.

An event goes where it stages on its route: the generator draws a route, then tries triggers along it (from the
start, every 10 m) until the world accepts the event (:mod:`sim.embedded.staging` refuses places that don't fit,
such as a crossing inside a junction or a blocked lane with no lane to pass on). Generation is deterministic:
the same name, version and arguments give the same suite, hence the same hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from sim.embedded.config import WorldConfig
from sim.embedded.world import World, make_world
from sim.maps import data_root, get_map
from sim.scenarios import events as ev
from sim.scenarios.model import Scenario, light_cycle_s, route_timeout_s, sample_scenario
from sim.scenarios.routes import (
    OFF_MAP_M,
    RouteScenario,
    RouteSpec,
    densify,
    lane_route,
    project_onto,
    read_routes,
    route_events,
)

#: Suite generator version: bump it when a generator changes what it produces.
SUITE_VERSION = 3
#: Slots the events of one scenario may need beyond its background traffic.
EVENT_VEHICLES, EVENT_PEDESTRIANS = 4, 1
#: Extra time a route with an event gets (waiting for pedestrians, passing obstacles).
EVENT_TIME_S = 30.0


@dataclass(frozen=True)
class Suite:
    """A named, versioned list of scenarios, and what of their sources was left out.

    :param unsupported: per scenario index, the route file's scenarios of types we do not stage, as
        ``"name (type)"``.
    :param unstaged: per scenario index, the route file's scenarios of types we stage that did not stage on this
        route, as ``"name (type): why"``.
    :param skipped: routes of the route files left out, as ``"file: route id: why"``.
    :param regression: indices of the routes that are regression routes (a data engine's: routes a champion once
        failed, kept so that every candidate drives them).
    """

    name: str
    version: int
    scenarios: tuple[Scenario, ...]
    unsupported: Mapping[int, tuple[str, ...]] = field(default_factory=dict, hash=False)
    unstaged: Mapping[int, tuple[str, ...]] = field(default_factory=dict, hash=False)
    skipped: tuple[str, ...] = ()
    regression: tuple[int, ...] = ()

    @property
    def content_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the suite's name, version and scenarios, canonically serialized."""
        payload = json.dumps({"name": self.name, "version": self.version,
                              "scenarios": [s.model_dump(mode="json") for s in self.scenarios]},
                             sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def world_config(self) -> WorldConfig:
        """Slots enough for every scenario of the suite (:func:`scenario_slots`)."""
        return scenario_slots(self.scenarios)

    def by_map(self) -> dict[str, list[int]]:
        """Indices of the scenarios on each map (a world runs one map)."""
        groups: dict[str, list[int]] = {}
        for index, scenario in enumerate(self.scenarios):
            groups.setdefault(scenario.map_name, []).append(index)
        return groups

    def event_type(self, index: int) -> str:
        """The scenario's event type, or ``"Route"`` for a plain route."""
        events = self.scenarios[index].events
        return events[0].type if events else "Route"


def scenario_slots(scenarios: Sequence[Scenario]) -> WorldConfig:
    """A world with slots for every scenario of ``scenarios``: its background traffic plus ``EVENT_VEHICLES`` and
    ``EVENT_PEDESTRIANS`` for its events, and every actor its log replays place (reactive vehicles and cyclists
    in vehicle slots, pedestrians in pedestrian slots, static and other objects in static slots; every actor of a
    non-reactive replay follows its track in a static slot)."""
    default = WorldConfig()
    vehicles, pedestrians, statics, track_points = 1, 1, default.max_statics, 0
    for scenario in scenarios:
        counts = {"vehicle": 0, "pedestrian": 0, "static": 0}
        for event in scenario.events:
            if not isinstance(event, ev.LogReplay):
                continue
            for actor in event.actors:
                if event.reactive:
                    counts[{"cyclist": "vehicle", "other": "static"}.get(actor.kind, actor.kind)] += 1
                else:
                    counts["static"] += 1
                    track_points = max(track_points, len(actor.track), 2)
        replay = any(isinstance(event, ev.LogReplay) for event in scenario.events)
        events = 0 if replay and len(scenario.events) == 1 else 1
        vehicles = max(vehicles, scenario.traffic_vehicles + events * EVENT_VEHICLES + counts["vehicle"])
        pedestrians = max(pedestrians, scenario.pedestrians + events * EVENT_PEDESTRIANS + counts["pedestrian"])
        statics = max(statics, counts["static"])
    return WorldConfig(max_vehicles=vehicles, max_pedestrians=pedestrians, max_statics=statics,
                       track_points=track_points)


EventMaker = Callable[[float, np.random.Generator], ev.ScenarioEvent]


def _side(rng: np.random.Generator) -> ev.Side:
    return "left" if rng.random() < 0.5 else "right"


def _flow(kind: Callable[..., ev.ScenarioEvent], low_mps: float, high_mps: float) -> EventMaker:
    """A flow event whose vehicles drive at a speed drawn from ``low_mps..high_mps``."""
    return lambda t, rng: kind(trigger_s_m=t, flow_speed_mps=round(float(rng.uniform(low_mps, high_mps)), 1))


#: How each staged event type is drawn (trigger, random parameters).
MAKERS: dict[str, EventMaker] = {
    "PedestrianCrossing": lambda t, rng: ev.PedestrianCrossing(
        trigger_s_m=t, direction=_side(rng), speed_mps=round(float(rng.uniform(1.1, 1.8)), 2)),
    "DynamicObjectCrossing": lambda t, rng: ev.DynamicObjectCrossing(
        trigger_s_m=t, direction=_side(rng), speed_mps=round(float(rng.uniform(1.6, 2.6)), 2)),
    "VehicleTurningRoutePedestrian": lambda t, rng: ev.VehicleTurningRoutePedestrian(trigger_s_m=t),
    "HardBreakRoute": lambda t, rng: ev.HardBreakRoute(
        trigger_s_m=t, distance_m=round(float(rng.uniform(15.0, 30.0)), 1),
        decel_mps2=round(float(rng.uniform(5.0, 8.0)), 1)),
    "OppositeVehicleRunningRedLight": lambda t, rng: ev.OppositeVehicleRunningRedLight(
        trigger_s_m=t, direction=_side(rng)),
    "OppositeVehicleTakingPriority": lambda t, rng: ev.OppositeVehicleTakingPriority(
        trigger_s_m=t, direction=_side(rng)),
    "ParkingCutIn": lambda t, rng: ev.ParkingCutIn(trigger_s_m=t, direction="right",
                                                   speed_mps=round(float(rng.uniform(4.0, 7.0)), 1)),
    "ParkedObstacle": lambda t, rng: ev.ParkedObstacle(trigger_s_m=t),
    "Accident": lambda t, rng: ev.Accident(trigger_s_m=t),
    "ConstructionObstacle": lambda t, rng: ev.ConstructionObstacle(trigger_s_m=t),
    "StaticCutIn": lambda t, rng: ev.StaticCutIn(trigger_s_m=t, direction=_side(rng),
                                                 speed_mps=round(float(rng.uniform(4.0, 6.0)), 1)),
    "ParkingCrossingPedestrian": lambda t, rng: ev.ParkingCrossingPedestrian(
        trigger_s_m=t, distance_m=round(float(rng.uniform(10.0, 15.0)), 1)),
    "VehicleOpensDoorTwoWays": lambda t, rng: ev.VehicleOpensDoorTwoWays(
        trigger_s_m=t, distance_m=round(float(rng.uniform(25.0, 50.0)), 1)),
    "HazardAtSideLane": lambda t, rng: ev.HazardAtSideLane(
        trigger_s_m=t, distance_m=round(float(rng.uniform(30.0, 60.0)), 1),
        bicycle_speed_kmh=round(float(rng.uniform(8.0, 12.0)), 1),
        bicycle_drive_distance_m=round(float(rng.uniform(30.0, 60.0)), 1)),
    "EnterActorFlow": lambda t, rng: ev.EnterActorFlow(
        trigger_s_m=t, flow_speed_mps=round(float(rng.uniform(6.0, 10.0)), 1), flow_vehicles=int(rng.integers(3, 5))),
    "HighwayExit": lambda t, rng: ev.HighwayExit(
        trigger_s_m=t, flow_speed_mps=round(float(rng.uniform(8.0, 10.0)), 1), flow_vehicles=int(rng.integers(3, 5))),
    "HighwayCutIn": lambda t, rng: ev.HighwayCutIn(trigger_s_m=t, speed_mps=round(float(rng.uniform(6.0, 9.0)), 1)),
    "ControlLoss": lambda t, rng: ev.ControlLoss(trigger_s_m=t),
    "SignalizedJunctionLeftTurn": _flow(ev.SignalizedJunctionLeftTurn, 7.0, 9.0),
    "SignalizedJunctionRightTurn": _flow(ev.SignalizedJunctionRightTurn, 7.0, 9.0),
    "NonSignalizedJunctionLeftTurn": _flow(ev.NonSignalizedJunctionLeftTurn, 7.0, 9.0),
    "NonSignalizedJunctionRightTurn": _flow(ev.NonSignalizedJunctionRightTurn, 7.0, 9.0),
    "SignalizedJunctionLeftTurnEnterFlow": _flow(ev.SignalizedJunctionLeftTurnEnterFlow, 7.0, 9.0),
    "NonSignalizedJunctionLeftTurnEnterFlow": _flow(ev.NonSignalizedJunctionLeftTurnEnterFlow, 7.0, 9.0),
    "InterurbanActorFlow": _flow(ev.InterurbanActorFlow, 8.0, 12.0),
    "InterurbanAdvancedActorFlow": _flow(ev.InterurbanAdvancedActorFlow, 8.0, 12.0),
    "CrossingBicycleFlow": _flow(ev.CrossingBicycleFlow, 4.0, 10.0),
    "VehicleTurningRoute": lambda t, rng: ev.VehicleTurningRoute(
        trigger_s_m=t, speed_mps=round(float(rng.uniform(1.5, 3.0)), 2)),
    "BlockedIntersection": lambda t, rng: ev.BlockedIntersection(
        trigger_s_m=t, stop_s=round(float(rng.uniform(5.0, 15.0)), 1)),
    "PriorityAtJunction": lambda t, rng: ev.PriorityAtJunction(trigger_s_m=t),
    "VanillaSignalizedTurnEncounterGreenLight": lambda t, rng: ev.VanillaSignalizedTurnEncounterGreenLight(
        trigger_s_m=t),
    "VanillaSignalizedTurnEncounterRedLight": lambda t, rng: ev.VanillaSignalizedTurnEncounterRedLight(trigger_s_m=t),
    "VanillaNonSignalizedTurn": lambda t, rng: ev.VanillaNonSignalizedTurn(trigger_s_m=t),
    "VanillaNonSignalizedTurnEncounterStopsign": lambda t, rng: ev.VanillaNonSignalizedTurnEncounterStopsign(
        trigger_s_m=t),
    "T_Junction": lambda t, rng: ev.T_Junction(trigger_s_m=t),
    "YieldToEmergencyVehicle": lambda t, rng: ev.YieldToEmergencyVehicle(
        trigger_s_m=t, speed_mps=round(float(rng.uniform(12.0, 15.0)), 1)),
    "InvadingTurn": lambda t, rng: ev.InvadingTurn(trigger_s_m=t, offset=round(float(rng.uniform(0.6, 1.0)), 2)),
    "ParkingExit": lambda t, rng: ev.ParkingExit(trigger_s_m=t, flow_speed_mps=round(float(rng.uniform(7.0, 9.0)), 1)),
    "CurbsidePickup": lambda t, rng: ev.CurbsidePickup(trigger_s_m=t, dwell_s=round(float(rng.uniform(3.0, 8.0)), 1)),
    "CurbsideDropoff": lambda t, rng: ev.CurbsideDropoff(trigger_s_m=t,
                                                         dwell_s=round(float(rng.uniform(2.0, 5.0)), 1)),
}


@cache
def _probe(map_name: str, vehicles: int, pedestrians: int) -> World:
    """A one-scenario world to check where events stage."""
    return make_world(map_name, 1, WorldConfig(max_vehicles=vehicles + EVENT_VEHICLES,
                                               max_pedestrians=pedestrians + EVENT_PEDESTRIANS))


def route_with_event(map_name: str, seed: int, kind: str | None, *, traffic_vehicles: int, pedestrians: int,
                     route_length_m: tuple[float, float] = (200.0, 400.0), attempts: int = 20) -> Scenario:
    """A scenario from ``seed`` on ``map_name`` with one event of type ``kind`` (``None``: a plain route), at
    the first trigger along a drawn route where it stages.

    :raises ValueError: when no route of ``attempts`` draws takes the event.
    """
    rng = np.random.default_rng([seed, 7])
    world = _probe(map_name, traffic_vehicles, pedestrians)
    for attempt in range(attempts):
        base = sample_scenario(seed * 1000 + attempt, map_name=map_name, traffic_vehicles=traffic_vehicles,
                               pedestrians=pedestrians, route_length_m=route_length_m)
        if kind is None:
            return base
        for trigger in np.arange(base.start_s_m + 20.0, base.end_s_m - 30.0, 10.0):
            event = MAKERS[kind](round(float(trigger), 2), rng)
            scenario = base.model_copy(update={"events": (event,),
                                               "timeout_s": round(base.timeout_s + EVENT_TIME_S, 1)})
            try:
                world.reset([scenario])
            except ValueError:
                continue
            return scenario
    raise ValueError(f"no route on {map_name!r} from seed {seed} takes a {kind} event ({attempts} routes tried)")


#: The suites :func:`build_suite` knows.
SUITE_NAMES = ("smoke", "train", "eval", "carla-towns")


def build_suite(name: str, *, routes: int | None = None, per_type: int = 6, seed: int = 0) -> Suite:
    """Generate a named suite (see the module docstring).

    :param routes: ``train``: how many routes (default 64); ``smoke``: at most this many; ``carla-towns``: at
        most this many per town (default 20).
    :param per_type: ``eval``: routes per event type.
    :param seed: ``train``: which draw.
    :raises ValueError: for an unknown name, or when the data ``carla-towns`` reads is not under the data root.
    """
    if name == "smoke":
        kinds: Sequence[str | None] = ("PedestrianCrossing", "HardBreakRoute", "OppositeVehicleTakingPriority",
                                       "ParkedObstacle", None)
        scenarios = [route_with_event("town-1", 100 + i, kind, traffic_vehicles=4, pedestrians=2,
                                      route_length_m=(120.0, 180.0)) for i, kind in enumerate(kinds)]
        return Suite("smoke", SUITE_VERSION, tuple(scenarios[:routes]))
    if name == "train":
        rng = np.random.default_rng([seed, 11])
        options: list[str | None] = [*MAKERS, None]
        scenarios = []
        for i in range(64 if routes is None else routes):
            town = f"town-{int(rng.integers(1, 9000))}"
            kind = options[int(rng.integers(len(options)))]
            scenarios.append(town_scenario(town, 10_000 * seed + i, kind, traffic_vehicles=int(rng.integers(6, 16)),
                                           pedestrians=int(rng.integers(0, 8))))
        return Suite("train", SUITE_VERSION, tuple(scenarios))
    if name == "eval":
        return _eval_suite(per_type)
    if name == "carla-towns":
        root = data_root()
        files = [root / file for file in CARLA_ROUTE_FILES]
        needed = files + [root / _town_file(town) for town in CARLA_TOWNS]
        missing = [str(path) for path in needed if not path.is_file()]
        if missing:
            raise ValueError(f"suite 'carla-towns' reads CARLA maps and Leaderboard routes under the data root {root} "
                             f"($AUTOLOOP_DATA, else shared/data beside the repository); missing: "
                             f"{', '.join(missing)}")
        return leaderboard_suite("carla-towns", files, routes_per_town=20 if routes is None else routes)
    raise ValueError(f"unknown suite {name!r}; known: {', '.join(SUITE_NAMES)}")


@cache
def _eval_suite(per_type: int) -> Suite:
    """``eval``, generated once per process (a few hundred routes, each placed where its event stages)."""
    return Suite("eval", SUITE_VERSION, tuple(eval_route(index, per_type) for index in
                                              range(len(_eval_kinds(per_type)))))


#: ``eval``'s towns (held out: training towns have seeds below 9000).
EVAL_TOWNS = ("town-9001", "town-grid-9002", "town-irregular-9003")
#: Town layouts (the prefix of a procedural town's name): where a route runs, as failures are counted by place.
TOWN_LAYOUTS = ("town", "town-grid", "town-irregular")
#: Procedural towns with seeds from here on are held out for evaluation.
HELD_OUT_TOWN_SEED = 9000


def _eval_kinds(per_type: int) -> list[str | None]:
    """The event type of each ``eval`` route, in suite order."""
    kinds: list[str | None] = []
    for kind in [*MAKERS, None]:
        kinds += [kind] * (per_type if kind is not None else max(100 - per_type * len(MAKERS), 2 * per_type))
    return kinds


def eval_route(index: int, per_type: int = 6) -> Scenario:
    """Route ``index`` of the ``eval`` suite (generated alone, as the suite generates it)."""
    kinds = _eval_kinds(per_type)
    if not 0 <= index < len(kinds):
        raise ValueError(f"eval route {index}: the suite has routes 0..{len(kinds) - 1}")
    first = index % len(EVAL_TOWNS)
    return _generate(EVAL_TOWNS[first:] + EVAL_TOWNS[:first], 90_000 + index, kinds[index], traffic_vehicles=12,
                     pedestrians=6)


def eval_slice(routes: int, per_type: int = 6) -> Suite:
    """A fixed held-out slice of ``eval``: ``routes`` of its routes taken a type at a time, as the suite
    ``eval-slice-<routes>``. Round ``r`` takes one route of each event type (and of plain routes), the ``k``-th type
    its route ``(r + k) mod n`` of ``n``, so that a short slice spreads over the towns too."""
    kinds = _eval_kinds(per_type)
    by_kind: dict[str | None, list[int]] = {}
    for index, kind in enumerate(kinds):
        by_kind.setdefault(kind, []).append(index)
    groups = list(by_kind.values())
    order = [group[(rank + k) % len(group)] for rank in range(max(len(g) for g in groups))
             for k, group in enumerate(groups) if rank < len(group)]
    if not 1 <= routes <= len(order):
        raise ValueError(f"an eval slice takes 1..{len(order)} routes, not {routes}")
    return Suite(f"eval-slice-{routes}", SUITE_VERSION, tuple(eval_route(i, per_type) for i in order[:routes]))


def town_layout(map_name: str) -> str:
    """The layout family of a procedural town (``town``, ``town-grid``, ``town-irregular``); other maps are their
    own place (their name)."""
    head, _, seed = map_name.rpartition("-")
    return head if head in TOWN_LAYOUTS and seed.isdigit() else map_name


def town_scenario(town: str, seed: int, kind: str | None, *, traffic_vehicles: int, pedestrians: int) -> Scenario:
    """A route on the procedural town ``town`` (``<layout>-<seed>``) with one event of type ``kind`` (``None``: a
    plain route), from ``seed``; when that town takes no such event, on the next towns of the same layout (seeds
    977 apart below ``HELD_OUT_TOWN_SEED``, so a training route never lands on a held-out town)."""
    layout, _, number = town.rpartition("-")
    base = int(number)
    candidates = [town] + [f"{layout}-{(base + 977 * k) % (HELD_OUT_TOWN_SEED - 1) + 1}" for k in range(1, 8)]
    return _generate(candidates, seed, kind, traffic_vehicles=traffic_vehicles, pedestrians=pedestrians)


def _generate(maps: Sequence[str], seed: int, kind: str | None, *, traffic_vehicles: int,
              pedestrians: int) -> Scenario:
    """Like :func:`route_with_event` on the first of ``maps``, moving on to the next seeds when a route takes no
    such event, and to the next map when none does (a town may lack, say, a signalized junction where a straight
    flow from the left meets a right turn)."""
    for map_name in maps:
        for offset in range(3):
            try:
                return route_with_event(map_name, seed + 100_000 * offset, kind, traffic_vehicles=traffic_vehicles,
                                        pedestrians=pedestrians)
            except ValueError:
                continue
    raise ValueError(f"none of {list(maps)} takes a {kind} event on any route tried")


#: ``carla-towns``: Leaderboard route files (relative to the data root) and the CARLA towns we have maps for.
CARLA_ROUTE_FILES = ("carla/routes/lb1_routes_training.xml", "carla/routes/lb2_routes_devtest.xml")
CARLA_TOWNS = ("Town01", "Town04")
#: ``carla-towns``: a route keeps its leading waypoints within this much driving (at least its first two).
CARLA_ROUTE_M = 500.0
#: Traffic seeds of ``carla-towns`` routes: this plus the route's position in the route files (all towns).
CARLA_SEED = 70_000


def _town_file(town: str) -> str:
    return f"carla/maps/{town}.xodr"


def leaderboard_suite(name: str, route_files: Sequence[Path], *, towns: Sequence[str] = CARLA_TOWNS,
                      routes_per_town: int = 20, route_m: float = CARLA_ROUTE_M, traffic_vehicles: int = 12,
                      pedestrians: int = 6) -> Suite:
    """Leaderboard routes on CARLA towns as a suite.

    The first ``routes_per_town`` routes of each town in ``towns`` (in file order; routes on other towns are left
    out) go on the map ``opendrive:carla/maps/<town>.xodr``. Each keeps its leading waypoints within ``route_m``
    of driving, densified onto the lane graph (:func:`sim.scenarios.routes.densify`; the waypoints are kept on
    the scenario). Its ``<scenarios>`` become events (:func:`sim.scenarios.routes.route_events`) one by one in
    trigger order, each kept when the embedded world stages it with the ones before; the others are listed in
    :attr:`Suite.unsupported` (types we do not stage) and :attr:`Suite.unstaged` (with the reason, such as a
    trigger farther than ``OFF_MAP_M`` from the route as cut, or beyond its ends). A route that cannot be
    densified or that the world cannot start goes to :attr:`Suite.skipped`. Traffic seeds are ``CARLA_SEED``
    plus the route's position in the route files (a route keeps its seed whatever ``routes_per_town``); the
    timeout is :func:`~sim.scenarios.model.route_timeout_s` plus ``EVENT_TIME_S`` per event.

    :raises ValueError: naming the file and route when a route file or a scenario's parameter is malformed.
    """
    scenarios: list[Scenario] = []
    unsupported: dict[int, tuple[str, ...]] = {}
    unstaged: dict[int, tuple[str, ...]] = {}
    skipped: list[str] = []
    taken = dict.fromkeys(towns, 0)
    for position, spec in enumerate(route for file in route_files for route in read_routes(file)):
        if spec.town not in taken or taken[spec.town] >= routes_per_town:
            continue
        taken[spec.town] += 1
        map_name = f"opendrive:{_town_file(spec.town)}"
        index = len(scenarios)
        try:
            base, events, left_out = _leaderboard_route(map_name, spec, route_m, CARLA_SEED + position,
                                                        traffic_vehicles, pedestrians)
        except ValueError as error:
            skipped.append(f"{spec.source.name}: route {spec.route_id}: {error}")
            continue
        scenario, refused = _stage(base, events, traffic_vehicles, pedestrians)
        scenarios.append(scenario)
        if left_out[0]:
            unsupported[index] = left_out[0]
        if left_out[1] + refused:
            unstaged[index] = left_out[1] + refused
    if not scenarios:
        raise ValueError(f"no route of {', '.join(str(f) for f in route_files)} on {', '.join(towns)} "
                         f"could be used: {'; '.join(skipped) or 'none on these towns'}")
    return Suite(name, SUITE_VERSION, tuple(scenarios), unsupported, unstaged, tuple(skipped))


def _leaderboard_route(map_name: str, spec: RouteSpec, route_m: float, seed: int, traffic_vehicles: int,
                       pedestrians: int) -> tuple[Scenario, tuple[ev.ScenarioEvent, ...],
                                                  tuple[tuple[str, ...], tuple[str, ...]]]:
    """The route's leading stretch as a scenario without events, the events its scenarios on that stretch make,
    and its scenarios left out: (of types we do not stage, elsewhere on the route with the reason).

    :raises ValueError: when the route cannot be densified or the world cannot start it.
    """
    graph = get_map(map_name)
    chords = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(spec.waypoints, axis=0), axis=1))])
    count = max(int(np.sum(chords <= route_m)), 2)  # driving is at least as long as the chords
    while True:
        leading = dataclasses.replace(spec, waypoints=spec.waypoints[:count],
                                      headings=None if spec.headings is None else spec.headings[:count])
        lanes, start, end = lane_route(graph, densify(graph, leading))
        if end - start <= route_m or count == 2:
            break
        count -= 1
    rng = np.random.default_rng([seed, 13])
    base = Scenario(
        map_name=map_name, route=lanes, start_s_m=round(start, 2), end_s_m=round(end, 2),
        traffic_vehicles=traffic_vehicles, pedestrians=pedestrians, traffic_seed=seed,
        light_offset_s=round(float(rng.uniform(0.0, light_cycle_s(graph))), 2),
        timeout_s=route_timeout_s(graph, lanes, end - start),
        waypoints=tuple((float(x), float(y)) for x, y in leading.waypoints))
    _probe(map_name, traffic_vehicles, pedestrians).reset([base])
    polyline = graph.route_path(lanes).polyline(graph)
    on_route: list[RouteScenario] = []
    off_route: list[RouteScenario] = []
    for scenario in spec.scenarios:
        along_m, off_m = project_onto(polyline, scenario.trigger_xy)
        kept = off_m <= OFF_MAP_M and base.start_s_m <= along_m <= base.end_s_m
        (on_route if kept else off_route).append(scenario)
    events, unsupported = route_events(dataclasses.replace(leading, scenarios=tuple(on_route)), polyline)
    elsewhere, unsupported_elsewhere = route_events(dataclasses.replace(leading, scenarios=tuple(off_route)),
                                                    polyline)
    not_on = tuple(f"{e.name} ({e.type}): its trigger is not on the {end - start:.0f} m of the route kept"
                      for e in elsewhere)
    return base, events, (unsupported + unsupported_elsewhere, not_on)


def _stage(base: Scenario, events: Sequence[ev.ScenarioEvent], traffic_vehicles: int,
           pedestrians: int) -> tuple[Scenario, tuple[str, ...]]:
    """``base`` with each of ``events`` (in trigger order) that stages with the ones kept before it, and the
    others as ``"name (type): why"``."""
    world = _probe(base.map_name, traffic_vehicles, pedestrians)
    scenario, refused = base, []
    for event in sorted(events, key=lambda e: e.trigger_s_m):
        kept = (*scenario.events, event)
        candidate = base.model_copy(update={"events": kept,
                                            "timeout_s": round(base.timeout_s + EVENT_TIME_S * len(kept), 1)})
        try:
            world.reset([candidate])
        except ValueError as error:
            refused.append(f"{event.name} ({event.type}): {error}")
            continue
        scenario = candidate
    return scenario, tuple(refused)
