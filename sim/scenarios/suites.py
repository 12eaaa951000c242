"""Scenario suites: named, versioned sets of scenarios with fixed seeds, identified by a content hash.

- ``smoke`` — a handful of short routes on ``town-1``, one per event family, for tests (seconds).
- ``train`` — routes on procedural towns ``town-<seed>`` (seeds 1..8999), every event type drawn at random,
  background traffic and pedestrians.
- ``eval`` — held-out towns (seeds from 9001 on, grid and irregular layouts too, never used by ``train``): every
  event type ``per_type`` times (on the next town when one has no place for it), plus plain routes through
  signalized and unsignalized junctions; at least 100 routes by default.

An event goes where it stages on its route: the generator draws a route, then tries triggers along it (from the
start, every 10 m) until the world accepts the event (:mod:`sim.embedded.staging` refuses places that don't fit,
such as a crossing inside a junction or a blocked lane with no lane to pass on). Generation is deterministic:
the same name, version and arguments give the same suite, hence the same hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from sim.embedded.world import World, WorldConfig, make_world
from sim.scenarios import events as ev
from sim.scenarios.model import Scenario, sample_scenario

#: Suite generator version: bump it when a generator changes what it produces.
SUITE_VERSION = 2
#: Slots the events of one scenario may need beyond its background traffic.
EVENT_VEHICLES, EVENT_PEDESTRIANS = 4, 1
#: Extra time a route with an event gets (waiting for pedestrians, passing obstacles).
EVENT_TIME_S = 30.0


@dataclass(frozen=True)
class Suite:
    """A named, versioned list of scenarios."""

    name: str
    version: int
    scenarios: tuple[Scenario, ...]

    @property
    def content_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the suite's name, version and scenarios, canonically serialized."""
        payload = json.dumps({"name": self.name, "version": self.version,
                              "scenarios": [s.model_dump(mode="json") for s in self.scenarios]},
                             sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def world_config(self) -> WorldConfig:
        """Slots enough for every scenario of the suite (background traffic plus its events)."""
        return WorldConfig(
            max_vehicles=max(s.traffic_vehicles for s in self.scenarios) + EVENT_VEHICLES,
            max_pedestrians=max(s.pedestrians for s in self.scenarios) + EVENT_PEDESTRIANS)

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


EventMaker = Callable[[float, np.random.Generator], ev.ScenarioEvent]


def _side(rng: np.random.Generator) -> ev.Side:
    return "left" if rng.random() < 0.5 else "right"


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
    "SignalizedJunctionLeftTurn": lambda t, rng: ev.SignalizedJunctionLeftTurn(
        trigger_s_m=t, flow_speed_mps=round(float(rng.uniform(7.0, 9.0)), 1)),
    "SignalizedJunctionRightTurn": lambda t, rng: ev.SignalizedJunctionRightTurn(
        trigger_s_m=t, flow_speed_mps=round(float(rng.uniform(7.0, 9.0)), 1)),
    "NonSignalizedJunctionLeftTurn": lambda t, rng: ev.NonSignalizedJunctionLeftTurn(
        trigger_s_m=t, flow_speed_mps=round(float(rng.uniform(7.0, 9.0)), 1)),
    "YieldToEmergencyVehicle": lambda t, rng: ev.YieldToEmergencyVehicle(
        trigger_s_m=t, speed_mps=round(float(rng.uniform(12.0, 15.0)), 1)),
    "InvadingTurn": lambda t, rng: ev.InvadingTurn(trigger_s_m=t, offset=round(float(rng.uniform(0.25, 0.35)), 2)),
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


def build_suite(name: str, *, routes: int | None = None, per_type: int = 6, seed: int = 0) -> Suite:
    """Generate a named suite (see the module docstring).

    :param routes: ``train``: how many routes (default 64); ``smoke``: at most this many.
    :param per_type: ``eval``: routes per event type.
    :param seed: ``train``: which draw.
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
            town = int(rng.integers(1, 9000))
            kind = options[int(rng.integers(len(options)))]
            candidates = [f"town-{town}"] + [f"town-{(town * 7919 + k) % 8999 + 1}" for k in range(1, 4)]
            scenarios.append(_generate(candidates, 10_000 * seed + i, kind, traffic_vehicles=int(rng.integers(6, 16)),
                                       pedestrians=int(rng.integers(0, 8))))
        return Suite("train", SUITE_VERSION, tuple(scenarios))
    if name == "eval":
        towns = ("town-9001", "town-grid-9002", "town-irregular-9003")
        scenarios = []
        index = 0
        for kind in [*MAKERS, None]:
            count = per_type if kind is not None else max(100 - per_type * len(MAKERS), 2 * per_type)
            for _ in range(count):
                first = index % len(towns)
                scenarios.append(_generate(towns[first:] + towns[:first], 90_000 + index, kind, traffic_vehicles=12,
                                           pedestrians=6))
                index += 1
        return Suite("eval", SUITE_VERSION, tuple(scenarios))
    raise ValueError(f"unknown suite {name!r}; known: smoke, train, eval")


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
