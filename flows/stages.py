"""One flow per stage: ``collect``, ``train``, ``evaluate``, ``promote``; the cycle flow runs them as subflows.

Each flow takes plain parameters (what a person fills in the Prefect UI: the docstrings' ``Args`` become the
parameters' descriptions there), checks them before any work (:mod:`flows.parameters`), and calls one autoloop
stage in a task. Tasks retry transient failures only (:mod:`flows.retries`).

Stage results are persisted (Prefect result storage) under cache keys built from their inputs: the config, the
dataset snapshot, the code revision and the cycle run they belong to (or, run alone, their own flow run). A cycle
run that failed late and is retried gets its collection, training and evaluation back instead of running them
again; a changed input runs the stage again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext

from autoloop import stages, tracking
from autoloop.config import AutoloopConfig, Backend, Profile
from autoloop.context import StageContext, git_revision, open_context
from autoloop.reports import evaluation_markdown, promotion_markdown
from autoloop.training.launch import gpu_slots
from flows import events, locks, parameters
from flows.retries import RETRYING


def stage_key(context: TaskRunContext, arguments: dict[str, Any]) -> str:
    """The cache key of a stage task: its name, the cycle run it belongs to (its own flow run when it runs alone),
    the config, its other inputs and the code revision."""
    stage: StageContext = arguments["context"]
    payload = {"task": context.task.name, "scope": stage.parent_run_id or str(context.task_run.flow_run_id),
               "home": str(stage.paths.home), "config": stage.config.model_dump(mode="json"),
               "inputs": {name: value for name, value in arguments.items() if name != "context"},
               "code": git_revision()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


#: Stage tasks: results persisted under :func:`stage_key`.
CACHED: dict[str, Any] = {"cache_key_fn": stage_key, "persist_result": True}


@task(cache_policy=NO_CACHE, **RETRYING)
def connect(config: AutoloopConfig, home: str | None, parent_run_id: str | None) -> StageContext:
    """Open the tracking store (I/O: retried); the stage's MLflow runs name the flow run that runs them."""
    from prefect.runtime import flow_run

    tags = {"prefect.flow_run_id": str(flow_run.id), "prefect.flow_run_name": str(flow_run.name)} \
        if flow_run.id else {}
    return open_context(config, paths=parameters.home(home), parent_run_id=parent_run_id, run_tags=tags)


def run_name(stage: str, *shown: str) -> Callable[[], str]:
    """A flow run's name: the stage and the parameters ``shown`` that were given (``evaluate
    models:/autoloop-driver@champion smoke``), so that the UI's list says what each run did."""

    def name() -> str:
        from prefect.runtime import flow_run

        given = flow_run.parameters
        values = [given[key] for key in shown if given.get(key)]
        return " ".join([stage, *(", ".join(map(str, v)) if isinstance(v, list) else str(v) for v in values)])

    return name


@task(**CACHED, **RETRYING)
def collect_episodes(context: StageContext) -> stages.CollectResult:
    return stages.collect(context)


@task(**CACHED, **RETRYING)
def train_policy(context: StageContext, snapshot_path: str | None) -> stages.TrainOutcome:
    snapshot = stages.training_snapshot(context.paths, snapshot_path)
    with locks.gpu_slots(gpu_slots(context.config)):
        return stages.train(context, snapshot)


@task(**CACHED, **RETRYING)
def evaluate_policy(context: StageContext, model_uri: str) -> stages.EvaluateOutcome:
    """The evaluate stage; in CARLA it holds a slot of the `carla-server` limit per server it uses."""
    with locks.carla_servers(parameters.carla_servers(context.config)):
        return stages.evaluate(context, model_uri)


@task(cache_policy=NO_CACHE, **RETRYING)
def check_driver(context: StageContext, model_uri: str) -> None:
    """Fail at once (no run started, nothing registered) when ``model_uri`` names no driver."""
    parameters.driver(model_uri)


@task(cache_policy=NO_CACHE)
def check_backend(context: StageContext) -> None:
    """Fail at once (no run started, nothing registered) when the CARLA backend's inputs cannot be used."""
    parameters.carla_servers(context.config)


