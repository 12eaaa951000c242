"""Scenario suites: deterministic, hashed, with every event type and held-out towns."""

from collections import Counter

import pytest

from sim.embedded.world import make_world
from sim.scenarios import Scenario
from sim.scenarios.suites import MAKERS, build_suite


def test_eval_suite_holds_every_event_type_several_times_on_held_out_towns() -> None:
    suite = build_suite("eval")
    assert len(suite.scenarios) >= 100
    kinds = Counter(suite.event_type(i) for i in range(len(suite.scenarios)))
    assert {kind: kinds[kind] for kind in MAKERS} == dict.fromkeys(MAKERS, 6)
    assert kinds["Route"] >= 12
    towns = {s.map_name for s in suite.scenarios}
    assert towns == {"town-9001", "town-grid-9002", "town-irregular-9003"}
    train = build_suite("train", routes=32)
    assert all(int(s.map_name.rsplit("-", 1)[1]) < 9000 for s in train.scenarios)
    assert not towns & {s.map_name for s in train.scenarios}
    # every scenario stages in a world sized by the suite
    for town, indices in suite.by_map().items():
        world = make_world(town, len(indices), suite.world_config())
        world.reset([suite.scenarios[i] for i in indices])


def test_suites_are_deterministic_and_identified_by_their_content() -> None:
    first, again = build_suite("smoke"), build_suite("smoke")
    assert first.scenarios == again.scenarios and first.content_hash == again.content_hash
    assert build_suite("train", routes=8, seed=1).content_hash != build_suite("train", routes=8, seed=2).content_hash
    changed = first.scenarios[0].model_copy(update={"traffic_seed": first.scenarios[0].traffic_seed + 1})
    other = type(first)(first.name, first.version, (changed, *first.scenarios[1:]))
    assert other.content_hash != first.content_hash
    for scenario in first.scenarios:  # each one survives YAML
        assert Scenario.from_yaml(scenario.to_yaml()) == scenario
    with pytest.raises(ValueError, match="unknown suite 'nightly'"):
        build_suite("nightly")
