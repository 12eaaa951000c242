"""The data-engine cycle: collect -> train -> evaluate -> promote, as subflows of one flow run.

Run as a deployment, the cycle hands training to the ``train`` deployment (``train_deployment``: on the GPU pool's
workers) and waits for it; everything else runs in the cycle's own process. Run locally (``autoloop cycle``), every
stage runs in this process.

A cycle run that failed and is retried (``prefect flow-run retry``, or Retry in the UI) keeps its MLflow cycle run
and does not redo the stages that finished: collection, training and evaluation come back from their persisted
results (:func:`flows.stages.stage_key`), and a training deployment run that completed in an earlier attempt is
reused.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from prefect import flow, get_client, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterIdempotencyKey
from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext, TaskRunContext
from prefect.deployments import run_deployment
from prefect.logging import get_run_logger

from autoloop import stages
from autoloop.config import Profile
from autoloop.context import StageContext
from autoloop.reports import cycle_markdown
from flows import parameters
from flows.retries import RETRYING
from flows.stages import collect_flow, connect, evaluate_flow, promote_flow, run_name, train_flow

#: The MLflow cycle run's tag that names its Prefect flow run.
FLOW_RUN_TAG = "prefect.flow_run_id"
#: The deployment that trains when the cycle runs as a deployment (``prefect.yaml``: on the ``autoloop-gpu`` pool).
TRAIN_DEPLOYMENT = "train/autoloop"


def _cycle_run_key(context: TaskRunContext, arguments: dict[str, Any]) -> str:
    return f"autoloop-cycle-start-{context.task_run.flow_run_id}"


@task(cache_key_fn=_cycle_run_key, persist_result=True, **RETRYING)
def start_cycle(context: StageContext, flow_run_id: str) -> StageContext:
    """Open the cycle's MLflow run, tagged with the flow run (once per cycle flow run: a retried run keeps it)."""
    return stages.start_cycle(context, tags={FLOW_RUN_TAG: flow_run_id})


@task(cache_policy=NO_CACHE, **RETRYING)
def finish_cycle(context: StageContext, failed: bool) -> None:
    stages.finish_cycle(context, failed=failed)


@flow(name="cycle", persist_result=True, flow_run_name=run_name("cycle", "profile"))
def cycle_flow(config_file: str | None = None, profile: Profile | None = None, home: str | None = None,
               train_deployment: str | None = TRAIN_DEPLOYMENT) -> stages.CycleSummary:
    """One full cycle: collect, train, evaluate, promote; the stages' MLflow runs nest under one cycle run.

    Args:
        config_file: Experiment YAML on the worker (relative to the deployment's working directory); its keys
            override the profile's.
        profile: Base profile: quick (CI-sized) or default (the file's own profile key, else default).
        home: autoloop home on the workers: episode store, datasets, checkpoints, evaluations (default
            $AUTOLOOP_HOME); a folder every worker sees, at the same path.
        train_deployment: When the cycle runs as a deployment, the deployment that trains (on the GPU pool), as
            flow/deployment; empty: train in the cycle's own process.
    """
    config = parameters.load(config_file, profile)
    parameters.carla_servers(config)  # (CARLA inputs that cannot be used fail before the cycle starts)
    context = start_cycle(connect(config, home, None), str(_flow_run().id))
    common: dict[str, Any] = {"config_file": config_file, "profile": profile, "home": str(context.paths.home),
                              "parent_run_id": context.parent_run_id}
    try:
        collected = collect_flow(**common)
        dataset = str(collected.snapshot.path)
        if train_deployment and _flow_run().deployment_id is not None:
            trained: stages.TrainOutcome = run_stage(train_deployment, {**common, "dataset": dataset})
        else:
            trained = train_flow(**common, dataset=dataset)
        evaluation = evaluate_flow(model_uri=trained.model.model_uri, **common)
        promotion = promote_flow(model_uri=trained.model.model_uri, evaluation_run_id=evaluation.run_id, **common)
    except BaseException:
        finish_cycle(context, True)
        raise
    summary = stages.summarize(context, collected, trained, promotion)
    stages.record_cycle(context, summary)
    finish_cycle(context, False)
    create_markdown_artifact(key="cycle-summary", markdown=cycle_markdown(summary),
                             description="autoloop cycle summary")
    return summary


def _flow_run() -> FlowRun:
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise RuntimeError("called outside a flow run")
    return context.flow_run


def run_stage(deployment: str, arguments: dict[str, Any]) -> Any:
    """Run a stage as a run of ``deployment`` (linked to this cycle run as a subflow) and return its result.

    A retried cycle run reuses the run of an earlier attempt that completed with the same parameters; one that
    failed runs again.
    """
    cycle = _flow_run()
    digest = hashlib.sha256(json.dumps(arguments, sort_keys=True).encode()).hexdigest()[:16]
    key = f"{cycle.id}:{deployment}:{digest}"
    earlier: list[FlowRun] = []
    if cycle.run_count > 1:
        with get_client(sync_client=True) as client:
            earlier = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                idempotency_key=FlowRunFilterIdempotencyKey(
                    any_=[f"{key}:{attempt}" for attempt in range(1, cycle.run_count)])))
    for run in earlier:
        if run.state is not None and run.state.is_completed():
            get_run_logger().info("reusing %s run %s of an earlier attempt", deployment, run.name)
            return run.state.result()
    launched = run_deployment(deployment, parameters=arguments, idempotency_key=f"{key}:{cycle.run_count}")
    assert isinstance(launched, FlowRun)  # (called from a sync flow: the run itself, not a coroutine)
    if launched.state is None:
        raise RuntimeError(f"the {deployment} run {launched.name} has no state")
    return launched.state.result()
