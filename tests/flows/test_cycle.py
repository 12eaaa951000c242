"""The whole loop through the real Prefect engine and a real MLflow SQLite store (quick profile)."""

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

import sim  # noqa: F401  (registers the environment ids)
from autoloop.config import AutoloopConfig, load_config
from autoloop.episodes import EpisodeStore, load_snapshot
from autoloop.stages import CycleSummary
from flows.cycle import cycle_flow
from flows.stages import promote_flow

MODEL = "autoloop-driver"


@dataclass(frozen=True)
class Loop:
    home: Path
    config: AutoloopConfig
    first: CycleSummary
    second: CycleSummary
    client: MlflowClient


@pytest.fixture(scope="module")
def loop(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Loop:
    pytest.MonkeyPatch().delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path_factory.mktemp("autoloop-home")
    config = load_config(profile="quick")
    first = cycle_flow(profile="quick", home=str(home))
    second = cycle_flow(profile="quick", home=str(home))
    client = MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db")
    return Loop(home, config, first, second, client)


def test_first_cycle_registers_a_champion_with_metrics_and_lineage(loop: Loop) -> None:
    assert loop.first.passed, loop.first.reasons
    assert loop.first.registered_version == "1"
    assert loop.first.champion_before is None
    assert loop.first.episodes == loop.config.collect.episodes
    version = loop.client.get_model_version(MODEL, "1")
    run = loop.client.get_run(version.run_id)
    assert run.data.metrics["driving_score"] == pytest.approx(loop.first.driving_score)
    assert "val_loss" in run.data.metrics
    inputs = run.inputs.dataset_inputs
    assert [i.dataset.digest for i in inputs] == [loop.first.dataset_digest[:32]]
    assert version.tags["dataset_digest"] == loop.first.dataset_digest
    assert float(version.tags["driving_score"]) == pytest.approx(loop.first.driving_score, abs=0.01)


def test_second_cycle_is_compared_with_the_first_champion(loop: Loop) -> None:
    second = loop.second
    assert second.champion_before == f"models:/{MODEL}/1"
    assert second.champion_driving_score is not None and second.paired_difference is not None
    aliases = {alias: str(version) for alias, version in loop.client.get_registered_model(MODEL).aliases.items()}
    # the second candidate ran its whole evaluation: registered as version 2, the challenger; champion if it passed
    assert second.registered_version == "2"
    assert aliases == ({"challenger": "2", "champion": "2", "previous-champion": "1"} if second.passed else
                       {"challenger": "2", "champion": "1"})
    assert second.promoted == second.passed
    tags = loop.client.get_model_version(MODEL, "2").tags
    assert tags["verdict"] == ("passed" if second.passed else "failed") and tags["compared_with"] == "1"
    # the second collection drove new scenarios and its dataset also holds the first one's episodes
    snapshot = load_snapshot(loop.home / "datasets" / f"{second.dataset_digest}.json")
    assert len(snapshot.episode_ids) == loop.config.collect.dataset_episodes
    seeds = [EpisodeStore(loop.home / "episodes").metadata()[e]["scenario"]["traffic_seed"]
             for e in snapshot.episode_ids]
    assert sorted(seeds) == list(range(2 * loop.config.collect.episodes))


def test_stage_runs_nest_under_their_cycle_run(loop: Loop) -> None:
    for summary in (loop.first, loop.second):
        experiment = loop.client.get_experiment_by_name(loop.config.registry.experiment)
        children = loop.client.search_runs(
            [experiment.experiment_id], f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{summary.cycle_run_id}'")
        assert sorted(r.data.tags["autoloop.stage"] for r in children) == ["collect", "evaluate", "promote", "train"]
        assert all(r.info.status == "FINISHED" for r in children)
        assert loop.client.get_run(summary.cycle_run_id).info.status == "FINISHED"


def test_mlflow_runs_name_the_prefect_flow_runs_that_ran_them(loop: Loop) -> None:
    from prefect.client.orchestration import get_client

    experiment = loop.client.get_experiment_by_name(loop.config.registry.experiment)
    runs = loop.client.search_runs([experiment.experiment_id], f"tags.`{MLFLOW_PARENT_RUN_ID}` = "
                                                               f"'{loop.first.cycle_run_id}'")
    runs.append(loop.client.get_run(loop.first.cycle_run_id))
    with get_client(sync_client=True) as client:
        for run in runs:
            flow_run = client.read_flow_run(run.data.tags["prefect.flow_run_id"])
            stage = run.data.tags["autoloop.stage"]
            assert flow_run.name == run.data.tags["prefect.flow_run_name"]
            assert flow_run.name.startswith(stage), (stage, flow_run.name)


def test_the_cycle_run_carries_its_summary(loop: Loop) -> None:
    for summary in (loop.first, loop.second):
        run = loop.client.get_run(summary.cycle_run_id)
        assert run.data.params["dataset_digest"] == summary.dataset_digest
        assert run.data.params["verdict"] == ("passed" if summary.passed else "failed")
        assert run.data.metrics["driving_score"] == pytest.approx(summary.driving_score)
        assert run.data.metrics["episodes"] == summary.episodes


def test_champion_loads_by_alias_and_drives(loop: Loop) -> None:
    mlflow.set_tracking_uri(f"sqlite:///{loop.home}/mlflow.db")
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    env = gym.make("autoloop/Junction-v0", bev=loop.config.sim.bev())  # the BEV the model was trained on
    obs, _ = env.reset(seed=123)
    actions = model.predict({"bev": obs["bev"][None], "state": obs["state"][None]})
    assert actions.shape == (1, 2) and actions.dtype == np.float32
    assert env.action_space.contains(actions[0])


def test_evaluation_episodes_are_stored_for_replay(loop: Loop) -> None:
    metadata = EpisodeStore(loop.home / "episodes").metadata("sim")
    evaluated = [m for m in metadata.values() if m["tags"]["purpose"] == "eval"]
    # cycle 1: the candidate; cycle 2: the candidate, compared with the champion on the same held-out scenarios,
    # whose evaluation there is the first cycle's, reused from its checkpoint
    assert len(evaluated) == 2 * loop.config.evaluate.episodes
    assert {m["tags"]["suite"] for m in evaluated} == {"heldout"}
    seeds = {m["scenario"]["traffic_seed"] for m in evaluated}
    assert seeds == set(range(loop.config.evaluate.seed, loop.config.evaluate.seed + loop.config.evaluate.episodes))


def test_flow_runs_completed_in_prefect(loop: Loop) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
        flows = {flow.id: flow.name for flow in client.read_flows()}
    names = sorted(flows[run.flow_id] for run in runs if run.state and run.state.is_completed())
    for name in ("cycle", "collect", "train", "evaluate", "promote"):
        assert names.count(name) >= 2, names


def test_a_failing_gate_promotes_nothing_and_says_why(loop: Loop, tmp_path: Path) -> None:
    impossible = tmp_path / "impossible.yaml"
    impossible.write_text("profile: quick\ngate: {min_driving_score: 101.0}\n")
    before = loop.client.get_registered_model(MODEL)
    versions = len(loop.client.search_model_versions(f"name = '{MODEL}'"))
    result = promote_flow(loop.second.candidate_uri, config_file=str(impossible), home=str(loop.home))
    assert not result.verdict.passed and not result.promoted
    assert any(reason.startswith("driving score") and "< minimum 101.0" in reason for reason in result.verdict.reasons)
    # the model keeps the version it was registered as (registering is idempotent), now the challenger with the
    # new verdict; the champion stays
    assert result.registered is not None and result.registered.version == loop.second.registered_version
    assert len(loop.client.search_model_versions(f"name = '{MODEL}'")) == versions
    after = loop.client.get_registered_model(MODEL).aliases
    assert after["champion"] == before.aliases["champion"]
    assert str(after["challenger"]) == loop.second.registered_version
    tags = loop.client.get_model_version(MODEL, result.registered.version).tags
    assert tags["verdict"] == "failed" and "minimum 101.0" in tags["reasons"]
    run = loop.client.get_run(result.run_id)
    assert run.data.tags["autoloop.verdict"] == "failed"
    assert "minimum 101.0" in run.data.tags["autoloop.reasons"]


def test_flow_artifacts_link_the_evaluation_reports(loop: Loop) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
    for key in ("evaluate-summary", "promote-summary", "cycle-summary"):
        texts = [str(a.data) for a in artifacts if a.key == key]
        assert texts and all("report.html" in text for text in texts), key
    report = Path(loop.second.report_uri.removeprefix("file://"))
    assert report.is_file() and "Versus the champion" in report.read_text()
