"""CARLA Leaderboard metrics: route completion, infraction penalty, driving score — and Bench2Drive's.

Per route: ``driving score = route completion x infraction penalty``, completion and score in percent like the
Leaderboard; route completion snaps to 100 % within ``COMPLETION_SNAP_M`` of the route's end. How infractions make
the penalty is a versioned :class:`Scorer`:

- ``lb2`` (Leaderboard 2.0): the product of ``coefficient ** count`` over infractions, times
  ``1 - 0.3 * (1 - x / 100)`` for each minimum-speed event at ``x`` % of the surrounding traffic's speed, times
  ``1 - share`` of the route driven outside its lanes;
- ``lb21`` (Leaderboard 2.1): ``(1 - share) / (1 + sum of weight * count)``, a minimum-speed event weighing
  ``0.4 * (1 - x / 100)``;
- ``bench2drive`` (Bench2Drive, the benchmark the published expert scores such as PDM-Lite's are measured on):
  ``lb2`` without the minimum-speed factor (its ``statistics_manager`` records minimum-speed infractions but marks
  them ``'unused'`` in the penalty).

Over a suite, every score is the mean over all planned routes (a route that did not run counts with zeros);
infractions are also reported per kilometre driven. Bench2Drive adds the success rate (routes completed with no
infraction but minimum speed) and comfort (:func:`comfort`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

#: Route completion counts as 100 % this close to the route's end.
COMPLETION_SNAP_M = 10.0


class Infraction(StrEnum):
    """Infractions the simulators detect (names follow the Leaderboard's event types)."""

    COLLISION_PEDESTRIAN = "collision_pedestrian"
    COLLISION_VEHICLE = "collision_vehicle"
    COLLISION_STATIC = "collision_static"
    RED_LIGHT = "red_light"
    STOP_SIGN = "stop_sign"
    SCENARIO_TIMEOUT = "scenario_timeout"
    YIELD_TO_EMERGENCY = "yield_to_emergency_vehicle"
    MIN_SPEED = "min_speed"
    OUTSIDE_ROUTE_LANES = "outside_route_lanes"
    ROUTE_DEVIATION = "route_deviation"
    AGENT_BLOCKED = "agent_blocked"
    ROUTE_TIMEOUT = "route_timeout"
    MISSED_CURBSIDE_STOP = "missed_curbside_stop"  # autoloop's robotaxi mission: a pick-up or drop-off not served


class RouteStatus(StrEnum):
    """How a route ended (the Leaderboard's entry statuses)."""

    COMPLETED = "completed"
    ROUTE_DEVIATION = "failed_route_deviation"
    AGENT_BLOCKED = "failed_agent_blocked"
    ROUTE_TIMEOUT = "failed_route_timeout"
    CRASHED = "crashed"


#: Leaderboard 2.0 penalty coefficients. Infractions that end the route carry none: they cost route completion.
LB2_PENALTIES: Mapping[Infraction, float] = MappingProxyType({
    Infraction.COLLISION_PEDESTRIAN: 0.50,
    Infraction.COLLISION_VEHICLE: 0.60,
    Infraction.COLLISION_STATIC: 0.65,
    Infraction.RED_LIGHT: 0.70,
    Infraction.STOP_SIGN: 0.80,
    Infraction.SCENARIO_TIMEOUT: 0.70,
    Infraction.YIELD_TO_EMERGENCY: 0.70,
    Infraction.MISSED_CURBSIDE_STOP: 0.50,  # not the Leaderboard's: a robotaxi that misses a passenger fails them
})

#: Leaderboard 2.1 infraction weights.
LB21_WEIGHTS: Mapping[Infraction, float] = MappingProxyType({
    Infraction.COLLISION_PEDESTRIAN: 1.0,
    Infraction.COLLISION_VEHICLE: 0.7,
    Infraction.COLLISION_STATIC: 0.6,
    Infraction.RED_LIGHT: 0.4,
    Infraction.STOP_SIGN: 0.25,
    Infraction.SCENARIO_TIMEOUT: 0.4,
    Infraction.YIELD_TO_EMERGENCY: 0.4,
    Infraction.MISSED_CURBSIDE_STOP: 1.0,  # (autoloop's, as above)
})

#: Infractions counted as collisions (for collisions per kilometre).
COLLISIONS = (Infraction.COLLISION_PEDESTRIAN, Infraction.COLLISION_VEHICLE, Infraction.COLLISION_STATIC)


@dataclass(frozen=True)
class RouteRecord:
    """What happened on one route.

    :param route_completion: fraction of the route completed, in [0, 1].
    :param infractions: number of each infraction.
    :param outside_lanes_share: fraction of the route length driven outside the route's lanes, in [0, 1].
    :param status: how the route ended.
    :param driven_m: distance driven.
    :param route_length_m: length of the route (completion snaps to 100 % within ``COMPLETION_SNAP_M`` of its end).
    :param min_speed_percentages: for each minimum-speed event, the ego's speed in % of the surrounding traffic's.
    """

    route_completion: float
    infractions: Mapping[Infraction, int]
    outside_lanes_share: float
    status: RouteStatus
    driven_m: float
    route_length_m: float = float("inf")
    min_speed_percentages: tuple[float, ...] = ()


@dataclass(frozen=True)
class Scorer:
    """A versioned way of turning infractions into the infraction penalty.

    :param name: version name (``SCORERS`` key).
    :param table: per-infraction coefficient (``combine="product"``) or weight (``"sum"``).
    :param combine: ``product`` (LB 2.0) or ``sum`` of weights (LB 2.1).
    :param min_speed: a minimum-speed event at ``x`` % costs ``min_speed * (1 - x / 100)`` (as a factor's
        reduction for ``product``, as a weight for ``sum``).
    """

    name: str
    table: Mapping[Infraction, float]
    combine: Literal["product", "sum"]
    min_speed: float

    def penalty(self, record: RouteRecord) -> float:
        counts = np.array([[record.infractions.get(kind, 0) for kind in Infraction]], dtype=np.float64)
        slow = np.array([record.min_speed_percentages or (np.nan,)], dtype=np.float64)
        return float(self.penalties(counts, slow, np.array([record.outside_lanes_share]))[0])

    def penalties(self, counts: NDArray[np.number[Any]], min_speed_percentages: NDArray[np.floating[Any]],
                  outside_lanes_share: NDArray[np.floating[Any]]) -> NDArray[np.float64]:
        """The penalty of many routes at once: ``counts`` ``(B, len(Infraction))`` in :class:`Infraction` order,
        each route's minimum-speed events ``(B, E)`` in percent (NaN: none) and outside shares ``(B,)``."""
        inside = 1.0 - np.clip(outside_lanes_share, 0.0, 1.0)
        slow = np.where(np.isnan(min_speed_percentages), 0.0,
                        self.min_speed * (1.0 - np.clip(min_speed_percentages, 0.0, 100.0) / 100.0))
        if self.combine == "product":
            table = np.array([self.table.get(kind, 1.0) for kind in Infraction])
            return np.asarray(np.prod(1.0 - slow, axis=1) * np.prod(table ** counts, axis=1) * inside,
                              dtype=np.float64)
        table = np.array([self.table.get(kind, 0.0) for kind in Infraction])
        return np.asarray(inside / (1.0 + counts @ table + slow.sum(axis=1)), dtype=np.float64)


SCORERS: Mapping[str, Scorer] = MappingProxyType({
    "lb2": Scorer("lb2", LB2_PENALTIES, "product", 0.3),
    "lb21": Scorer("lb21", LB21_WEIGHTS, "sum", 0.4),
    "bench2drive": Scorer("bench2drive", LB2_PENALTIES, "product", 0.0),
})


@dataclass(frozen=True)
class RouteScore:
    """Leaderboard scores of one route; ``driving_score`` and ``route_completion`` in percent."""

    driving_score: float
    route_completion: float
    infraction_penalty: float


@dataclass(frozen=True)
class SuiteScore:
    """Leaderboard scores over a suite of routes (means over all planned routes); ``success_rate`` is
    Bench2Drive's, in percent."""

    driving_score: float
    route_completion: float
    infraction_penalty: float
    routes: int
    completed_routes: int
    driven_km: float
    success_rate: float
    infractions: Mapping[Infraction, int] = field(default_factory=dict)

    @property
    def collisions_per_km(self) -> float:
        collisions = sum(self.infractions.get(kind, 0) for kind in COLLISIONS)
        return collisions / max(self.driven_km, 1e-3)

    def infractions_per_km(self) -> dict[Infraction, float]:
        return {kind: count / max(self.driven_km, 1e-3) for kind, count in self.infractions.items()}


def score_route(record: RouteRecord, *, scorer: str = "lb2") -> RouteScore:
    """Score one route with the named scorer version."""
    penalty = _scorer(scorer).penalty(record)
    remaining_m = (1.0 - record.route_completion) * record.route_length_m
    completion = 100.0 if remaining_m <= COMPLETION_SNAP_M else 100.0 * min(max(record.route_completion, 0.0), 1.0)
    return RouteScore(driving_score=completion * penalty, route_completion=completion, infraction_penalty=penalty)


def bench2drive_success(record: RouteRecord) -> bool:
    """Bench2Drive's success: the route completed with no infraction other than minimum speed."""
    return record.status is RouteStatus.COMPLETED and record.outside_lanes_share == 0.0 and not any(
        count for kind, count in record.infractions.items() if kind is not Infraction.MIN_SPEED)


def score_suite(records: Sequence[RouteRecord | None], *, scorer: str = "lb2") -> SuiteScore:
    """Aggregate over every planned route; ``None`` marks a route that could not run (scores zero)."""
    if not records:
        raise ValueError("cannot score an empty suite: no routes were planned")
    scores = [score_route(r, scorer=scorer) if r is not None else RouteScore(0.0, 0.0, 0.0) for r in records]
    counts: dict[Infraction, int] = {}
    for record in records:
        for kind, count in (record.infractions if record is not None else {}).items():
            counts[kind] = counts.get(kind, 0) + count
    count = len(scores)
    return SuiteScore(
        driving_score=sum(s.driving_score for s in scores) / count,
        route_completion=sum(s.route_completion for s in scores) / count,
        infraction_penalty=sum(s.infraction_penalty for s in scores) / count,
        routes=count,
        completed_routes=sum(r is not None and r.status is RouteStatus.COMPLETED for r in records),
        driven_km=sum(r.driven_m for r in records if r is not None) / 1000.0,
        success_rate=100.0 * sum(r is not None and bench2drive_success(r) for r in records) / count,
        infractions=counts,
    )


#: nuPlan's ego comfort bounds, which Bench2Drive's comfort metric uses.
COMFORT_BOUNDS: Mapping[str, float] = MappingProxyType({
    "lon_accel_min_mps2": -4.05,
    "lon_accel_max_mps2": 2.40,
    "lat_accel_max_mps2": 4.89,
    "lon_jerk_max_mps3": 4.13,
    "jerk_max_mps3": 8.37,
    "yaw_rate_max_radps": 0.95,
    "yaw_accel_max_radps2": 1.93,
})


def comfort(speed_mps: NDArray[np.floating], yaw_rad: NDArray[np.floating], dt_s: float, *,
            window: int = 20) -> float:
    """Share of consecutive ``window``-frame stretches of a trajectory whose accelerations, jerks and yaw rates
    all stay within ``COMFORT_BOUNDS`` (Bench2Drive's comfort); a trajectory shorter than a window is one."""
    speed = np.asarray(speed_mps, dtype=np.float64)
    if len(speed) < 3:
        raise ValueError(f"comfort needs at least 3 frames, got {len(speed)}")
    yaw_rate = np.gradient(np.unwrap(np.asarray(yaw_rad, dtype=np.float64)), dt_s)
    lon_accel = np.gradient(speed, dt_s)
    lat_accel = speed * yaw_rate
    lon_jerk = np.gradient(lon_accel, dt_s)
    jerk = np.hypot(lon_jerk, np.gradient(lat_accel, dt_s))
    yaw_accel = np.gradient(yaw_rate, dt_s)
    b = COMFORT_BOUNDS
    ok = ((lon_accel >= b["lon_accel_min_mps2"]) & (lon_accel <= b["lon_accel_max_mps2"])
          & (np.abs(lat_accel) <= b["lat_accel_max_mps2"]) & (np.abs(lon_jerk) <= b["lon_jerk_max_mps3"])
          & (jerk <= b["jerk_max_mps3"]) & (np.abs(yaw_rate) <= b["yaw_rate_max_radps"])
          & (np.abs(yaw_accel) <= b["yaw_accel_max_radps2"]))
    windows = max(len(ok) // window, 1)
    return float(np.mean([ok[i * window:(i + 1) * window].all() for i in range(windows)]))


def _scorer(scorer: str) -> Scorer:
    try:
        return SCORERS[scorer]
    except KeyError:
        raise ValueError(f"unknown scorer {scorer!r}; known: {sorted(SCORERS)}") from None
