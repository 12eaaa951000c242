"""The promotion gate: absolute thresholds, and "not worse than the champion" as a statistical test on the same
routes.

Every check is kept with a sentence saying how the candidate fared, so a verdict explains itself in the registry
(version tags, ``verdict.json``) and in the flow's summary.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from autoloop.config import GateConfig
from autoloop.engine.failures import route_failed
from autoloop.evaluation import SIMULATION_CRASHED, Comparison, EvaluationResult


@dataclass(frozen=True)
class Check:
    """One rule of the gate and how the candidate fared."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    """The gate's decision with every check; ``reasons`` are the failed checks' details.

    :param paired_difference: mean paired driving-score difference to the champion (``None``: no champion).
    :param paired_low: lower bound of its confidence interval.
    """

    passed: bool
    checks: tuple[Check, ...]
    paired_difference: float | None = None
    paired_low: float | None = None

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(check.detail for check in self.checks if not check.passed)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": list(self.reasons)}


def decide(candidate: EvaluationResult, comparison: Comparison | None, gate: GateConfig, *,
           champion: EvaluationResult | None = None, regression: Sequence[int] = (),
           failing_ds: float = 80.0) -> Verdict:
    """Apply the gate to a candidate's evaluation, and to its paired comparison with the champion if there is one.

    Checks: the evaluation ran every route (no simulator crash left), minimum driving score, success rate and
    route completion, maximum collisions per km; with a champion, the lower bound of the paired driving-score
    difference above ``-champion_margin``, no scenario type's mean paired difference below ``-type_tolerance`` (types
    with at least ``type_min_routes`` routes),
    and with ``regression`` routes (indices of the suite's regression routes; ``champion``'s evaluation of the same
    suite), at most ``regression_tolerance`` percent of those the champion passes failed by the candidate (a route
    fails as :func:`autoloop.engine.failures.route_failed` says, below ``failing_ds``).
    """
    crashed = sum(route.status == SIMULATION_CRASHED for route in candidate.routes)
    checks = [
        Check("evaluation complete", crashed == 0,
              f"all {len(candidate.routes)} routes ran" if crashed == 0 else
              f"{crashed} of {len(candidate.routes)} routes crashed the simulator: evaluate again to resume them"),
        _at_least("driving score", candidate.driving_score, gate.min_driving_score),
        _at_least("success rate", candidate.success_rate, gate.min_success_rate),
        _at_least("route completion", candidate.route_completion, gate.min_route_completion),
        _at_most("collisions per km", candidate.collisions_per_km, gate.max_collisions_per_km),
    ]
    if comparison is None:
        return Verdict(passed=all(check.passed for check in checks), checks=tuple(checks))
    difference = comparison.difference
    ok = difference.low > -gate.champion_margin
    checks.append(Check(
        "versus champion", ok,
        f"paired driving-score difference to the champion {difference.mean:+.1f}, "
        f"{100 * difference.confidence:.0f} % CI [{difference.low:+.1f}, {difference.high:+.1f}]: lower bound "
        f"{'>' if ok else '<='} -{gate.champion_margin:.1f} (champion {comparison.champion_driving_score:.1f})"))
    routes_of = Counter(route.scenario_type for route in comparison.routes)
    for kind, mean in comparison.by_type.items():
        if routes_of[kind] < gate.type_min_routes:
            continue  # (one or two routes say nothing about a type; the paired difference over all counts them)
        ok = mean >= -gate.type_tolerance
        checks.append(Check(
            f"scenario type {kind}", ok,
            f"{kind}: mean paired driving-score difference {mean:+.1f} {'>=' if ok else '<'} "
            f"-{gate.type_tolerance:.1f}"))
    if champion is not None and regression:
        checks.append(_regressions(candidate, champion, regression, gate.regression_tolerance, failing_ds))
    return Verdict(passed=all(check.passed for check in checks), checks=tuple(checks),
                   paired_difference=difference.mean, paired_low=difference.low)


def _regressions(candidate: EvaluationResult, champion: EvaluationResult, regression: Sequence[int],
                 tolerance: float, failing_ds: float) -> Check:
    """The regression-suite check: routes the champion passes and the candidate fails, against the tolerance."""
    def failures(result: EvaluationResult) -> set[int]:
        return {route.index for route in result.routes
                if route_failed(route.status, route.driving_score, route.infraction_counts, failing_ds)}

    champion_failed, candidate_failed = failures(champion), failures(candidate)
    passed = [index for index in regression if index not in champion_failed]
    broken = [index for index in passed if index in candidate_failed]
    allowed = math.floor(tolerance / 100.0 * len(passed) + 1e-9)
    listed = f" (routes {', '.join(str(i) for i in broken[:10])}{'...' if len(broken) > 10 else ''})" if broken else ""
    return Check("regression suite", len(broken) <= allowed,
                 f"regression suite: the candidate fails {len(broken)} of the {len(passed)} regression routes the "
                 f"champion passes{listed}; at most {allowed} allowed ({tolerance:.0f} %)")


def _at_least(name: str, value: float, minimum: float) -> Check:
    ok = value >= minimum
    return Check(name, ok, f"{name} {value:.1f} {'>=' if ok else '<'} minimum {minimum:.1f}")


def _at_most(name: str, value: float, maximum: float) -> Check:
    ok = value <= maximum
    return Check(name, ok, f"{name} {value:.2f} {'<=' if ok else '>'} maximum {maximum:.2f}")
