"""Two cycles of the engine on a home with the shared AV2 logs ingested: fleet moments become log replays and
generated scenarios, the regression suite keeps them, the second cycle's champion shadows the fleet logs, fine-tunes
from the champion, and the promotion says what changed in the data. Failures that can no longer become scenarios
are skipped with their reasons."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from autoloop import stages, tracking
from autoloop.config import AutoloopConfig, load_config
from autoloop.context import open_context
from autoloop.engine.failures import moment_failures
from autoloop.engine.ledger import Ledger
from autoloop.engine.regression import RegressionSuite
from autoloop.episodes import EpisodeStore
from autoloop.fleet.ingest import ingest
from autoloop.fleet.mining import Trigger
from autoloop.paths import Paths
from sim.scenarios import sample_scenario
from tests.autoloop.av2_logs import logs

TINY = {"collect": {"episodes": 6, "dataset_episodes": None},
        "train": {"epochs": 1, "finetune_epochs": 1, "batch_size": 64, "width": 4, "hidden": 16, "threads": 1},
        "evaluate": {"episodes": 2, "report_clips": 0, "bootstrap_resamples": 100},
        "gate": {"min_driving_score": 0.0, "min_route_completion": 0.0, "max_collisions_per_km": 1e6,
                 "champion_margin": 100.0, "type_tolerance": 100.0, "regression_tolerance": 100.0},
        "engine": {"fleet_moments": 1, "generated_per_moment": 1, "shadow_episodes": 2}}


@dataclass(frozen=True)
class Cycles:
    home: Path
    config: AutoloopConfig
    collected: list[stages.CollectResult]
    trained: list[stages.TrainOutcome]
    promoted: list[stages.PromotionResult]
    client: mlflow.MlflowClient


@pytest.fixture(scope="module")
def cycles(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Cycles:
    pytest.MonkeyPatch().delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path_factory.mktemp("engine-home")
    paths = Paths(home)
    report = ingest(logs(shared_data), EpisodeStore(paths.episodes), paths.quarantine)
    assert report.logs >= 2
    config = load_config(profile="quick", overrides=TINY)
    collected, trained, promoted = [], [], []
    for _ in range(2):
        context = stages.start_cycle(open_context(config, paths=paths))
        collected.append(stages.collect(context))
        trained.append(stages.train(context, collected[-1].snapshot))
        evaluation = stages.evaluate(context, trained[-1].model.model_uri)
        promoted.append(stages.promote(context, trained[-1].model, evaluation))
        stages.finish_cycle(context)
    return Cycles(home, config, collected, trained, promoted, mlflow.MlflowClient())


def _artifact(cycles: Cycles, run_id: str, name: str) -> dict[str, object]:
    path = cycles.client.download_artifacts(run_id, name, str(cycles.home / "downloads" / run_id))
    loaded: dict[str, object] = json.loads(Path(path).read_text())
    return loaded


def test_fleet_moments_become_replays_and_generated_scenarios_kept_in_the_regression_suite(cycles: Cycles) -> None:
    first = _artifact(cycles, cycles.collected[0].run_id, "collection.json")
    episodes = first["episodes"]
    assert isinstance(episodes, list)
    parts = [episode["part"] for episode in episodes]
    assert parts.count("fleet") == 1 and len(parts) == 6
    moment = next(episode for episode in episodes if episode["part"] == "fleet")
    assert str(moment["reason"]).startswith("fleet ") and " in av2" in str(moment["reason"])
    generated = [e for e in episodes if e["part"] == "generated"]
    assert all(str(moment["reason"]) in str(e["reason"]) for e in generated)
    assert len(generated) + len(first["left_out"]) >= 1  # (generated, or refused with its reason)  # type: ignore[arg-type]
    regression = RegressionSuite(Paths(cycles.home).engine / "regression").entries()
    assert any(entry.source == "fleet" and entry.reason == moment["reason"] for entry in regression)
    # the snapshot has a part per reason, the failures weighted
    snapshot = cycles.collected[0].snapshot
    weights = {part.name.split("-")[0]: part.weight for part in snapshot.parts}
    assert weights["breadth"] == 1.0 and weights["fleet"] == cycles.config.engine.failure_weight
    assert weights["fleet"] == 2.0 and any(part.reason == moment["reason"] for part in snapshot.parts)
    # the dataset accumulates: the second snapshot holds the first one's episodes
    assert set(snapshot.episode_ids) < set(cycles.collected[1].snapshot.episode_ids)


def test_the_second_cycle_shadows_fine_tunes_and_says_what_changed(cycles: Cycles) -> None:
    shadow = _artifact(cycles, cycles.collected[1].run_id, "shadow.json")
    assert shadow["champion"] == "models:/autoloop-driver/1"
    logs_scored = shadow["logs"]
    assert isinstance(logs_scored, list) and len(logs_scored) == 2
    assert all(summary["steps"] > 0 and 0.0 <= summary["score"] <= 1.0 for summary in logs_scored)
    metrics = cycles.client.get_run(cycles.collected[1].run_id).data.metrics
    assert "shadow_fde_m" in metrics and "shadow_collision_rate" in metrics
    used = Ledger(Paths(cycles.home).engine).used()
    assert sum(key.startswith("shadow:") for key in used) == 2

    first, second = (cycles.client.get_run(t.model.run_id).data for t in cycles.trained)
    assert first.tags["autoloop.init"] == "no champion yet: training from scratch"
    assert second.tags["autoloop.init"].startswith("warm start from models:/autoloop-driver/1")
    assert second.params["init_from"] == "models:/autoloop-driver/1"

    promotion = cycles.promoted[1]
    assert promotion.registered is not None
    tags = cycles.client.get_model_version("autoloop-driver", promotion.registered.version).tags
    assert tags["data_changes"].startswith("+6 episodes since models:/autoloop-driver/1 (")


def test_failures_that_can_no_longer_become_scenarios_are_skipped_with_the_reason(cycles: Cycles,
                                                                                     tmp_path: Path) -> None:
    store = EpisodeStore(Paths(cycles.home).episodes)
    gone = Trigger(kind="hard_brake", step=3, time_s=0.3, x_m=0.0, y_m=0.0, value=-5.0)
    failures, skipped = moment_failures(store, [("fleet-no-such-episode", gone)], source="fleet", limit=4)
    assert failures == [] and len(skipped) == 1
    assert skipped[0].startswith("fleet moment fleet-no-such-episode@3:hard_brake skipped: ")
    # a regression route whose map is gone is left out, the others stay
    suite = RegressionSuite(tmp_path / "regression")
    [entry] = RegressionSuite(Paths(cycles.home).engine / "regression").entries()[:1]
    lost = type(entry)(**{**vars(entry), "key": "lost", "scenario": sample_scenario(1).model_copy(
        update={"map_name": "av2:no-such-log"})})
    suite.add([entry, lost])
    assert [kept.key for kept in suite.routes(store)] == [entry.key]
    assert tracking.CHAMPION == "champion"
