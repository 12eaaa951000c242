"""CARLA Leaderboard metrics: route completion, infraction penalty, driving score.

Per route: ``driving score = route completion x infraction penalty``, both reported in percent like the
Leaderboard; the penalty is the product of ``coefficient ** count`` over infractions, times ``1 - share`` of the
route driven outside its lanes. Over a suite, every score is the mean over all planned routes (a route that
failed to run counts with zeros), and infractions are also reported per kilometre driven.

Penalty coefficients are data keyed by :class:`Infraction`, one table per scorer version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class Infraction(StrEnum):
    """Infractions the simulators detect (names follow the Leaderboard's event types)."""

    COLLISION_PEDESTRIAN = "collision_pedestrian"
    COLLISION_VEHICLE = "collision_vehicle"
    COLLISION_STATIC = "collision_static"
    RED_LIGHT = "red_light"
    STOP_SIGN = "stop_sign"
    SCENARIO_TIMEOUT = "scenario_timeout"
    YIELD_TO_EMERGENCY = "yield_to_emergency_vehicle"
    OUTSIDE_ROUTE_LANES = "outside_route_lanes"
    ROUTE_DEVIATION = "route_deviation"
    AGENT_BLOCKED = "agent_blocked"
    ROUTE_TIMEOUT = "route_timeout"


class RouteStatus(StrEnum):
    """How a route ended (the Leaderboard's entry statuses)."""

    COMPLETED = "completed"
    ROUTE_DEVIATION = "failed_route_deviation"
    AGENT_BLOCKED = "failed_agent_blocked"
    ROUTE_TIMEOUT = "failed_route_timeout"
    CRASHED = "crashed"


#: Leaderboard 2.0 penalty coefficients (``lb2``). Infractions that end the route carry no coefficient: they
#: cost the route completion instead.
LB2_PENALTIES: Mapping[Infraction, float] = MappingProxyType({
    Infraction.COLLISION_PEDESTRIAN: 0.50,
    Infraction.COLLISION_VEHICLE: 0.60,
    Infraction.COLLISION_STATIC: 0.65,
    Infraction.RED_LIGHT: 0.70,
    Infraction.STOP_SIGN: 0.80,
    Infraction.SCENARIO_TIMEOUT: 0.70,
    Infraction.YIELD_TO_EMERGENCY: 0.70,
})

SCORERS: Mapping[str, Mapping[Infraction, float]] = MappingProxyType({"lb2": LB2_PENALTIES})

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
    """

    route_completion: float
    infractions: Mapping[Infraction, int]
    outside_lanes_share: float
    status: RouteStatus
    driven_m: float


@dataclass(frozen=True)
class RouteScore:
    """Leaderboard scores of one route; ``driving_score`` and ``route_completion`` in percent."""

    driving_score: float
    route_completion: float
    infraction_penalty: float


@dataclass(frozen=True)
class SuiteScore:
    """Leaderboard scores over a suite of routes (means over all planned routes)."""

    driving_score: float
    route_completion: float
    infraction_penalty: float
    routes: int
    completed_routes: int
    driven_km: float
    infractions: Mapping[Infraction, int] = field(default_factory=dict)

    @property
    def collisions_per_km(self) -> float:
        collisions = sum(self.infractions.get(kind, 0) for kind in COLLISIONS)
        return collisions / max(self.driven_km, 1e-3)

    def infractions_per_km(self) -> dict[Infraction, float]:
        return {kind: count / max(self.driven_km, 1e-3) for kind, count in self.infractions.items()}


def score_route(record: RouteRecord, *, scorer: str = "lb2") -> RouteScore:
    """Score one route with the named scorer version."""
    penalties = _penalties(scorer)
    penalty = 1.0
    for kind, count in record.infractions.items():
        penalty *= penalties.get(kind, 1.0) ** count
    penalty *= 1.0 - min(max(record.outside_lanes_share, 0.0), 1.0)
    completion = 100.0 * min(max(record.route_completion, 0.0), 1.0)
    return RouteScore(driving_score=completion * penalty, route_completion=completion, infraction_penalty=penalty)


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
        infractions=counts,
    )


def _penalties(scorer: str) -> Mapping[Infraction, float]:
    try:
        return SCORERS[scorer]
    except KeyError:
        raise ValueError(f"unknown scorer {scorer!r}; known: {sorted(SCORERS)}") from None
