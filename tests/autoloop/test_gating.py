"""The gate: one candidate that passes every check, and for each check one that fails it (and only it)."""

from __future__ import annotations

import pytest

from autoloop.config import GateConfig
from autoloop.evaluation import SIMULATION_CRASHED, EvaluationResult, InfractionEvent, compare
from autoloop.gating import Verdict, decide
from tests.autoloop.test_evaluation import result_of, route

GATE = GateConfig(min_driving_score=60.0, min_success_rate=50.0, min_route_completion=70.0,
                  max_collisions_per_km=2.0, champion_margin=5.0, type_tolerance=10.0)
#: Two scenario types, eight routes each: all completed.
SCORES = [100.0] * 16
TYPES = ["A"] * 8 + ["B"] * 8


def evaluation(scores: list[float] = SCORES, *, types: list[str] = TYPES) -> EvaluationResult:
    return result_of([route(i, score, kind=kind) for i, (score, kind) in enumerate(zip(scores, types, strict=True))])


def verdict(candidate: EvaluationResult, champion: EvaluationResult | None = None, **gate: float) -> Verdict:
    """The gate (``GATE`` with ``gate`` changed) on ``candidate``, compared with ``champion`` if given."""
    return decide(candidate, compare(candidate, champion, resamples=1000) if champion else None,
                  GATE.model_copy(update=gate))


def failed(result: Verdict) -> list[str]:
    return [check.name for check in result.checks if not check.passed]


def test_a_good_candidate_passes_every_check() -> None:
    result = verdict(evaluation(), evaluation())
    assert result.passed and result.reasons == ()
    assert [c.name for c in result.checks] == ["evaluation complete", "driving score", "success rate",
                                               "route completion", "collisions per km", "versus champion",
                                               "scenario type A", "scenario type B"]
    assert result.paired_difference == 0.0 and result.paired_low == 0.0


def test_first_candidate_is_judged_on_thresholds_alone() -> None:
    result = verdict(evaluation())
    assert result.passed and result.paired_difference is None and len(result.checks) == 5


def test_low_driving_score_fails() -> None:
    # every route completed, with a penalty: DS 55, success and completion untouched
    candidate = evaluation()
    candidate = result_of([r.__class__(**{**r.to_json(), "infractions": (), "driving_score": 55.0,
                                          "record": r.record}) for r in candidate.routes])
    assert failed(verdict(candidate)) == []  # scores come from the records, not from the rows
    penalized = [route(i, 100.0) for i in range(16)]
    for r in penalized:
        assert r.record is not None
        r.record["infractions"] = {"red_light": 2}  # 0.7 ** 2 = 0.49
    result = verdict(result_of(penalized))
    assert "driving score" in failed(result) and "route completion" not in failed(result)
    assert "driving score 49.0 < minimum 60.0" in result.reasons


def test_low_success_rate_fails() -> None:
    # 9 of 16 routes stopped at 80 % (DS 80 each): DS 88.75, RC 88.75, success 43.75 %
    result = verdict(evaluation([80.0] * 9 + [100.0] * 7))
    assert failed(result) == ["success rate"]
    assert "success rate 43.8 < minimum 50.0" in result.reasons


def test_low_route_completion_fails() -> None:
    # half the routes at 40 %: RC 70 passes exactly; at 38 % it fails (and DS with it)
    assert "route completion" not in failed(verdict(evaluation([40.0] * 8 + [100.0] * 8)))
    result = verdict(evaluation([38.0] * 8 + [100.0] * 8))
    assert "route completion" in failed(result)


def test_too_many_collisions_per_km_fails() -> None:
    routes = [route(i, 100.0) for i in range(16)]
    for r in routes[:4]:
        assert r.record is not None
        r.record["infractions"] = {"collision_vehicle": 1}  # 4 collisions over 1.6 km: 2.5 / km
    crashed = [r.__class__(**{**r.to_json(), "infractions": (InfractionEvent("collision_vehicle", 1.0, 0, 0),)})
               if r.index < 4 else r for r in routes]
    result = verdict(result_of(crashed))
    assert "collisions per km" in failed(result)
    assert "collisions per km 2.50 > maximum 2.00" in result.reasons


def test_worse_than_the_champion_beyond_the_margin_fails() -> None:
    champion = evaluation()
    # every route 10 points worse (routes stopped at 90 %: no success, which this test leaves out of the gate):
    # the whole interval is at -10
    result = verdict(evaluation([90.0] * 16), champion, min_success_rate=0.0)
    assert failed(result) == ["versus champion"]
    assert result.paired_difference == pytest.approx(-10.0) and result.paired_low == pytest.approx(-10.0)
    assert result.reasons[0].startswith("paired driving-score difference to the champion -10.0")
    # 3 points worse on average: within the margin
    assert verdict(evaluation([97.0] * 16), champion, min_success_rate=0.0).passed


def test_the_champion_test_uses_the_interval_not_the_mean() -> None:
    champion = evaluation()
    # mean difference -4 (inside the 5-point margin) but from two routes 32 points worse: the interval reaches
    # well below -5, so the gate cannot tell the candidate is not worse
    scores = [68.0, 68.0] + [100.0] * 14
    result = verdict(evaluation(scores), champion, min_success_rate=0.0)
    assert result.paired_difference == pytest.approx(-4.0)
    assert result.paired_low is not None and result.paired_low < -5.0
    assert "versus champion" in failed(result)


def test_a_regressing_scenario_type_fails() -> None:
    champion = evaluation()
    # type B lost 12 points per route (beyond the 10-point tolerance); the mean over all routes is only -6 but
    # the champion margin is widened so that only the per-type rule can fail
    scores = [100.0] * 8 + [88.0] * 8
    result = verdict(evaluation(scores), champion, champion_margin=20.0)
    assert failed(result) == ["scenario type B"]
    assert result.reasons == ("B: mean paired driving-score difference -12.0 < -10.0",)


def test_a_type_of_too_few_routes_is_judged_with_all_routes_only() -> None:
    # one route of type C lost 40 points: the type's mean is that route's luck, below type_min_routes
    types = ["A"] * 8 + ["B"] * 7 + ["C"]
    champion = evaluation(types=types)
    result = verdict(evaluation([100.0] * 15 + [60.0], types=types), champion, champion_margin=20.0)
    assert result.passed and "scenario type C" not in [check.name for check in result.checks]
    strict = verdict(evaluation([100.0] * 15 + [60.0], types=types), champion, champion_margin=20.0,
                     type_min_routes=1)
    assert failed(strict) == ["scenario type C"]


def test_a_simulator_crash_fails_the_gate() -> None:
    routes = [route(i, 100.0) for i in range(15)] + [route(15, 0.0, status=SIMULATION_CRASHED)]
    result = verdict(result_of(routes))
    assert "evaluation complete" in failed(result)
    assert "1 of 16 routes crashed the simulator" in result.reasons[0]
