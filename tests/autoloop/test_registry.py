"""The MLflow registry as the source of truth (real SQLite store): challenger/champion/previous-champion aliases,
rollback, concurrent promotions, the promote stage's tags and lineage, the CLI, and the champion loaded in a fresh
process driving the ``smoke`` suite."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from typer.testing import CliRunner

from autoloop import stages, tracking
from autoloop.cli import app
from autoloop.config import AutoloopConfig, load_config
from autoloop.context import StageContext, open_context
from autoloop.evaluation import COMPLETED
from autoloop.paths import Paths
from policies.bc import BcNet, BcNetConfig, BcPolicy
from sim.scene.observation import OBSERVATION_FORMAT, Observation, ObservationFormatError, observation_space

MODEL = "autoloop-driver"
#: A lenient gate: these drivers only accelerate; what is tested is the registry, not driving.
LENIENT = {"evaluate": {"suite": "smoke", "report_clips": 1, "bootstrap_resamples": 500},
           "gate": {"min_driving_score": 0.0, "min_route_completion": 0.0, "max_collisions_per_km": 1e6,
                    "champion_margin": 100.0, "type_tolerance": 100.0}}
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Registry:
    home: Path
    config: AutoloopConfig
    context: StageContext
    models: list[tracking.LoggedPolicy]
    client: MlflowClient

    @property
    def lock(self) -> tracking.RegistryLock:
        return tracking.registry_lock(self.context.paths)


def constant_policy(steer: float, accel: float, config: AutoloopConfig) -> BcPolicy:
    """A BC network whose output is the constant action ``(steer, accel)`` (zero last-layer weights)."""
    space = observation_space(config.sim.bev())
    channels, size, _ = space["bev"].shape
    net = BcNet(BcNetConfig(bev_channels=channels, bev_size_px=size, state_size=space["state"].shape[0], width=4,
                            hidden=8))
    last = net.head[-2]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.atanh(torch.tensor([steer, accel])))
    return BcPolicy(net)


def example_observation(config: AutoloopConfig) -> Observation:
    """One observation of zeros: the input example a model is logged with."""
    space = observation_space(config.sim.bev())
    return {"bev": np.zeros((1, *space["bev"].shape), np.uint8),
            "state": np.zeros((1, *space["state"].shape), np.float32)}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    pytest.MonkeyPatch().delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path_factory.mktemp("registry-home")
    config = load_config(profile="quick", overrides=LENIENT)
    context = open_context(config, paths=Paths(home))
    example = example_observation(config)
    models = []
    for n, (steer, accel) in enumerate([(0.0, 0.6), (0.05, 0.9), (0.0, 0.3), (-0.05, 0.5), (0.0, 0.8)]):
        with tracking.stage_run("train", experiment_id=context.experiment_id, parent_run_id=None):
            tracking.set_tags({"autoloop.dataset_digest": f"{n}" * 64})
            models.append(tracking.log_policy(constant_policy(steer, accel, config), home / f"policy-{n}.pt",
                                              example))
    return Registry(home, config, context, models, MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db"))


def aliases(registry: Registry, name: str) -> dict[str, str]:
    return {alias: str(version) for alias, version in registry.client.get_registered_model(name).aliases.items()}


def test_challenger_champion_previous_champion_and_rollback(registry: Registry) -> None:
    name, lock = "aliases", registry.lock
    first = tracking.register(registry.models[0].model_uri, name, lock=lock, tags={"k": "v"}, description="d")
    assert aliases(registry, name) == {"challenger": "1"}
    assert tracking.promote(first, expected_champion=None, lock=lock)
    second = tracking.register(registry.models[1].model_uri, name, lock=lock, tags={})
    assert not tracking.promote(second, expected_champion=None, lock=lock)  # stale: v1 is champion now
    assert tracking.promote(second, expected_champion="1", lock=lock)
    assert aliases(registry, name) == {"challenger": "2", "champion": "2", "previous-champion": "1"}
    third = tracking.register(registry.models[2].model_uri, name, lock=lock, tags={})
    assert tracking.promote(third, expected_champion="2", lock=lock)
    assert tracking.rollback(name, lock=lock) == ("3", "2")
    assert aliases(registry, name) == {"challenger": "3", "champion": "2", "previous-champion": "1"}
    assert registry.client.get_model_version(name, "3").tags["rolled_back"] == "true"
    assert tracking.rollback(name, lock=lock) == ("2", "1")
    assert aliases(registry, name) == {"challenger": "3", "champion": "1"}
    with pytest.raises(ValueError, match="no 'previous-champion'"):
        tracking.rollback(name, lock=lock)
    assert registry.client.get_model_version(name, "1").description == "d"


def test_two_concurrent_promotions_leave_exactly_one_champion_and_every_version(registry: Registry) -> None:
    name, lock = "concurrent", registry.lock
    base = tracking.register(registry.models[0].model_uri, name, lock=lock, tags={})
    assert tracking.promote(base, expected_champion=None, lock=lock)
    start = threading.Barrier(2)
    outcomes: dict[str, bool] = {}
    errors: list[BaseException] = []

    def promotion(model: tracking.LoggedPolicy) -> None:
        try:
            start.wait()
            ref = tracking.register(model.model_uri, name, lock=lock, tags={"model": model.model_id})
            outcomes[ref.version] = tracking.promote(ref, expected_champion="1", lock=lock)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=promotion, args=(model,)) for model in registry.models[1:3]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(outcomes) == ["2", "3"]  # both registered: no lost version
    winners = [version for version, won in outcomes.items() if won]
    assert len(winners) == 1  # exactly one champion; the other saw the champion move
    assert aliases(registry, name)["champion"] == winners[0]
    assert aliases(registry, name)["previous-champion"] == "1"
    assert len(registry.client.search_model_versions(f"name = '{name}'")) == 3


@pytest.fixture(scope="module")
def promoted(registry: Registry) -> list[stages.PromotionResult]:
    """Two candidates through the evaluate and promote stages (no Prefect): both become champion in turn."""
    results = []
    for model in registry.models[3:5]:
        evaluation = stages.evaluate(registry.context, model.model_uri)
        results.append(stages.promote(registry.context, model, evaluation))
    return results


def test_promote_stage_tags_versions_and_compares_with_the_champion(registry: Registry,
                                                                    promoted: list[stages.PromotionResult]) -> None:
    first, second = promoted
    assert first.promoted and first.registered is not None and first.comparison is None
    assert second.promoted and second.champion_before is not None and second.champion_before.version == "1"
    assert second.comparison is not None and len(second.comparison.routes) == 5
    assert aliases(registry, MODEL) == {"champion": "2", "challenger": "2", "previous-champion": "1"}
    version = registry.client.get_model_version(MODEL, "2")
    tags = version.tags
    assert tags["verdict"] == "passed" and tags["compared_with"] == "1"
    assert tags["suite"] == "smoke" and len(tags["suite_hash"]) == 16
    assert tags["dataset_digest"] == "4" * 64
    assert len(tags["git_sha"].removesuffix("-dirty")) == 40
    assert float(tags["driving_score"]) == pytest.approx(second.candidate.driving_score, abs=0.01)
    assert version.description.startswith("Evaluation report: the artifact `report/report.html` of the evaluation "
                                           f"run [{tags['evaluation_run_id']}](#/experiments/")
    report = Path(registry.client.download_artifacts(tags["evaluation_run_id"], "report/report.html"))
    assert report.is_file() and "<img" in report.read_text()
    run = registry.client.get_run(second.run_id)
    assert run.data.tags["autoloop.verdict"] == "passed"
    assert "paired_difference_ci_low" in run.data.metrics
    # the champion's evaluation on the suite was reused from its checkpoint: no episodes driven twice
    evaluated = [m for m in registry.context.store.metadata("sim").values() if m["tags"]["purpose"] == "eval"]
    assert len(evaluated) == 2 * 5


def test_cli_models_list_show_and_rollback(registry: Registry, promoted: list[stages.PromotionResult],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from autoloop.cli import console

    monkeypatch.setattr(console, "width", 240)  # the table's cells unwrapped
    runner = CliRunner()
    home = ["--home", str(registry.home), "--profile", "quick"]
    listing = runner.invoke(app, ["models", *home])
    assert listing.exit_code == 0, listing.output
    assert "champion" in listing.output and "previous-champion" in listing.output and "passed" in listing.output
    shown = runner.invoke(app, ["models", "show", "2", *home])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    order = [next(i for i, line in enumerate(lines) if key in line)
             for key in ("dataset snapshot", "training run", "evaluation run", "gate verdict")]
    assert order == sorted(order)
    assert "4" * 64 in shown.output and promoted[1].run_id in shown.output
    assert registry.models[4].run_id in shown.output
    missing = runner.invoke(app, ["models", "show", "99", *home])
    assert missing.exit_code == 1 and "no version '99'" in missing.output
    back = runner.invoke(app, ["promote", "--rollback", *home])
    assert back.exit_code == 0, back.output
    assert "champion version 2 -> 1" in back.output
    assert aliases(registry, MODEL)["champion"] == "1"
    forward = tracking.promote(tracking.ModelVersionRef(MODEL, "2", ""), expected_champion="1", lock=registry.lock)
    assert forward and aliases(registry, MODEL)["champion"] == "2"


def test_the_champion_loads_in_a_fresh_process_and_drives_the_smoke_suite(
        registry: Registry, promoted: list[stages.PromotionResult]) -> None:
    code = """
