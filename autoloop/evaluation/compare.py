"""Paired comparison of a candidate with the champion on the same routes (same suite, same seeds).

Pairing removes the spread between routes from the comparison: what is left is how the two drivers differ route
by route. The bootstrap resamples routes (pairs), as for one driver's intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autoloop.evaluation.results import ROUTE_METRICS, EvaluationResult, route_metrics
from autoloop.evaluation.stats import Interval, bootstrap_mean
from autoloop.viewer.links import replay_url


def episode_link(episode_id: str) -> str:
    """The replay viewer's page of one episode (:func:`autoloop.viewer.links.replay_url`)."""
    return replay_url(episode_id)


def compare_link(candidate_episode: str, champion_episode: str) -> str:
    """The replay viewer's side-by-side page of the champion's episode (A) and the candidate's (B): the viewer's
    ``B − A`` is then the report's difference, candidate minus champion."""
    return replay_url(champion_episode, compare_with=candidate_episode)


@dataclass(frozen=True)
class RouteDifference:
    """One route driven by both: driving scores (percent) and episodes."""

    index: int
    scenario_type: str
    town: str
    candidate_score: float
    champion_score: float
    candidate_status: str
    champion_status: str
    candidate_episode: str | None
    champion_episode: str | None

    @property
    def difference(self) -> float:
        return self.candidate_score - self.champion_score

    @property
    def link(self) -> str:
        """Both episodes side by side in the replay viewer (empty when one did not run)."""
        if self.candidate_episode is None or self.champion_episode is None:
            return ""
        return compare_link(self.candidate_episode, self.champion_episode)


@dataclass(frozen=True)
class MetricComparison:
    """One per-route metric (:data:`~autoloop.evaluation.results.ROUTE_METRICS`) of both drivers on the same
    routes: each driver's mean with its bootstrap interval, and the mean paired difference (candidate minus
    champion) with its own."""

    champion: Interval
    candidate: Interval
    difference: Interval


@dataclass(frozen=True)
class Comparison:
    """Candidate minus champion, route by route.

    :param metrics: each per-route metric compared (:class:`MetricComparison`), by name.
    :param by_type: mean driving-score difference per scenario type.
    """

    routes: tuple[RouteDifference, ...]
    metrics: dict[str, MetricComparison]
    by_type: dict[str, float]
    champion_policy: str
    champion_driving_score: float

    @property
    def difference(self) -> Interval:
        """Bootstrap interval of the mean per-route driving-score difference."""
        return self.metrics["driving_score"].difference

    def regressed(self, *, tolerance: float = 0.0) -> list[RouteDifference]:
        """Routes where the candidate scored more than ``tolerance`` points below the champion, worst first."""
        return sorted((route for route in self.routes if route.difference < -tolerance),
                      key=lambda route: route.difference)


def compare(candidate: EvaluationResult, champion: EvaluationResult, *, resamples: int = 2000,
            confidence: float = 0.95, seed: int = 0) -> Comparison:
    """Pair the two evaluations' routes.

    :raises ValueError: when they did not drive the same suite (hash) or the same seeds.
    """
    if candidate.suite_hash != champion.suite_hash:
        raise ValueError(f"candidate and champion were evaluated on different scenarios (suite {candidate.suite} "
                         f"{candidate.suite_hash} vs {champion.suite} {champion.suite_hash})")
    theirs = {(route.index, route.scenario_seed): route for route in champion.routes}
    ours = {(route.index, route.scenario_seed): route for route in candidate.routes}
    if theirs.keys() != ours.keys():
        unmatched = sorted(set(theirs) ^ set(ours))
        raise ValueError(f"candidate and champion were evaluated on different scenarios (unmatched: {unmatched})")
    pairs = tuple(RouteDifference(
        index=route.index, scenario_type=route.scenario_type, town=route.town,
        candidate_score=route.driving_score, champion_score=theirs[key].driving_score,
        candidate_status=route.status, champion_status=theirs[key].status,
        candidate_episode=route.episode_id, champion_episode=theirs[key].episode_id,
    ) for key, route in sorted(ours.items()))
    by_type: dict[str, list[float]] = {}
    for pair in pairs:
        by_type.setdefault(pair.scenario_type, []).append(pair.difference)
    keys = sorted(ours)
    candidate_values = route_metrics([ours[key] for key in keys])
    champion_values = route_metrics([theirs[key] for key in keys])
    metrics = {name: MetricComparison(
        champion=champion.intervals[name], candidate=candidate.intervals[name],
        difference=bootstrap_mean(np.subtract(candidate_values[name], champion_values[name]), resamples=resamples,
                                  confidence=confidence, seed=seed)) for name in ROUTE_METRICS}
    return Comparison(
        routes=pairs,
        metrics=metrics,
        by_type={kind: sum(values) / len(values) for kind, values in sorted(by_type.items())},
        champion_policy=champion.policy,
        champion_driving_score=champion.driving_score,
    )
