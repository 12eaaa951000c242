"""The data-engine cycle: collect -> train -> evaluate -> promote, as subflows of one flow run."""

from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from autoloop import stages
from autoloop.config import AutoloopConfig
from autoloop.reports import cycle_markdown
from flows.stages import collect_flow, connect, evaluate_flow, promote_flow, train_flow


@task(retries=2, retry_delay_seconds=5)
def start_cycle(context: stages.StageContext) -> stages.StageContext:
    return stages.start_cycle(context)


@task(retries=2, retry_delay_seconds=5)
def finish_cycle(context: stages.StageContext, failed: bool) -> None:
    stages.finish_cycle(context, failed=failed)


@flow(name="cycle")
def cycle_flow(config: AutoloopConfig, home: str | None = None) -> stages.CycleSummary:
    """One full cycle on the given configuration; MLflow runs of the stages nest under one cycle run."""
    context = start_cycle(connect(config, home, None))
    parent = context.parent_run_id
    try:
        collected = collect_flow(config, home=home, parent_run_id=parent)
        trained = train_flow(config, snapshot_path=str(collected.snapshot.path), home=home, parent_run_id=parent)
        evaluation = evaluate_flow(config, trained.model.model_uri, home=home, parent_run_id=parent)
        promotion = promote_flow(config, trained.model.model_uri, evaluation, home=home, parent_run_id=parent)
    except BaseException:
        finish_cycle(context, True)
        raise
    finish_cycle(context, False)
    summary = stages.summarize(context, collected, trained, promotion)
    create_markdown_artifact(key="cycle-summary", markdown=cycle_markdown(summary),
                             description="autoloop cycle summary")
    return summary