import json, sys
from pathlib import Path
from autoloop import stages
from autoloop.context import StageContext, open_context
from autoloop.config import load_config
from autoloop.paths import Paths

# another batch size than the stage's: a checkpoint of its own, so this process drives every route itself
config = load_config(profile="quick", overrides={"evaluate": {"suite": "smoke", "report_clips": 0},
                                                 "sim": {"batch_size": 5}})
context = open_context(config, paths=Paths(Path(sys.argv[1])))
result = stages.evaluate(context, "models:/autoloop-driver@champion").result
print(json.dumps({"policy": result.policy, "statuses": [r.status for r in result.routes],
                  "episodes": [r.episode_id for r in result.routes], "driving_score": result.driving_score}))
"""
    done = subprocess.run([sys.executable, "-c", code, str(registry.home)], capture_output=True, text=True,
                          cwd=ROOT, env={**_env(), "PYTHONPATH": str(ROOT)}, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["policy"] == "models:/autoloop-driver@champion"
    assert len(report["statuses"]) == 5 and all(report["episodes"])
    assert all(status == COMPLETED or status.startswith("Failed - Agent") for status in report["statuses"])
    stored = registry.context.store.metadata("sim")
    for episode in report["episodes"]:
        assert stored[episode]["tags"]["model_uri"] == "models:/autoloop-driver@champion"
        assert stored[episode]["tags"]["model_version"] == "models:/autoloop-driver/2"


def _env() -> dict[str, str]:
    import os

    return {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}


@pytest.mark.slow
def test_a_checkpoint_file_is_evaluated_like_a_registered_model(registry: Registry) -> None:
    path = registry.home / "policy-0.pt"  # what log_policy saved for the first model
    outcome = stages.evaluate(registry.context, str(path))
    assert outcome.result.policy == str(path) and len(outcome.result.routes) == 5
    header = json.loads(Path(outcome.result.checkpoint).read_text().splitlines()[0])
    assert header["identity"].startswith("sha256:")
    with pytest.raises(ValueError, match="neither 'expert', a models:/ URI nor a checkpoint file"):
        stages.evaluate(registry.context, str(registry.home / "missing.pt"))


@pytest.mark.slow
def test_two_promote_stages_in_two_processes_at_once(registry: Registry,
                                                     promoted: list[stages.PromotionResult]) -> None:
    """Two processes each evaluate a candidate and promote it while the other does the same: the one that moves
    the champion second sees it moved, compares with the new champion and then takes it; nothing is lost."""
    code = f"""
