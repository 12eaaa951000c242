"""Targeting: an evaluation's failures steer the next collection's plan, by the configured weights."""

from __future__ import annotations

import pytest

from autoloop.engine.failures import Failure
from autoloop.engine.ledger import find
from autoloop.engine.plan import TYPES, failure_weights, plan_collection, rate_weights
from autoloop.evaluation import COMPLETED, RouteResult, aggregate
from sim.scenarios import Scenario, sample_scenario
from sim.scenarios.suites import TOWN_LAYOUTS, Suite

FLOOR = 0.01
SHARE = 0.5


def _evaluation(failing: str) -> tuple[Suite, list[RouteResult]]:
    """Two routes of each of four types on two town layouts; both routes of ``failing`` time out."""
    kinds = ["HardBreakRoute", "PedestrianCrossing", "ParkedObstacle", "Route"]
    scenarios, routes = [], []
    for index in range(8):
        kind = kinds[index // 2]
        town = ("town-9001", "town-grid-9002")[index % 2]
        scenarios.append(sample_scenario(index))
        failed = kind == failing
        routes.append(RouteResult(
            index=index, scenario_seed=index, scenario_type=kind, town=town, episode_id=f"e{index}",
            status="Failed - Agent timed out" if failed else COMPLETED, driving_score=20.0 if failed else 100.0,
            route_completion=20.0 if failed else 100.0, infraction_penalty=1.0))
    return Suite("test", 1, tuple(scenarios)), routes


def _draw(kind: str | None, place: str, seed: int) -> Scenario:
    scenario = sample_scenario(seed % 50)
    return scenario.model_copy(update={"traffic_seed": seed, "light_offset_s": float(len(kind or "") + len(place))})


def test_a_failing_type_gets_more_than_its_base_share_by_the_configured_weights() -> None:
    suite, routes = _evaluation("HardBreakRoute")
    result = aggregate(routes, policy="models:/x/1", suite=suite.name, suite_hash=suite.content_hash, scorer="lb2")
    findings = find([result], suite, failing_ds=80.0)
    assert [f.scenario_type for f in findings.failures] == ["HardBreakRoute", "HardBreakRoute"]
    assert findings.failures[0].place == "town" and findings.failures[1].place == "town-grid"
    assert "Failed - Agent timed out" in findings.failures[0].reason

    weights = failure_weights(findings.failures, findings.evaluated, places=TOWN_LAYOUTS, floor=FLOOR)
    n = len(TYPES)
    # the only failing type: floor + (1 - n * floor) * rate / sum(rates), with rate 2/2 and sum 1
    assert weights.types["HardBreakRoute"] == pytest.approx(FLOOR + (1 - n * FLOOR))
    assert weights.types["PedestrianCrossing"] == pytest.approx(FLOOR)  # no failures: the floor, not zero
    assert sum(weights.types.values()) == pytest.approx(1.0)
    # each layout failed one of its four routes: equal weights; the layout without routes keeps the floor
    assert weights.places["town"] == pytest.approx(weights.places["town-grid"])
    assert weights.places["town-irregular"] == pytest.approx(FLOOR)
    # the effective share of the type in a collection: breadth's uniform part plus the targeted part
    share = (1 - SHARE) / n + SHARE * weights.types["HardBreakRoute"]
    assert share > 1 / n
    assert share == pytest.approx((1 - SHARE) / n + SHARE * (FLOOR + 1 - n * FLOOR))

    planned, notes = plan_collection(episodes=40, first_seed=100, failures=findings.failures, weights=weights,
                                     failure_share=SHARE, generated_per_moment=0, draw=_draw,
                                     generate=lambda *_: [])
    assert not notes
    parts = [item.part for item in planned]
    assert parts.count("targeted") == 20 and parts.count("breadth") == 20
    targeted = [item for item in planned if item.part == "targeted"]
    hard = sum("targeted: HardBreakRoute" in item.reason for item in targeted)
    # weight FLOOR + 1 - n * FLOOR (0.60 with 41 types): 20 draws give it far more than a uniform draw would
    # (binomial 20, 0.6: below 8 has probability < 0.03; the draw is fixed)
    assert hard >= 8 and hard > 20 * 5 / n
    assert [item.seed for item in planned] == list(range(100, 140))


def test_the_plan_is_deterministic_from_the_seed() -> None:
    suite, routes = _evaluation("ParkedObstacle")
    result = aggregate(routes, policy="p", suite=suite.name, suite_hash=suite.content_hash, scorer="lb2")
    findings = find([result], suite, failing_ds=80.0)
    weights = failure_weights(findings.failures, findings.evaluated, places=TOWN_LAYOUTS, floor=FLOOR)

    def plan(seed: int) -> list[tuple[str, str, str]]:
        planned, _ = plan_collection(episodes=24, first_seed=seed, failures=findings.failures, weights=weights,
                                     failure_share=SHARE, generated_per_moment=0, draw=_draw,
                                     generate=lambda *_: [])
        return [(item.part, item.reason, item.scenario.model_dump_json()) for item in planned]

    assert plan(7) == plan(7)
    assert plan(7) != plan(8)


def test_without_failures_or_with_the_engine_off_everything_is_breadth() -> None:
    suite, routes = _evaluation("HardBreakRoute")
    result = aggregate(routes, policy="p", suite=suite.name, suite_hash=suite.content_hash, scorer="lb2")
    findings = find([result], suite, failing_ds=80.0)
    weights = failure_weights(findings.failures, findings.evaluated, places=TOWN_LAYOUTS, floor=FLOOR)
    for failures, share in (((), SHARE), (findings.failures, 0.0)):
        planned, _ = plan_collection(episodes=10, first_seed=0, failures=list(failures),
                                     weights=weights if failures else None, failure_share=share,
                                     generated_per_moment=0, draw=_draw, generate=lambda *_: [])
        assert {item.part for item in planned} == {"breadth"}


def test_fleet_moments_come_first_with_their_generated_scenarios() -> None:
    moment = Failure(key="log@10:hard_brake", source="fleet", scenario_type="LogReplay", place="av2:x",
                     reason="fleet hard_brake in log at 1.0 s", scenario=sample_scenario(3))
    refused = "ego start moved past the end"

    def generate(scenario: Scenario, count: int, seed: int) -> list[tuple[Scenario | None, str]]:
        return [(scenario.model_copy(update={"start_s_m": scenario.start_s_m + 1.0}), "shifted"), (None, refused)]

    planned, notes = plan_collection(episodes=10, first_seed=0, failures=[moment], weights=None, failure_share=0.4,
                                     generated_per_moment=2, draw=_draw, generate=generate)
    assert [item.part for item in planned[:2]] == ["fleet", "generated"]
    assert planned[0].reason == moment.reason and moment.reason in planned[1].reason
    assert notes == [f"generated from {moment.key}: {refused}"]
    assert [item.part for item in planned[2:]] == ["breadth"] * 8


def test_a_floor_too_high_for_the_types_is_refused() -> None:
    with pytest.raises(ValueError, match=rf"floor 0\.1 for {len(TYPES)} weights"):
        rate_weights({}, {}, TYPES, floor=0.1)
