"""Scenarios generated from a fleet trigger: the AV2 forecasting log's hard brake, replayed reactively and along
its recorded tracks, perturbed within bounds, staged or refused with the reason."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from autoloop.config import PerturbationConfig
from autoloop.engine.generate import (
    MIN_ROUTE_LEFT_M,
    Generated,
    Refused,
    generate,
    perturb,
    scenario_hash,
)
from autoloop.fleet.av2 import read_log
from autoloop.fleet.mining import mine, replay_scenario
from sim.embedded.world import World
from sim.maps import get_map
from sim.scenarios import Scenario
from sim.scenarios.events import LogReplay, ReplayActor
from sim.scenarios.suites import scenario_slots
from tests.autoloop.av2_logs import log_map

BOUNDS = PerturbationConfig()
TRIGGER_LOG = "forecasting/0a1e6f0a-1817-4a98-b02e-db8c9327d151"


@pytest.fixture(scope="module", params=[True, False], ids=["reactive", "non-reactive"])
def parent(request: pytest.FixtureRequest, shared_data: Path) -> Scenario:
    """The log's hard brake as a replay from a second before it (reactive, then along the recorded tracks)."""
    log_dir = shared_data / "av2" / TRIGGER_LOG
    episode = read_log(log_dir)
    trigger = next(t for t in mine(episode) if t.kind == "hard_brake")
    return replay_scenario(episode, map_name=log_map(log_dir).name, start_step=max(trigger.step - 10, 0),
                           reactive=request.param)


def _replay(scenario: Scenario) -> LogReplay:
    [event] = scenario.events
    assert isinstance(event, LogReplay)
    return event


def _generated(results: list[Generated | Refused]) -> list[Generated]:
    return [r for r in results if isinstance(r, Generated)]


def _check_actor(before: ReplayActor, after: ReplayActor, applied: dict[str, float]) -> None:
    """``after`` is ``before`` moved, sped up and shifted in time by the amounts ``applied`` says, within BOUNDS."""
    key = before.actor_id
    scale, along, across = (applied[f"{key}.{name}"] for name in ("speed_scale", "longitudinal_m", "lateral_m"))
    assert 1.0 - BOUNDS.speed_scale <= scale <= 1.0 + BOUNDS.speed_scale
    assert abs(along) <= BOUNDS.longitudinal_m and abs(across) <= BOUNDS.lateral_m
    heading = np.array([math.cos(before.yaw_rad), math.sin(before.yaw_rad)])
    left = np.array([-heading[1], heading[0]])
    offset = along * heading + across * left
    if not before.track:
        assert f"{key}.time_shift_s" not in applied
        moved = np.array([after.x_m - before.x_m, after.y_m - before.y_m])
        assert moved @ heading == pytest.approx(along, abs=1e-9) and moved @ left == pytest.approx(across, abs=1e-9)
        assert after.speed_mps == pytest.approx(before.speed_mps * scale)
        assert after.yaw_rad == before.yaw_rad
        return
    shift = applied[f"{key}.time_shift_s"]
    assert abs(shift) <= BOUNDS.time_shift_s
    old, new = np.array(before.track), np.array(after.track)
    assert np.all(np.diff(new[:, 0]) > 0.0) and new[0, 0] >= 0.0
    expected_t = old[0, 0] + (old[:, 0] - old[0, 0]) / scale + shift  # (a track wholly before 0 keeps its end)
    kept = expected_t > 0.0
    if expected_t[0] >= 0.0:  # the whole track, moved in time
        assert len(new) == len(old)
    else:  # cut at the replay's start: its state there, then the samples after it
        assert new[0, 0] == 0.0 and len(new) == 1 + kept.sum()
        new, old, expected_t = new[1:], old[kept], expected_t[kept]
    assert new[:, 0] == pytest.approx(expected_t, abs=1e-9)
    assert new[:, 1:3] == pytest.approx(old[:, 1:3] + offset, abs=1e-9)
    assert new[:, 3] == pytest.approx(old[:, 3])
    assert new[:, 4] == pytest.approx(old[:, 4] * scale)
    assert (after.x_m, after.y_m, after.yaw_rad, after.speed_mps) == tuple(after.track[0][1:])


