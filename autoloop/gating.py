"""The promotion gate: thresholds, and "not worse than the champion" on the same scenarios."""

from __future__ import annotations

from dataclasses import dataclass

from autoloop.config import GateConfig
from autoloop.evaluation import EvaluationResult


@dataclass(frozen=True)
class Check:
    """One rule of the gate and how the candidate fared."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    """The gate's decision with every check; ``reasons`` are the failed checks' details."""

    passed: bool
    checks: tuple[Check, ...]
    paired_difference: float | None

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(check.detail for check in self.checks if not check.passed)


def paired_difference(candidate: EvaluationResult, champion: EvaluationResult) -> float:
    """Mean per-route driving-score difference (candidate minus champion) over the same scenarios."""
    champion_by_seed = {route.scenario_seed: route for route in champion.routes}
    missing = [route.scenario_seed for route in candidate.routes if route.scenario_seed not in champion_by_seed]
    if missing or len(champion.routes) != len(candidate.routes):
        raise ValueError(f"candidate and champion were evaluated on different scenarios (unmatched: {missing})")
    diffs = [route.driving_score - champion_by_seed[route.scenario_seed].driving_score for route in candidate.routes]
    return sum(diffs) / len(diffs)


def decide(candidate: EvaluationResult, champion: EvaluationResult | None, gate: GateConfig) -> Verdict:
    """Apply the gate to a candidate's evaluation (and the champion's on the same scenarios, if any)."""
    checks = [
        _at_least("driving score", candidate.driving_score, gate.min_driving_score),
        _at_least("route completion", candidate.route_completion, gate.min_route_completion),
        Check("collisions per km", candidate.collisions_per_km <= gate.max_collisions_per_km,
              f"collisions per km {candidate.collisions_per_km:.2f} "
              f"{'<=' if candidate.collisions_per_km <= gate.max_collisions_per_km else '>'} "
              f"maximum {gate.max_collisions_per_km:.2f}"),
    ]
    difference = None
    if champion is not None:
        difference = paired_difference(candidate, champion)
        ok = difference >= -gate.champion_margin
        checks.append(Check(
            "versus champion", ok,
            f"paired driving-score difference to the champion {difference:+.1f} "
            f"{'>=' if ok else '<'} -{gate.champion_margin:.1f} (champion {champion.driving_score:.1f})",
        ))
    return Verdict(passed=all(check.passed for check in checks), checks=tuple(checks), paired_difference=difference)


def _at_least(name: str, value: float, minimum: float) -> Check:
    ok = value >= minimum
    return Check(name, ok, f"{name} {value:.1f} {'>=' if ok else '<'} minimum {minimum:.1f}")
