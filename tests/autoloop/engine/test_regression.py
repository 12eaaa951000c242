"""The regression suite: a failed route enters once, every candidate drives it, and the gate holds back a candidate
that fails a route the champion passes."""

from __future__ import annotations

from pathlib import Path

from autoloop.config import EvaluateConfig, GateConfig, SimConfig
from autoloop.engine.failures import Failure, evaluation_failures
from autoloop.engine.generate import scenario_hash
from autoloop.engine.regression import RegressionSuite, with_regression
from autoloop.episodes import EpisodeStore
from autoloop.evaluation import COMPLETED, RouteResult, aggregate, compare, run_evaluation
from autoloop.gating import decide
from autoloop.rollout import expert_driver
from sim.scenarios import sample_scenario
from sim.scenarios.suites import Suite


def _route(index: int, failed: bool) -> RouteResult:
    return RouteResult(index=index, scenario_seed=index, scenario_type="Route", town="junction4-60",
                       episode_id=f"e{index}", status="Failed - Agent timed out" if failed else COMPLETED,
                       driving_score=30.0 if failed else 100.0, route_completion=30.0 if failed else 100.0,
                       infraction_penalty=1.0)


def test_a_failed_route_enters_once_and_the_next_candidate_drives_it(tmp_path: Path) -> None:
    base = Suite("heldout", 0, tuple(sample_scenario(seed) for seed in (1_000_000, 1_000_001)))
    failed_elsewhere = sample_scenario(1_000_002)
    held = Suite("earlier", 0, (failed_elsewhere,))
    result = aggregate([_route(0, failed=True)], policy="models:/m/1", suite=held.name,
                       suite_hash=held.content_hash, scorer="lb2")
    failures = evaluation_failures(result, held, failing_ds=80.0)
    assert [f.key for f in failures] == [scenario_hash(failed_elsewhere)]

    regression = RegressionSuite(tmp_path / "regression")
    assert regression.add(failures) == failures
    assert regression.add(failures) == []  # (by content hash: once)
    again = Failure(**{**vars(failures[0]), "reason": "the same route failed again by another champion"})
    assert regression.add([again]) == []
    store = EpisodeStore(tmp_path / "episodes")
    kept = regression.routes(store)
    assert [f.key for f in kept] == [failures[0].key] and len(list((tmp_path / "regression").glob("*.json"))) == 1

    suite = with_regression(base, kept)
    assert suite.name == "heldout+regression" and suite.scenarios[:2] == base.scenarios
    assert suite.scenarios[2] == failed_elsewhere and suite.regression == (2,)
    # a regression route already in the fixed suite is marked there, not driven twice
    inside = with_regression(base, [Failure(**{**vars(failures[0]), "scenario": base.scenarios[1]})])
    assert inside.regression == (1,) and inside.content_hash == base.content_hash and inside.name == base.name

    evaluated = run_evaluation(suite, expert_driver, policy_name="expert", identity="expert", sim=SimConfig(),
                               settings=EvaluateConfig(suite=None, routes=None), store=store,
                               checkpoint=tmp_path / "evaluation.jsonl")
    assert len(evaluated.routes) == 3 and evaluated.routes[2].episode_id is not None
    assert store.metadata()[evaluated.routes[2].episode_id]["scenario"]["traffic_seed"] == 1_000_002


def test_the_gate_holds_back_a_candidate_that_fails_a_route_the_champion_passes() -> None:
    suite = Suite("heldout+regression", 0, tuple(sample_scenario(seed) for seed in range(1_000_000, 1_000_004)),
                  regression=(2, 3))
    champion = aggregate([_route(i, failed=i == 3) for i in range(4)], policy="champion", suite=suite.name,
                         suite_hash=suite.content_hash, scorer="lb2")
    candidate = aggregate([_route(i, failed=i == 2) for i in range(4)], policy="candidate", suite=suite.name,
                          suite_hash=suite.content_hash, scorer="lb2")
    comparison = compare(candidate, champion, resamples=200, confidence=0.95, seed=0)
    gate = GateConfig(min_driving_score=0.0, min_route_completion=0.0, champion_margin=100.0, type_tolerance=100.0)

    verdict = decide(candidate, comparison, gate, champion=champion, regression=suite.regression)
    assert not verdict.passed
    assert verdict.reasons == ("regression suite: the candidate fails 1 of the 1 regression routes the champion "
                               "passes (routes 2); at most 0 allowed (10 %)",)
    # within the tolerance it passes; without regression routes there is no such check
    lenient = gate.model_copy(update={"regression_tolerance": 100.0})
    assert decide(candidate, comparison, lenient, champion=champion, regression=suite.regression).passed
    assert "regression suite" not in [c.name for c in decide(candidate, comparison, gate, champion=champion).checks]