@task(cache_policy=NO_CACHE, **RETRYING)
def resolve_model(context: StageContext, model_uri: str) -> tracking.LoggedPolicy:
    """Find the logged model behind a URI (registry I/O: retried)."""
    try:
        return tracking.logged_policy(model_uri)
    except ValueError as error:
        raise parameters.ParameterError(f"parameter model_uri={model_uri!r}: {error}") from None


@task(cache_policy=NO_CACHE, **RETRYING)
def load_evaluation(context: StageContext, run_id: str, model: tracking.LoggedPolicy
                    ) -> stages.EvaluateOutcome:
    try:
        return stages.load_evaluation(run_id, model)
    except ValueError as error:
        raise parameters.ParameterError(f"parameter evaluation_run_id={run_id!r}: {error}") from None


@task(cache_policy=NO_CACHE, **RETRYING)
def gate_and_register(context: StageContext, model: tracking.LoggedPolicy,
                      evaluation: stages.EvaluateOutcome) -> stages.PromotionResult:
    """The promote stage; in CARLA (where the champion drives for the comparison) it holds a slot of the
    `carla-server` limit per server it uses."""
    with locks.carla_servers(parameters.carla_servers(context.config)):
        result = stages.promote(context, model, evaluation, lock=locks.registry_lock(context.paths))
    events.promoted(result)
    return result


@flow(name="collect", persist_result=True, flow_run_name=run_name("collect", "profile"))
def collect_flow(config_file: str | None = None, profile: Profile | None = None, home: str | None = None,
                 parent_run_id: str | None = None) -> stages.CollectResult:
    """Collect new episodes the data engine's way (a share of them on what failed in the last evaluations and the
    fleet, driven by the champion with the expert labelling; the rest by the expert) and snapshot the accumulated
    dataset.

    Args:
        config_file: Experiment YAML on the worker (relative to the deployment's working directory); its keys
            override the profile's.
        profile: Base profile: quick (CI-sized) or default (the file's own profile key, else default).
        home: autoloop home on the worker: episode store, datasets, checkpoints, evaluations (default
            $AUTOLOOP_HOME); a folder every worker sees.
        parent_run_id: MLflow run to nest this stage's run under (the cycle sets it).
    """
    config = parameters.load(config_file, profile)
    result = collect_episodes(connect(config, home, parent_run_id))
    create_markdown_artifact(
        key="collect-summary",
        markdown=f"# collect\n\n{result.episodes} episodes, {result.steps} steps, expert driving score "
                 f"{result.expert_driving_score:.1f}; dataset `{result.snapshot.digest[:12]}`; "
                 f"MLflow run `{result.run_id}`\n",
    )
    return result


@flow(name="train", persist_result=True, flow_run_name=run_name("train", "profile"))
def train_flow(config_file: str | None = None, profile: Profile | None = None, home: str | None = None,
               dataset: str | None = None, parent_run_id: str | None = None) -> stages.TrainOutcome:
    """Train a driver on a dataset snapshot: imitation (on every GPU of the worker), then DAgger, PPO and SAC as
    the config says; holds slots of the `gpu` concurrency limit while it trains.

    Args:
        config_file: Experiment YAML on the worker (relative to the deployment's working directory); its keys
            override the profile's.
        profile: Base profile: quick (CI-sized) or default (the file's own profile key, else default).
        home: autoloop home on the worker (default $AUTOLOOP_HOME); a folder every worker sees.
        dataset: Dataset snapshot manifest (home/datasets/<digest>.json); default: the newest snapshot.
        parent_run_id: MLflow run to nest this stage's run under (the cycle sets it).
    """
    config = parameters.load(config_file, profile)
    if dataset is not None:
        parameters.existing(dataset, name="dataset")
    result = train_policy(connect(config, home, parent_run_id), dataset)
    create_markdown_artifact(
        key="train-summary",
        markdown=f"# train\n\n{result.samples} samples, val loss {result.val_loss:.4f}; model "
                 f"`{result.model.model_uri}` (MLflow run `{result.model.run_id}`)\n",
    )
    return result