import json, sys
from pathlib import Path
from autoloop import stages, tracking
from autoloop.context import StageContext, open_context
from autoloop.config import load_config
from autoloop.paths import Paths

context = open_context(load_config(profile="quick", overrides={LENIENT!r}), paths=Paths(Path(sys.argv[1])))
model = tracking.logged_policy(sys.argv[2])
result = stages.promote(context, model, stages.evaluate(context, model.model_uri))
print(json.dumps({{"version": result.registered.version, "promoted": result.promoted,
                  "compared_with": result.champion_before.version}}))
"""
    assert aliases(registry, MODEL)["champion"] == "2"
    processes = [subprocess.Popen([sys.executable, "-c", code, str(registry.home), model.model_uri], cwd=ROOT,
                                  env={**_env(), "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for model in registry.models[:2]]
    outputs = [process.communicate(timeout=600) for process in processes]
    assert all(process.returncode == 0 for process in processes), [err[-2000:] for _, err in outputs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert all(r["promoted"] for r in results)
    versions = sorted(r["version"] for r in results)
    assert versions == ["3", "4"]  # both registered
    first, second = sorted(results, key=lambda r: r["compared_with"] != "2")
    assert first["compared_with"] == "2" and second["compared_with"] == first["version"]
    assert aliases(registry, MODEL) | {"challenger": "-"} == {
        "champion": second["version"], "previous-champion": first["version"], "challenger": "-"}
    assert len(registry.client.search_model_versions(f"name = '{MODEL}'")) == 4


def test_a_model_logged_with_another_observation_format_is_refused_naming_it(registry: Registry,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(tracking.load_policy(registry.models[0].model_uri), BcPolicy)
    monkeypatch.setattr(tracking, "OBSERVATION_FORMAT", OBSERVATION_FORMAT + 1)  # as a later autoloop logs it
    with tracking.stage_run("train", experiment_id=registry.context.experiment_id, parent_run_id=None):
        later = tracking.log_policy(constant_policy(0.0, 0.5, registry.config), registry.home / "later.pt",
                                    example_observation(registry.config))
    with pytest.raises(ObservationFormatError) as refused:
        tracking.load_policy(later.model_uri)
    assert str(refused.value) == (f"model {later.model_uri} has observation format {OBSERVATION_FORMAT + 1}, this "
                                  f"autoloop reads observation format {OBSERVATION_FORMAT}: retrain it "
                                  "(`autoloop train`)")


@pytest.mark.parametrize("recorded", [OBSERVATION_FORMAT + 1, None])
def test_a_champion_of_another_observation_format_is_skipped_and_the_candidate_judged_alone(
        registry: Registry, recorded: int | None, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A registry whose champion an earlier autoloop logged (another observation format, or none recorded): the
    champion cannot drive here, so the candidate is judged by the gate alone and can take its place."""
    name = f"older-champion-{recorded}"
    with monkeypatch.context() as earlier:
        earlier.setattr(tracking, "OBSERVATION_FORMAT", recorded)
        with tracking.stage_run("train", experiment_id=registry.context.experiment_id, parent_run_id=None):
            older = tracking.log_policy(constant_policy(0.0, 0.5, registry.config), registry.home / f"{name}.pt",
                                        example_observation(registry.config))
    assert tracking.observation_format(older.model_uri) == recorded
    champion = tracking.register(older.model_uri, name, lock=registry.lock, tags={})
    assert tracking.promote(champion, expected_champion=None, lock=registry.lock)
    context = open_context(load_config(profile="quick", overrides={**LENIENT, "registry": {"model_name": name}}),
                                  paths=registry.context.paths)
    model = registry.models[3]
    with caplog.at_level("WARNING", logger="autoloop.stages"):
        result = stages.promote(context, model, stages.evaluate(context, model.model_uri))
    assert result.champion_before == champion and result.champion is None and result.comparison is None
    assert result.verdict.passed and "versus champion" not in [check.name for check in result.verdict.checks]
    assert result.promoted and aliases(registry, name) == {"champion": "2", "challenger": "2",
                                                           "previous-champion": "1"}
    assert registry.client.get_model_version(name, "2").tags["compared_with"] == "none"
    assert (f"champion models:/{name}/1 skipped: its observation format is {'none' if recorded is None else recorded} "
            f"(expected {OBSERVATION_FORMAT}); the candidate is judged without a comparison") in caplog.messages


