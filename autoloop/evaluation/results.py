"""What an evaluation produces: one :class:`RouteResult` per planned route, aggregated into an
:class:`EvaluationResult` with the versioned scorers of :mod:`sim.metrics` and bootstrap intervals.

Route statuses are the CARLA Leaderboard's strings. A route that could not be driven to its end keeps an explicit
``Failed - ...`` status and scores zero (the Leaderboard's rule: every planned route counts), never a silent zero
or a missing row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from autoloop.evaluation.stats import Interval, bootstrap_mean
from sim.metrics import Infraction, RouteRecord, RouteStatus, bench2drive_success, score_suite

COMPLETED = "Completed"
AGENT_SETUP_FAILED = "Failed - Agent couldn't be set up"
AGENT_CRASHED = "Failed - Agent crashed"
SIMULATION_CRASHED = "Failed - Simulation crashed"
#: How a route the simulator drove to its end ended, as the Leaderboard names it.
ROUTE_STATUSES: Mapping[RouteStatus, str] = {
    RouteStatus.COMPLETED: COMPLETED,
    RouteStatus.ROUTE_DEVIATION: "Failed - Agent deviated from the route",
    RouteStatus.AGENT_BLOCKED: "Failed - Agent got blocked",
    RouteStatus.ROUTE_TIMEOUT: "Failed - Agent timed out",
    RouteStatus.CRASHED: SIMULATION_CRASHED,
}
#: Statuses of routes the evaluation could not drive (no episode, no record).
RUN_FAILURES = (AGENT_SETUP_FAILED, AGENT_CRASHED, SIMULATION_CRASHED)


@dataclass(frozen=True)
class InfractionEvent:
    """One infraction: its kind (``sim.metrics.Infraction`` value), when (s from the route's start) and where (map
    frame, m)."""

    kind: str
    time_s: float
    x_m: float
    y_m: float


@dataclass(frozen=True)
class RouteResult:
    """One planned route of a suite and how the driver did; scores in percent.

    :param index: position of the route in its suite.
    :param scenario_seed: the scenario's traffic seed (with the suite hash, what makes two runs comparable).
    :param scenario_type: the route's event type (``"Route"`` for a plain route).
    :param town: the map the route runs on.
    :param episode_id: the stored episode (``None`` when the route did not run).
    :param status: the Leaderboard status (see the module docstring).
    :param record: the simulator's route record as JSON (``None`` when the route did not run).
    :param comfort: Bench2Drive's comfort, in [0, 1].
    :param error: for a failed run, what went wrong.
    """

    index: int
    scenario_seed: int
    scenario_type: str
    town: str
    episode_id: str | None
    status: str
    driving_score: float
    route_completion: float
    infraction_penalty: float
    driven_m: float = 0.0
    route_length_m: float = 0.0
    comfort: float = 0.0
    infractions: tuple[InfractionEvent, ...] = ()
    record: dict[str, Any] | None = None
    error: str = ""

    @property
    def infraction_counts(self) -> dict[str, int]:
        """Infractions of each kind (the record's, which also counts minimum-speed events, which have no place)."""
        if self.record is not None:
            return {str(kind): int(count) for kind, count in self.record["infractions"].items() if count}
        return {}

    def route_record(self) -> RouteRecord | None:
        """The simulator's record, for :func:`sim.metrics.score_suite`."""
        if self.record is None:
            return None
        data = dict(self.record)
        return RouteRecord(
            route_completion=float(data["route_completion"]),
            infractions={Infraction(kind): int(count) for kind, count in data["infractions"].items()},
            outside_lanes_share=float(data["outside_lanes_share"]),
            status=RouteStatus(data["status"]),
            driven_m=float(data["driven_m"]),
            route_length_m=float(data["route_length_m"]),
            min_speed_percentages=tuple(float(x) for x in data["min_speed_percentages"]),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RouteResult:
        values = dict(data)
        values["infractions"] = tuple(InfractionEvent(**event) for event in values["infractions"])
        return cls(**values)


def record_json(record: RouteRecord) -> dict[str, Any]:
    """A route record as JSON (infractions keyed by their value)."""
    return {**asdict(record), "status": record.status.value,
            "infractions": {kind.value: count for kind, count in record.infractions.items()},
            "min_speed_percentages": list(record.min_speed_percentages)}


@dataclass(frozen=True)
class Breakdown:
    """Scores of a subset of the routes (one scenario type or one town)."""

    routes: int
    driving_score: float
    route_completion: float
    success_rate: float
    collisions_per_km: float


@dataclass(frozen=True)
class EvaluationResult:
    """A suite evaluation: means over all planned routes (percent; ``success_rate`` is Bench2Drive's), their
    bootstrap intervals, breakdowns, and the per-route results (in suite order).

    :param policy: what drove (``expert``, a checkpoint, a model URI).
    :param suite: the suite's name; ``suite_hash`` its content hash.
    :param scorer: the ``sim.metrics`` scorer version.
    :param intervals: bootstrap interval of the mean per route of ``driving_score``, ``route_completion``,
        ``success_rate`` (percent of routes) and ``infraction_penalty``.
    :param infractions_per_km: per infraction kind.
    """

    policy: str
    suite: str
    suite_hash: str
    scorer: str
    driving_score: float
    route_completion: float
    infraction_penalty: float
    success_rate: float
    collisions_per_km: float
    driven_km: float
    completed_routes: int
    comfort: float
    intervals: dict[str, Interval]
    infractions_per_km: dict[str, float]
    by_type: dict[str, Breakdown]
    by_town: dict[str, Breakdown]
    routes: tuple[RouteResult, ...]
    failed_runs: int = 0
    checkpoint: str = ""
    episode_tags: dict[str, str] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Flat metrics for tracking: headline scores, interval bounds, infractions per km."""
        metrics = {
            "driving_score": self.driving_score,
            "route_completion": self.route_completion,
            "infraction_penalty": self.infraction_penalty,
            "success_rate": self.success_rate,
            "collisions_per_km": self.collisions_per_km,
            "driven_km": self.driven_km,
            "completed_routes": float(self.completed_routes),
            "comfort": self.comfort,
            "routes": float(len(self.routes)),
            "failed_runs": float(self.failed_runs),
        }
        for name, interval in self.intervals.items():
            metrics[f"{name}_ci_low"] = interval.low
            metrics[f"{name}_ci_high"] = interval.high
        metrics.update({f"infractions_per_km_{kind}": value for kind, value in sorted(self.infractions_per_km.items())})
        return metrics

    def headline(self) -> dict[str, str]:
        """The few numbers a registered version carries as tags."""
        ds = self.intervals["driving_score"]
        return {"driving_score": f"{self.driving_score:.2f}", "driving_score_ci": f"[{ds.low:.2f}, {ds.high:.2f}]",
                "success_rate": f"{self.success_rate:.1f}", "route_completion": f"{self.route_completion:.2f}",
                "collisions_per_km": f"{self.collisions_per_km:.3f}"}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EvaluationResult:
        """The result :meth:`to_json` wrote (e.g. a run's ``evaluation.json``)."""
        values = dict(data)
        values["intervals"] = {name: Interval(**interval) for name, interval in values["intervals"].items()}
        for breakdown in ("by_type", "by_town"):
            values[breakdown] = {name: Breakdown(**b) for name, b in values[breakdown].items()}
        values["routes"] = tuple(RouteResult.from_json(route) for route in values["routes"])
        return cls(**values)


def aggregate(routes: Sequence[RouteResult], *, policy: str, suite: str, suite_hash: str, scorer: str,
              resamples: int = 2000, confidence: float = 0.95, seed: int = 0, checkpoint: str = "",
              episode_tags: Mapping[str, str] | None = None) -> EvaluationResult:
    """Score the routes (all planned ones, in suite order) with ``scorer``; routes that did not run count with
    zeros."""
    if not routes:
        raise ValueError("no routes to aggregate: the suite planned none")
    ordered = sorted(routes, key=lambda route: route.index)
    records = [route.route_record() for route in ordered]
    suite_score = score_suite(records, scorer=scorer)

    intervals = {name: bootstrap_mean(values, resamples=resamples, confidence=confidence, seed=seed)
                 for name, values in route_metrics(ordered).items()}
    return EvaluationResult(
        policy=policy, suite=suite, suite_hash=suite_hash, scorer=scorer,
        driving_score=suite_score.driving_score,
        route_completion=suite_score.route_completion,
        infraction_penalty=suite_score.infraction_penalty,
        success_rate=suite_score.success_rate,
        collisions_per_km=suite_score.collisions_per_km,
        driven_km=suite_score.driven_km,
        completed_routes=suite_score.completed_routes,
        comfort=sum(route.comfort for route in ordered) / len(ordered),
        intervals=intervals,
        infractions_per_km={kind.value: rate for kind, rate in suite_score.infractions_per_km().items()},
        by_type=_breakdown(ordered, lambda route: route.scenario_type, scorer),
        by_town=_breakdown(ordered, lambda route: route.town, scorer),
        routes=tuple(ordered),
        failed_runs=sum(route.status in RUN_FAILURES for route in ordered),
        checkpoint=checkpoint,
        episode_tags=dict(episode_tags or {}),
    )


#: The per-route metrics an evaluation has intervals of (:attr:`EvaluationResult.intervals`): percent, except the
#: infraction penalty (a factor in [0, 1]).
ROUTE_METRICS = ("driving_score", "route_completion", "success_rate", "infraction_penalty")


def route_metrics(routes: Sequence[RouteResult]) -> dict[str, list[float]]:
    """Each of :data:`ROUTE_METRICS` per route, in the order of ``routes`` (success: 100 for a Bench2Drive success,
    else 0)."""
    return {"driving_score": [route.driving_score for route in routes],
            "route_completion": [route.route_completion for route in routes],
            "success_rate": [100.0 * _success(route) for route in routes],
            "infraction_penalty": [route.infraction_penalty for route in routes]}


def _success(route: RouteResult) -> bool:
    record = route.route_record()
    return record is not None and bench2drive_success(record)


def _breakdown(routes: Sequence[RouteResult], key: Any, scorer: str) -> dict[str, Breakdown]:
    groups: dict[str, list[RouteResult]] = {}
    for route in routes:
        groups.setdefault(str(key(route)), []).append(route)
    result = {}
    for name, members in sorted(groups.items()):
        score = score_suite([route.route_record() for route in members], scorer=scorer)
        result[name] = Breakdown(routes=len(members), driving_score=score.driving_score,
                                 route_completion=score.route_completion, success_rate=score.success_rate,
                                 collisions_per_km=score.collisions_per_km)
    return result