@flow(name="evaluate", persist_result=True, flow_run_name=run_name("evaluate", "model_uri", "suite", "backend"))
def evaluate_flow(model_uri: str = "models:/autoloop-driver@champion", config_file: str | None = None,
                  profile: Profile | None = None, suite: str | None = None, backend: Backend | None = None,
                  routes: str | None = None, carla: dict[str, Any] | None = None, home: str | None = None,
                  parent_run_id: str | None = None) -> stages.EvaluateOutcome:
    """Evaluate a driver closed-loop on a scenario suite, or in CARLA on a route file (resuming an interrupted
    evaluation of the same driver); in CARLA, holds a slot of the `carla-server` limit per server.

    Args:
        model_uri: The driver: expert, a checkpoint file on the worker, models:/NAME/VERSION, models:/NAME@ALIAS or
            models:/m-<logged model id>.
        config_file: Experiment YAML on the worker (relative to the deployment's working directory); its keys
            override the profile's.
        profile: Base profile: quick (CI-sized) or default (the file's own profile key, else default).
        suite: Scenario suite: smoke, train, eval or carla-towns; default: the config's evaluate.suite, else its
            held-out scenarios.
        backend: Where routes are driven: embedded (the suite, on the embedded simulator) or carla (a route file,
            in the CARLA Leaderboard's evaluator); default: the config's evaluate.backend.
        routes: With backend carla: the Leaderboard route XML on the worker; default: the config's
            evaluate.carla.routes.
        carla: With backend carla: keys of the config's evaluate.carla to override, e.g. {"hosts":
            ["carla-0:2000"]} or {"gpus": [0, 1]}; CARLA_ROOT, CARLA_HOST, LEADERBOARD_ROOT and
            SCENARIO_RUNNER_ROOT of the worker fill what is unset.
        home: autoloop home on the worker (default $AUTOLOOP_HOME); a folder every worker sees.
        parent_run_id: MLflow run to nest this stage's run under (the cycle sets it).
    """
    config = parameters.load(config_file, profile, suite=suite, backend=backend, routes=routes, carla=carla)
    context = connect(config, home, parent_run_id)
    check_driver(context, model_uri)
    check_backend(context)
    outcome = evaluate_policy(context, model_uri)
    create_markdown_artifact(key="evaluate-summary", markdown=evaluation_markdown(model_uri, outcome),
                             description="autoloop evaluation summary")
    return outcome


@flow(name="promote", persist_result=True, flow_run_name=run_name("promote", "model_uri", "suite"))
def promote_flow(model_uri: str, config_file: str | None = None, profile: Profile | None = None,
                 suite: str | None = None, evaluation_run_id: str | None = None, home: str | None = None,
                 parent_run_id: str | None = None) -> stages.PromotionResult:
    """Register a candidate as challenger, gate it against the thresholds and the champion on the same routes, and
    move the champion alias to it if it passes (evaluating it first unless an evaluation run is given).

    Args:
        model_uri: The candidate: models:/m-<logged model id> (what train logged), models:/NAME/VERSION or
            models:/NAME@ALIAS.
        config_file: Experiment YAML on the worker (relative to the deployment's working directory); its keys
            override the profile's.
        profile: Base profile: quick (CI-sized) or default (the file's own profile key, else default).
        suite: Scenario suite: smoke, train, eval or carla-towns; default: the config's evaluate.suite, else its
            held-out scenarios.
        evaluation_run_id: MLflow run of an evaluate stage of this candidate to gate on (default: evaluate it).
        home: autoloop home on the worker (default $AUTOLOOP_HOME); a folder every worker sees.
        parent_run_id: MLflow run to nest this stage's run under (the cycle sets it).
    """
    config = parameters.load(config_file, profile, suite=suite)
    context = connect(config, home, parent_run_id)
    check_backend(context)
    model = resolve_model(context, model_uri)
    evaluation = (load_evaluation(context, evaluation_run_id, model) if evaluation_run_id
                  else evaluate_policy(context, model.model_uri))
    result = gate_and_register(context, model, evaluation)
    create_markdown_artifact(key="promote-summary", markdown=promotion_markdown(model_uri, result),
                             description="autoloop promotion verdict")
    return result
