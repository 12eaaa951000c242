"""Scenarios: one description of a driving task that every backend runs the same way.

A scenario is a map, a route on it (a lane path plus where the ego starts and where the route ends, or waypoints
the route is laid through), background traffic (count and seed), the traffic lights' phase offset and typed events
(:mod:`sim.scenarios.events`) with their trigger points. It serializes to plain data (YAML/JSON) and back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from sim.bounded_yaml import load_yaml
from sim.embedded.traffic import LightTiming
from sim.maps import LaneGraph, connector_id, get_map
from sim.scenarios.events import CurbsideDropoff, CurbsidePickup, ScenarioEvent, describe
from sim.scenarios.routes import densify_waypoints, lane_route


class Scenario(BaseModel):
    """One route to drive.

    The route is given as lane ids with start and end, or as ``waypoints`` alone: then the waypoints are joined
    by shortest lane paths on the map (:func:`sim.scenarios.routes.densify_waypoints`, each located on the nearest
    lane heading towards the next waypoint) and ``route``, ``start_s_m`` and ``end_s_m`` are derived from them
    (the ego starts at the first waypoint, the route ends at the last). The waypoints are kept and written out
    with the derived route; when both are given, the route is taken as it is.

    :param map_name: map id (``sim.maps.get_map``): registered or built-in, or a map file such as
        ``opendrive:carla/maps/Town01.xodr``.
    :param route: lane ids the route follows, in order.
    :param start_s_m: where the ego starts, as arc length along the route's lane path
        (:meth:`sim.maps.LaneGraph.route_path`).
    :param end_s_m: where the route ends, as arc length along the route's lane path.
    :param traffic_vehicles: number of background vehicles.
    :param pedestrians: number of pedestrians walking the map's sidewalks and crosswalks.
    :param traffic_seed: seed for the background traffic's placement and behaviour.
    :param light_offset_s: traffic-light cycle offset at time 0.
    :param timeout_s: the route fails when it is not completed after this long.
    :param events: situations staged along the route, each at its trigger point; its curbside pick-ups and
        drop-offs are the robotaxi mission (:attr:`mission`).
    :param waypoints: map-frame ``(x, y)`` points (metres) the route was laid through, at least two, or ``None``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    map_name: str
    route: tuple[int, ...] = Field(min_length=1)
    start_s_m: float = Field(ge=0.0)
    end_s_m: float = Field(gt=0.0)
    traffic_vehicles: int = Field(ge=0)
    pedestrians: int = Field(default=0, ge=0)
    traffic_seed: int
    light_offset_s: float = 0.0
    timeout_s: float = Field(gt=0.0)
    events: tuple[ScenarioEvent, ...] = ()
    waypoints: tuple[tuple[FiniteFloat, FiniteFloat], ...] | None = Field(default=None, min_length=2)

    @model_validator(mode="before")
    @classmethod
    def _route_from_waypoints(cls, data: Any) -> Any:
        """Without a ``route``, lay one through ``waypoints`` (malformed waypoints are left to field validation)."""
        if not isinstance(data, dict) or "route" in data or data.get("waypoints") is None:
            return data
        given = [name for name in ("start_s_m", "end_s_m") if name in data]
        if given:
            raise ValueError(f"{' and '.join(given)}: derived from the waypoints; give them only with a route")
        try:
            points = np.asarray(data["waypoints"], dtype=np.float64)
        except (TypeError, ValueError):
            return data
        if points.ndim != 2 or points.shape[1] != 2 or len(points) < 2 or not np.isfinite(points).all() \
                or not isinstance(data.get("map_name"), str):
            return data
        graph = get_map(data["map_name"])
        route, start, end = lane_route(graph, densify_waypoints(graph, points, where="waypoints"))
        if end - start < 1.0:
            raise ValueError(f"waypoints: the route through them is {end - start:.2f} m long; a route needs 1 m")
        return {**data, "route": route, "start_s_m": round(start, 2), "end_s_m": round(end, 2)}

    @model_serializer(mode="wrap")
    def _omit_absent_waypoints(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Scenarios without waypoints serialize as they did before the field existed (suite hashes stay)."""
        data: dict[str, Any] = handler(self)
        if self.waypoints is None:
            data.pop("waypoints", None)
        return data

    @property
    def mission(self) -> tuple[CurbsidePickup | CurbsideDropoff, ...]:
        """The robotaxi mission: the pick-up and drop-off stops among the events, in route order."""
        stops = [e for e in self.events if isinstance(e, CurbsidePickup | CurbsideDropoff)]
        return tuple(sorted(stops, key=lambda e: e.trigger_s_m + e.distance_m))

    def to_yaml(self) -> str:
        """The scenario as YAML (:meth:`from_yaml` reads it back equal)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, *, source: str | Path = "<string>") -> Scenario:
        """Parse a scenario written by :meth:`to_yaml`.

        :raises ValueError: naming ``source`` and the offending field when the YAML or a field is invalid.
        """
        data = load_yaml(text, source=str(source))
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise ValueError(f"{source}: invalid scenario ({describe(error)})") from error


