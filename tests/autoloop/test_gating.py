import pytest

from autoloop.config import GateConfig
from autoloop.evaluation import EvaluationResult, RouteResult
from autoloop.gating import decide, paired_difference


def _result(scores: list[float], *, collisions_per_km: float = 0.0, seeds: list[int] | None = None) -> EvaluationResult:
    seeds = seeds or list(range(len(scores)))
    routes = tuple(RouteResult(seed, f"ep-{seed}", "completed", score, 100.0, score / 100.0)
                   for seed, score in zip(seeds, scores, strict=True))
    return EvaluationResult("m", sum(scores) / len(scores), 100.0, sum(scores) / len(scores) / 100.0,
                            collisions_per_km, 1.0, len(scores), 100.0, routes)


GATE = GateConfig(min_driving_score=60.0, min_route_completion=80.0, max_collisions_per_km=2.0, champion_margin=5.0)


def test_first_candidate_passes_on_thresholds_alone() -> None:
    verdict = decide(_result([90.0, 70.0]), None, GATE)
    assert verdict.passed and verdict.reasons == () and verdict.paired_difference is None


def test_each_failed_threshold_is_a_reason() -> None:
    verdict = decide(_result([50.0, 40.0], collisions_per_km=3.0), None, GATE)
    assert not verdict.passed
    assert verdict.reasons == ("driving score 45.0 < minimum 60.0", "collisions per km 3.00 > maximum 2.00")


def test_paired_comparison_with_the_champion() -> None:
    champion = _result([100.0, 80.0, 90.0])
    # mean paired difference (-10 + 0 + 4) / 3 = -2: within the 5-point margin
    assert decide(_result([90.0, 80.0, 94.0]), champion, GATE).passed
    # (-30 + 0 + 0) / 3 = -10: worse than the champion beyond the margin
    verdict = decide(_result([70.0, 80.0, 90.0]), champion, GATE)
    assert not verdict.passed
    assert verdict.paired_difference == pytest.approx(-10.0)
    assert verdict.reasons[0].startswith("paired driving-score difference to the champion -10.0 < -5.0")


def test_paired_comparison_needs_the_same_scenarios() -> None:
    with pytest.raises(ValueError, match="different scenarios"):
        paired_difference(_result([90.0, 80.0], seeds=[1, 2]), _result([90.0, 80.0], seeds=[1, 3]))
