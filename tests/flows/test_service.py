"""autoloop as a team runs it, all started here: PostgreSQL; an MLflow server and a Prefect server on it; the work
pools and concurrency limits; the project's ``prefect.yaml`` deployed with ``prefect deploy --all``; process workers
(two on ``autoloop-cpu``, one on ``autoloop-gpu``). Every run goes through a deployment, as a person or an
automation starts it; nothing of Prefect, MLflow or PostgreSQL is mocked.

The tests build on each other in file order: a first cycle makes the champion, a second one fails in ``evaluate``
and is retried, two promotions race, an ingest triggers a cycle.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from flows.cycle import FLOW_RUN_TAG
from tests.servers import environment, mlflow_server, postgres, prefect, prefect_server, workers

MODEL = "autoloop-driver"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass
class Service:
    root: Path
    api: str
    env: dict[str, str]
    mlflow: MlflowClient
    runs: dict[str, str]  # what the tests found out, for the ones after them

    def home(self, name: str) -> str:
        return str(self.root / name)

    def run(self, deployment: str, **parameters: Any) -> str:
        """``prefect deployment run`` as a person types it; the flow run's id."""
        args = [item for name, value in parameters.items() for item in ("--param", f"{name}={value}")]
        output = prefect("deployment", "run", deployment, *args, env=self.env)
        found = re.search(r"UUID: ([0-9a-f-]{36})", output)
        assert found, output
        return found.group(1)

    def flow_run(self, run_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.api}/flow_runs/{run_id}", timeout=30)
        response.raise_for_status()
        return dict(response.json())

    def wait(self, run_id: str, timeout_s: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = self.flow_run(run_id)
            if run["state_type"] in FINAL:
                return run
            time.sleep(1.0)
        raise TimeoutError(f"flow run {run_id} not finished after {timeout_s} s: {self.flow_run(run_id)['state']}")

    def flow_runs(self, flow: str) -> list[dict[str, Any]]:
        body = {"flows": {"name": {"any_": [flow]}}}
        return list(httpx.post(f"{self.api}/flow_runs/filter", json=body, timeout=30).json())

    def task_runs(self, flow_run_ids: list[str]) -> list[dict[str, Any]]:
        body = {"task_runs": {"flow_run_id": {"any_": flow_run_ids}}}
        return list(httpx.post(f"{self.api}/task_runs/filter", json=body, timeout=30).json())

    def events(self, name: str, timeout_s: float = 60) -> list[dict[str, Any]]:
        """The events called ``name`` the server has stored (waiting for at least one)."""
        body = {"filter": {"event": {"name": [name]}}, "limit": 50}
        deadline = time.monotonic() + timeout_s
        while True:
            found = httpx.post(f"{self.api}/events/filter", json=body, timeout=30).json()["events"]
            if found or time.monotonic() > deadline:
                return list(found)
            time.sleep(1.0)

    def stage_runs(self, cycle_flow_run: str) -> list[Any]:
        """The MLflow runs of the stages of the cycle that a Prefect flow run made."""
        experiment = self.mlflow.get_experiment_by_name("autoloop")
        [cycle] = self.mlflow.search_runs([experiment.experiment_id], f"tags.`{FLOW_RUN_TAG}` = '{cycle_flow_run}'")
        return list(self.mlflow.search_runs([experiment.experiment_id],
                                            f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{cycle.info.run_id}'"))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("service")
    with ExitStack() as stack:
        database = stack.enter_context(postgres(["mlflow", "prefect"]))
        tracking = stack.enter_context(mlflow_server(database.url("mlflow"), root))
        api = stack.enter_context(prefect_server(database.url("prefect", driver="postgresql+asyncpg"), root))
        tracking.wait()
        api.wait()
        env = environment(PREFECT_API_URL=api.url, MLFLOW_TRACKING_URI=tracking.url,
                          PREFECT_HOME=str(root / "prefect"), AUTOLOOP_HOME=str(root / "home"))
        for pool in ("autoloop-cpu", "autoloop-gpu"):
            prefect("work-pool", "create", pool, "--type", "process", env=env)
        for limit, slots in (("gpu", 1), ("carla-server", 1), ("autoloop-registry", 1)):
            prefect("gcl", "create", limit, "--limit", str(slots), env=env)
        prefect("deploy", "--all", env=env, timeout_s=300)
        stack.enter_context(workers(["autoloop-cpu", "autoloop-cpu", "autoloop-gpu"], env=env, folder=root))
        yield Service(root, api.url, env, MlflowClient(tracking_uri=tracking.url, registry_uri=tracking.url), {})


def test_the_cycle_deployment_registers_a_champion_with_its_lineage(service: Service) -> None:
    run_id = service.run("cycle/autoloop", profile="quick", home=service.home("a"))
    run = service.wait(run_id)
    assert run["state_type"] == "COMPLETED", run["state"]
    service.runs["first"] = run_id

    champion = service.mlflow.get_model_version_by_alias(MODEL, "champion")
    assert champion.version == "1"
    tags = champion.tags
    assert tags["verdict"] == "passed" and tags["compared_with"] == "none"
    training = service.mlflow.get_run(champion.run_id)
    assert [i.dataset.digest for i in training.inputs.dataset_inputs] == [tags["dataset_digest"][:32]]
    assert float(service.mlflow.get_run(tags["evaluation_run_id"]).data.metrics["driving_score"]) == pytest.approx(
        float(tags["driving_score"]), abs=0.01)
    assert sorted(r.data.tags["autoloop.stage"] for r in service.stage_runs(run_id)) == [
        "collect", "evaluate", "promote", "train"]

    # training ran as a run of the train deployment, on the GPU pool's worker, linked to this cycle
    [trained] = service.flow_runs("train")
    assert trained["work_pool_name"] == "autoloop-gpu" and trained["state_type"] == "COMPLETED"
    assert trained["idempotency_key"].startswith(run_id)
    [promoted] = service.events("autoloop.model.promoted")
    assert promoted["payload"]["version"] == "1" and promoted["payload"]["previous_champion"] is None
    assert promoted["payload"]["metrics"]["driving_score"] == tags["driving_score"]
    # as prefect.yaml declares it: one cycle at a time (a second one waits), a nightly schedule that is off
    deployment = httpx.get(f"{service.api}/deployments/name/cycle/autoloop", timeout=30).json()
    assert deployment["global_concurrency_limit"]["limit"] == 1
    assert deployment["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    assert [(s["schedule"]["cron"], s["active"]) for s in deployment["schedules"]] == [("0 2 * * *", False)]
    artifacts = httpx.post(f"{service.api}/artifacts/filter",
                           json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}, timeout=30).json()
    assert any(a["key"] == "cycle-summary" and "report.html" in a["data"] for a in artifacts)


def test_a_cycle_failed_in_evaluate_and_retried_does_not_collect_or_train_again(service: Service) -> None:
    # the injected fault: where the evaluation keeps its checkpoints, a file
    home = Path(service.home("b"))
    home.mkdir()
    (home / "evaluations").write_text("not a folder")
    # from scratch, as the first cycle trained (the registry's champion is the first cycle's: no warm start from it)
    scratch = service.root / "scratch.yaml"
    scratch.write_text("train:\n  init: scratch\n")
    run_id = service.run("cycle/autoloop", profile="quick", home=str(home), config_file=str(scratch))
    failed = service.wait(run_id)
    assert failed["state_type"] == "FAILED" and "evaluations" in failed["state"]["message"]
    (home / "evaluations").unlink()
    prefect("flow-run", "retry", run_id, env=service.env)
    run = service.wait(run_id)
    assert run["state_type"] == "COMPLETED", run["state"]
    assert run["run_count"] == 2

    stages = service.stage_runs(run_id)
    by_stage = {name: sorted(r.info.status for r in stages if r.data.tags["autoloop.stage"] == name)
                for name in ("collect", "train", "evaluate", "promote")}
    assert by_stage == {"collect": ["FINISHED"], "train": ["FINISHED"], "evaluate": ["FAILED", "FINISHED"],
                        "promote": ["FINISHED"]}
    # Prefect: one training run for this cycle; its collection task ran once (the retry got its result back)
    trained = [r for r in service.flow_runs("train") if r["idempotency_key"].startswith(run_id)]
    assert [r["state_type"] for r in trained] == ["COMPLETED"]
    in_cycle = {t["id"] for t in service.task_runs([run_id])}
    collections = [r["id"] for r in service.flow_runs("collect") if r["parent_task_run_id"] in in_cycle]
    ran = [t["state_name"] for t in service.task_runs(collections) if t["name"].startswith("collect_episodes")]
    assert ran.count("Completed") == 1 and set(ran) <= {"Completed", "Cached"}, ran

    # the result equals the uninterrupted first cycle's (same config, fresh home): same scores on every route
    first, second = (_candidate_evaluation(service, service.runs["first"]), _candidate_evaluation(service, run_id))
    assert first == second
    # and this second deployment run was compared with the first one's champion
    version = service.mlflow.get_model_version(MODEL, "2")
    assert version.tags["compared_with"] == "1"
    service.runs["second"] = run_id


def _candidate_evaluation(service: Service, cycle_flow_run: str) -> list[dict[str, Any]]:
    [evaluation] = [r for r in service.stage_runs(cycle_flow_run)
                    if r.data.tags["autoloop.stage"] == "evaluate" and r.info.status == "FINISHED"]
    path = service.mlflow.download_artifacts(evaluation.info.run_id, "evaluation.json", str(service.root / "tmp"))
    routes = json.loads(Path(path).read_text())["routes"]
    return [{key: value for key, value in route.items() if key != "episode_id"} for route in routes]


#: Another worker in the middle of a promotion: it holds the registry lock until its stdin closes.
HOLD_THE_REGISTRY = """
import sys
from prefect.concurrency.sync import concurrency
with concurrency("autoloop-registry", occupy=1, strict=True):
    print("held", flush=True)
    sys.stdin.read()
"""


#: A training run logs its driver once more: a new candidate with the same weights and lineage, not registered yet.
LOG_AGAIN = """
import sys
from pathlib import Path
import mlflow
from autoloop import tracking
from autoloop.config import load_config
from tests.autoloop.test_registry import example_observation
version = mlflow.MlflowClient().get_model_version(sys.argv[1], sys.argv[2])
policy = tracking.load_policy(version.source)
with mlflow.start_run(run_id=version.run_id):
    logged = tracking.log_policy(policy, Path(sys.argv[3]), example_observation(load_config(profile="quick")))
print(logged.model_uri)
"""


def log_again(service: Service, version: str) -> str:
    """The driver of ``version`` logged again into its training run: a new model URI, as a new cycle's would be."""
    done = subprocess.run([sys.executable, "-c", LOG_AGAIN, MODEL, version, str(service.root / f"again-{version}.pt")],
                          env=service.env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout.strip().splitlines()[-1]


def test_two_workers_promoting_at_once_keep_one_champion_and_its_history(service: Service) -> None:
    # two new candidates (the first two cycles' drivers logged again), as two cycles would have trained them
    candidates = {home: log_again(service, version) for home, version in (("a", "1"), ("b", "2"))}
    history_before = json.loads(service.mlflow.get_registered_model(MODEL).tags["champion_history"])
    versions = len(service.mlflow.search_model_versions(f"name = '{MODEL}'"))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_REGISTRY], env=service.env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        # both promotions start and wait for the lock every worker takes
        runs = [service.run("promote/autoloop", model_uri=uri, profile="quick", home=service.home(home))
                for home, uri in candidates.items()]
        deadline = time.monotonic() + 300
        while any(service.flow_run(r)["state_type"] != "RUNNING" for r in runs) and time.monotonic() < deadline:
            time.sleep(1.0)
        time.sleep(15.0)
        assert all(service.flow_run(r)["state_type"] == "RUNNING" for r in runs)
        assert len(service.mlflow.search_model_versions(f"name = '{MODEL}'")) == versions  # none registered yet
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    finished = [service.wait(r) for r in runs]
    assert [r["state_type"] for r in finished] == ["COMPLETED", "COMPLETED"], [r["state"] for r in finished]

    model = service.mlflow.get_registered_model(MODEL)
    history = [str(v) for v in json.loads(model.tags["champion_history"])]
    everything = service.mlflow.search_model_versions(f"name = '{MODEL}'")
    assert len(everything) == versions + 2  # each candidate registered once
    raced = [v for v in everything if v.tags.get("model_uri") in candidates.values()]
    promoted = sorted(v.version for v in raced if v.tags.get("verdict") == "passed")
    assert history[:len(history_before)] == [str(v) for v in history_before]
    assert sorted(history[len(history_before):]) == promoted  # every one that passed became champion, none lost
    for before, after in itertools.pairwise(history):
        assert service.mlflow.get_model_version(MODEL, after).tags["compared_with"] == before
    assert model.aliases["champion"] == history[-1] and model.aliases["previous-champion"] == history[-2]


def test_ingesting_enough_fleet_episodes_starts_a_cycle(service: Service, shared_data: Path) -> None:
    automations = httpx.post(f"{service.api}/automations/filter", json={}, timeout=30).json()
    [automation] = [a for a in automations if a["name"] == "cycle-on-new-fleet-episodes"]
    assert automation["trigger"]["threshold"] == 20  # prefect.yaml's; this test needs two episodes to do
    core = {key: automation[key] for key in ("name", "description", "enabled", "trigger", "actions",
                                              "actions_on_trigger", "actions_on_resolve")}
    core["trigger"]["threshold"] = 2
    prefect("automation", "update", "--id", automation["id"], "--from-json", json.dumps(core), env=service.env)
    cycles = {r["id"] for r in service.flow_runs("cycle")}

    drop = service.root / "drop"
    for log in ("sensor/7fab2350-7eaf-3b7e-a39d-6937a4c1bede", "forecasting/0a1e6f0a-1817-4a98-b02e-db8c9327d151"):
        shutil.copytree(shared_data / "av2" / log, drop / Path(log).name)
    ingested = service.wait(service.run("ingest/autoloop", paths=json.dumps([str(drop)]), home=service.home("c")))
    assert ingested["state_type"] == "COMPLETED", ingested["state"]
    [counts] = service.events("autoloop.fleet.ingested")
    assert counts["payload"] == {"landed": 2, "skipped": 0, "quarantined": 0, "not_found": 0}

    deadline = time.monotonic() + 120
    triggered: list[dict[str, Any]] = []
    while not triggered and time.monotonic() < deadline:
        triggered = [r for r in service.flow_runs("cycle") if r["id"] not in cycles]
        time.sleep(1.0)
    assert len(triggered) == 1, "no cycle run was triggered"
    assert triggered[0]["created_by"]["type"] == "AUTOMATION"
    # a second cycle meanwhile waits for the first (the deployment's concurrency limit of one)
    second = service.run("cycle/autoloop", profile="quick", home=service.home("d"))
    deadline = time.monotonic() + 120
    while service.flow_run(triggered[0]["id"])["state_type"] != "RUNNING" and time.monotonic() < deadline:
        time.sleep(1.0)
    deadline = time.monotonic() + 60
    while service.flow_run(second)["state_name"] != "AwaitingConcurrencySlot" and time.monotonic() < deadline:
        time.sleep(1.0)
    assert service.flow_run(triggered[0]["id"])["state_type"] == "RUNNING"
    assert service.flow_run(second)["state_name"] == "AwaitingConcurrencySlot"
    for run_id in (second, triggered[0]["id"]):  # (full cycles: not for this test)
        prefect("flow-run", "cancel", run_id, env=service.env)
        assert service.wait(run_id, timeout_s=120)["state_type"] == "CANCELLED"


def test_bad_parameters_fail_the_run_at_once_and_register_nothing(service: Service) -> None:
    versions = len(service.mlflow.search_model_versions(f"name = '{MODEL}'"))
    experiment = service.mlflow.get_experiment_by_name("autoloop")
    runs_before = len(service.mlflow.search_runs([experiment.experiment_id]))
    [other] = [r.info.run_id for r in service.stage_runs(service.runs["second"])
               if r.data.tags["autoloop.stage"] == "evaluate" and r.info.status == "FINISHED"]
    first_model = service.mlflow.get_model_version(MODEL, "1").source
    started = {
        f"parameter evaluation_run_id='{other}'": service.run(  # the evaluation of another model
            "promote/autoloop", model_uri=first_model, evaluation_run_id=other, profile="quick",
            home=service.home("a")),
        "parameter model_uri='models:/autoloop-driver/99'": service.run(
            "promote/autoloop", model_uri="models:/autoloop-driver/99", profile="quick", home=service.home("a")),
        "parameter config_file='/no/such/config.yaml'": service.run(
            "evaluate/autoloop", model_uri="expert", config_file="/no/such/config.yaml"),
        "parameter suite='smokey'": service.run("evaluate/autoloop", model_uri="expert", suite="smokey"),
    }
    for message, run_id in started.items():
        run = service.wait(run_id, timeout_s=300)
        assert run["state_type"] == "FAILED" and message in run["state"]["message"], run["state"]
    assert len(service.mlflow.search_model_versions(f"name = '{MODEL}'")) == versions
    assert len(service.mlflow.search_runs([experiment.experiment_id])) == runs_before