def sample_scenario(seed: int, *, map_name: str = "junction4-60", traffic_vehicles: int = 6, pedestrians: int = 0,
                    timing: LightTiming = LightTiming(), route_length_m: tuple[float, float] = (150.0, 350.0),
                    ) -> Scenario:
    """Draw a route with random traffic and light phases from ``seed``.

    On ``junction4-*`` maps the route crosses the junction (random approach and turn); on any other map it is a
    random drive along successor lanes of ``route_length_m`` (turning at random at each junction). The timeout
    is :func:`route_timeout_s`.
    """
    rng = np.random.default_rng(seed)
    lane_graph = get_map(map_name)
    cycle = light_cycle_s(lane_graph, timing)
    if map_name.startswith("junction4-"):
        arm_in = int(rng.integers(4))
        arm_out = int((arm_in + 1 + rng.integers(3)) % 4)
        route: tuple[int, ...] = (2 * arm_in, connector_id(arm_in, arm_out), 2 * arm_out + 1)
        inbound, connector, outbound = (lane_graph.lanes[lane_id].length_m for lane_id in route)
        start = float(rng.uniform(0.15, 0.5) * inbound)
        end = float(inbound + connector + rng.uniform(0.5, 0.85) * outbound)
    else:
        route, start, end = _random_drive(lane_graph, rng, route_length_m)
    return Scenario(
        map_name=map_name,
        route=route,
        start_s_m=round(start, 2),
        end_s_m=round(end, 2),
        traffic_vehicles=traffic_vehicles,
        pedestrians=pedestrians,
        traffic_seed=seed,
        light_offset_s=round(float(rng.uniform(0.0, cycle)), 2),
        timeout_s=route_timeout_s(lane_graph, route, end - start, timing=timing),
    )


def light_cycle_s(lane_graph: LaneGraph, timing: LightTiming = LightTiming()) -> float:
    """One traffic-light cycle on ``lane_graph``: every light group of its busiest junction green in turn."""
    junctions = lane_graph.light_group_junctions()
    phases = max((junctions.count(j) for j in set(junctions)), default=0)
    return timing.cycle_s(max(phases, 1))


def route_timeout_s(lane_graph: LaneGraph, route: tuple[int, ...], length_m: float, *,
                    timing: LightTiming = LightTiming()) -> float:
    """Time allowed to drive ``length_m`` along ``route``: 4 m/s on average plus one light cycle, and one more per
    controlled (light or stop sign) lane on the route; rounded to 0.1 s."""
    controlled = sum(1 for lane in route if lane_graph.lanes[lane].light_group is not None
                     or lane_graph.lanes[lane].stop_sign)
    return round(length_m / 4.0 + light_cycle_s(lane_graph, timing) * (1 + controlled), 1)


def _random_drive(lane_graph: LaneGraph, rng: np.random.Generator,
                  length_m: tuple[float, float]) -> tuple[tuple[int, ...], float, float]:
    """A random successor walk of about ``length_m`` (start and end inside non-junction lanes)."""
    lanes = lane_graph.lanes
    starts = [lane.lane_id for lane in lanes if not lane.is_junction and lane.successors and lane.length_m > 10.0]
    if not starts:
        raise ValueError(f"map {lane_graph.name!r} has no lane to start a route on")
    target = float(rng.uniform(*length_m))
    best: tuple[tuple[int, ...], float, float] | None = None
    for _ in range(20):
        path = [int(rng.choice(starts))]
        start = float(rng.uniform(0.1, 0.5)) * lanes[path[0]].length_m
        total = lanes[path[0]].length_m - start
        while total < target and lanes[path[-1]].successors:
            path.append(int(rng.choice(lanes[path[-1]].successors)))
            total += lanes[path[-1]].length_m
        while len(path) > 1 and lanes[path[-1]].is_junction:  # end on a road, not inside a junction
            total -= lanes[path.pop()].length_m
        last = lanes[path[-1]].length_m
        before = sum(lanes[lane].length_m for lane in path[:-1])
        end = float(np.clip(start + target, before + 0.3 * last, before + 0.9 * last))
        end = max(end, start + 1.0)
        candidate = (tuple(path), start, end)
        if best is None or abs((end - start) - target) < abs((best[2] - best[1]) - target):
            best = candidate
        if end - start >= 0.8 * target:
            break
    assert best is not None
    return best