def test_a_promotion_killed_after_registering_registers_nothing_twice_when_run_again(registry: Registry) -> None:
    name, model = "killed-promotion", registry.models[2]
    code = f"""
import os, signal, sys
from pathlib import Path
from autoloop import tracking
from autoloop.paths import Paths

paths = Paths(Path(sys.argv[1]))
tracking.configure(paths, "autoloop")
tracking.register(sys.argv[2], {name!r}, lock=tracking.registry_lock(paths), tags={{"verdict": "pending"}})
os.kill(os.getpid(), signal.SIGKILL)  # killed before its verdict
"""
    killed = subprocess.run([sys.executable, "-c", code, str(registry.home), model.model_uri], cwd=ROOT,
                            env={**_env(), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    [left] = registry.client.search_model_versions(f"name = '{name}'")
    assert left.tags["verdict"] == "pending"
    again = tracking.register(model.model_uri, name, lock=registry.lock, tags={"verdict": "passed"})
    [version] = registry.client.search_model_versions(f"name = '{name}'")
    assert again.version == str(version.version) == "1" and version.tags["verdict"] == "passed"
    other = tracking.register(registry.models[0].model_uri, name, lock=registry.lock, tags={})
    assert other.version == "2"  # another model is another version


def test_models_lists_scores_of_different_suites_apart(registry: Registry, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from autoloop.cli import console

    monkeypatch.setattr(console, "width", 240)
    name = "suites-apart"
    for model, suite, suite_hash, score in ((registry.models[0], "smoke", "aaaa1111", "91.0"),
                                            (registry.models[1], "eval", "bbbb2222", "62.5"),
                                            (registry.models[2], "smoke", "aaaa1111", "88.0")):
        tracking.register(model.model_uri, name, lock=registry.lock,
                          tags={"suite": suite, "suite_hash": suite_hash, "driving_score": score})
    config = tmp_path / "config.yaml"
    config.write_text(f"registry:\n  model_name: {name}\n")
    listing = CliRunner().invoke(app, ["models", "--home", str(registry.home), "--profile", "quick",
                                       "--config", str(config)])
    assert listing.exit_code == 0, listing.output
    smoke = listing.output.index(f"registered model {name}: evaluated on suite smoke (aaaa1111)")
    other = listing.output.index(f"registered model {name}: evaluated on suite eval (bbbb2222)")
    smoke_table = listing.output[smoke:other] if smoke < other else listing.output[smoke:]
    assert "91.0" in smoke_table and "88.0" in smoke_table and "62.5" not in smoke_table


def test_the_registry_and_runs_read_well_in_the_mlflow_ui(registry: Registry,
                                                          promoted: list[stages.PromotionResult]) -> None:
    first = promoted[0]
    assert first.registered is not None
    model = registry.client.get_registered_model(MODEL)
    assert "`champion` is the version that drives" in model.description
    version = registry.client.get_model_version(MODEL, first.registered.version)
    assert "file://" not in version.description and "`report/report.html`" in version.description
    evaluation = registry.client.get_run(version.tags["evaluation_run_id"])
    assert evaluation.data.params["suite"] == "smoke"
    inputs = [d.dataset for d in evaluation.inputs.dataset_inputs]
    assert [d.name for d in inputs] == ["suite-smoke"] and inputs[0].digest == version.tags["suite_hash"][:32]
    for run in (evaluation, registry.client.get_run(first.run_id)):
        assert len(run.data.tags["mlflow.source.git.commit"]) == 40
