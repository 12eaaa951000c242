"""Closed-loop evaluation of a driver on held-out scenarios, scored like the CARLA Leaderboard."""

from __future__ import annotations

from dataclasses import dataclass, field

from autoloop.config import AutoloopConfig
from autoloop.episodes import EpisodeStore
from autoloop.rollout import DriverFactory, rollout
from sim.metrics import score_route, score_suite
from sim.scenarios import Scenario


@dataclass(frozen=True)
class RouteResult:
    """One evaluated route; scores in percent."""

    scenario_seed: int
    episode_id: str
    status: str
    driving_score: float
    route_completion: float
    infraction_penalty: float
    infractions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluationResult:
    """Suite scores (means over all planned routes, percent; ``success_rate`` is Bench2Drive's) and the
    per-route results."""

    policy: str
    driving_score: float
    route_completion: float
    infraction_penalty: float
    collisions_per_km: float
    driven_km: float
    completed_routes: int
    success_rate: float
    routes: tuple[RouteResult, ...]

    def metrics(self) -> dict[str, float]:
        """Flat metrics for tracking."""
        counts: dict[str, int] = {}
        for route in self.routes:
            for kind, count in route.infractions.items():
                counts[kind] = counts.get(kind, 0) + count
        return {
            "driving_score": self.driving_score,
            "route_completion": self.route_completion,
            "infraction_penalty": self.infraction_penalty,
            "collisions_per_km": self.collisions_per_km,
            "driven_km": self.driven_km,
            "completed_routes": float(self.completed_routes),
            "success_rate": self.success_rate,
            "routes": float(len(self.routes)),
            **{f"infractions_{kind}": float(count) for kind, count in sorted(counts.items())},
        }


def evaluation_scenarios(config: AutoloopConfig) -> list[Scenario]:
    """The held-out scenarios: seeds ``evaluate.seed .. evaluate.seed + episodes - 1``."""
    first = config.evaluate.seed
    return [config.sim.sample(seed)
            for seed in range(first, first + config.evaluate.episodes)]


def evaluate_driver(driver: DriverFactory, *, policy_name: str, config: AutoloopConfig, store: EpisodeStore,
                    tags: dict[str, str]) -> EvaluationResult:
    """Drive every held-out scenario once, store the episodes, and score the suite."""
    scenarios = evaluation_scenarios(config)
    results = rollout(scenarios, sim=config.sim, driver=driver, policy_name=policy_name,
                      tags={"purpose": "eval", **tags})
    store.write_many([episode for episode, _ in results])
    routes = []
    for (episode, record), scenario in zip(results, scenarios, strict=True):
        score = score_route(record, scorer=config.evaluate.scorer)
        routes.append(RouteResult(
            scenario_seed=scenario.traffic_seed,
            episode_id=episode.episode_id,
            status=record.status.value,
            driving_score=score.driving_score,
            route_completion=score.route_completion,
            infraction_penalty=score.infraction_penalty,
            infractions={kind.value: count for kind, count in record.infractions.items()},
        ))
    suite = score_suite([record for _, record in results], scorer=config.evaluate.scorer)
    return EvaluationResult(
        policy=policy_name,
        driving_score=suite.driving_score,
        route_completion=suite.route_completion,
        infraction_penalty=suite.infraction_penalty,
        collisions_per_km=suite.collisions_per_km,
        driven_km=suite.driven_km,
        completed_routes=suite.completed_routes,
        success_rate=suite.success_rate,
        routes=tuple(routes),
    )