def test_generated_scenarios_keep_the_route_and_actors_and_stay_within_the_bounds(parent: Scenario) -> None:
    results = generate(parent, 8, bounds=BOUNDS, seed=0)
    generated = _generated(results)
    assert len(results) == 8 and len(generated) >= 6, [r for r in results if isinstance(r, Refused)]
    before = _replay(parent)
    for result in generated:
        scenario, applied = result.scenario, result.applied
        assert result.parent_hash == scenario_hash(parent) and result.seed == 0
        assert (scenario.map_name, scenario.route, scenario.end_s_m, scenario.waypoints) == \
            (parent.map_name, parent.route, parent.end_s_m, parent.waypoints)
        assert 0.0 <= applied["ego_start_m"] <= BOUNDS.ego_start_m
        assert scenario.start_s_m == pytest.approx(parent.start_s_m + applied["ego_start_m"])
        assert scenario.end_s_m - scenario.start_s_m >= MIN_ROUTE_LEFT_M
        after = _replay(scenario)
        assert abs(applied["ego_speed_scale"] - 1.0) <= BOUNDS.ego_speed_scale
        assert after.ego_speed_mps == pytest.approx(before.ego_speed_mps * applied["ego_speed_scale"])
        assert after.reactive == before.reactive and after.trigger_s_m == before.trigger_s_m
        assert [(a.actor_id, a.kind, a.length_m, a.width_m) for a in after.actors] == \
            [(a.actor_id, a.kind, a.length_m, a.width_m) for a in before.actors]
        assert any(a.track for a in after.actors) == (not before.reactive)
        for old, new in zip(before.actors, after.actors, strict=True):
            _check_actor(old, new, applied)
        assert len(applied) == 2 + sum(4 if a.track else 3 for a in before.actors)


def test_generation_is_deterministic_from_the_seed(parent: Scenario) -> None:
    first = generate(parent, 4, bounds=BOUNDS, seed=7)
    assert generate(parent, 4, bounds=BOUNDS, seed=7) == first
    hashes = [scenario_hash(g.scenario) for g in _generated(first)]
    others = [scenario_hash(g.scenario) for g in _generated(generate(parent, 4, bounds=BOUNDS, seed=8))]
    assert len(set(hashes)) == len(hashes) and not set(hashes) & set(others)
    # one draw is perturb with the generator seeded [seed, k]
    variant, applied = perturb(parent, BOUNDS, np.random.default_rng([7, 2]))
    assert isinstance(first[2], Generated) and (first[2].scenario, first[2].applied) == (variant, applied)


def test_each_draw_stages_or_is_refused_with_its_reason(parent: Scenario) -> None:
    graph = get_map(parent.map_name)
    far = PerturbationConfig(ego_start_m=parent.end_s_m)  # most draws start the ego too close to the end
    results = generate(parent, 10, bounds=far, seed=1)
    refused = [r for r in results if isinstance(r, Refused)]
    assert refused and _generated(results)
    for result in refused:
        assert result.reason.startswith("ego start moved") and f"{MIN_ROUTE_LEFT_M} m must remain" in result.reason
        assert (result.parent_hash, result.seed) == (scenario_hash(parent), 1)
    for kept in _generated(results):  # what generate keeps stages in a world of its own
        World(graph, 1, scenario_slots([kept.scenario])).reset([kept.scenario])
    nowhere = parent.model_copy(update={"map_name": "no-such-map"})
    lost = generate(nowhere, 3, bounds=BOUNDS, seed=0)
    assert len(lost) == 3 and all(isinstance(r, Refused) and "'no-such-map' does not load" in r.reason for r in lost)
    with pytest.raises(ValueError, match="no LogReplay event"):
        generate(parent.model_copy(update={"events": ()}), 1, bounds=BOUNDS, seed=0)


def test_a_world_that_cannot_stage_a_draw_refuses_it_with_the_worlds_reason(parent: Scenario) -> None:
    past_the_route = parent.model_copy(update={"end_s_m": 10_000.0})  # the route is far shorter
    [refused] = generate(past_the_route, 1, bounds=BOUNDS, seed=0)
    assert isinstance(refused, Refused) and refused.reason.startswith("does not stage: scenario route spans")


def test_scenario_hash_is_stable_through_serialisation_and_changes_with_a_perturbation(parent: Scenario) -> None:
    identity = scenario_hash(parent)
    assert len(identity) == 16 and int(identity, 16) >= 0
    assert scenario_hash(parent.model_copy()) == identity
    assert scenario_hash(Scenario.from_yaml(parent.to_yaml())) == identity
    assert scenario_hash(Scenario.model_validate_json(parent.model_dump_json())) == identity
    variant, _ = perturb(parent, BOUNDS, np.random.default_rng(0))
    assert scenario_hash(variant) != identity
    assert scenario_hash(Scenario.from_yaml(variant.to_yaml())) == scenario_hash(variant)
    with pytest.raises(ValueError, match="no LogReplay event"):
        perturb(parent.model_copy(update={"events": ()}), BOUNDS, np.random.default_rng(0))
