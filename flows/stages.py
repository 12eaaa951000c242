"""One flow per stage; the cycle flow runs them as subflows."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from autoloop import stages
from autoloop.config import AutoloopConfig
from autoloop.episodes import load_snapshot
from autoloop.paths import Paths
from autoloop.reports import evaluation_markdown, promotion_markdown
from autoloop.tracking import LoggedPolicy, logged_policy


@task(retries=2, retry_delay_seconds=5)
def connect(config: AutoloopConfig, home: str | None, parent_run_id: str | None) -> stages.StageContext:
    """Open the tracking store (I/O: retried)."""
    paths = Paths(Path(home).resolve()) if home else Paths.from_env()
    return stages.open_context(config, paths=paths, parent_run_id=parent_run_id)


@task
def collect_episodes(context: stages.StageContext) -> stages.CollectResult:
    return stages.collect(context)


@task
def train_policy(context: stages.StageContext, snapshot_path: str | None) -> stages.TrainOutcome:
    snapshot = load_snapshot(Path(snapshot_path)) if snapshot_path else stages.latest_snapshot(context.paths)
    return stages.train(context, snapshot)


@task
def evaluate_policy(context: stages.StageContext, model_uri: str) -> stages.EvaluateOutcome:
    return stages.evaluate(context, model_uri)


@task(retries=2, retry_delay_seconds=5)
def resolve_model(context: stages.StageContext, model_uri: str) -> LoggedPolicy:
    """Find the logged model behind a URI (registry I/O: retried)."""
    return logged_policy(model_uri)


@task
def gate_and_register(context: stages.StageContext, model: LoggedPolicy,
                      evaluation: stages.EvaluateOutcome) -> stages.PromotionResult:
    return stages.promote(context, model, evaluation)


@flow(name="collect")
def collect_flow(config: AutoloopConfig, home: str | None = None,
                 parent_run_id: str | None = None) -> stages.CollectResult:
    """Roll out the privileged expert on the collection scenarios and snapshot the episodes."""
    result = collect_episodes(connect(config, home, parent_run_id))
    create_markdown_artifact(
        key="collect-summary",
        markdown=f"# collect\n\n{result.episodes} episodes, {result.steps} steps, expert driving score "
                 f"{result.expert_driving_score:.1f}; dataset `{result.snapshot.digest[:12]}`; "
                 f"MLflow run `{result.run_id}`\n",
    )
    return result


@flow(name="train")
def train_flow(config: AutoloopConfig, snapshot_path: str | None = None, home: str | None = None,
               parent_run_id: str | None = None) -> stages.TrainOutcome:
    """Train a driver on a dataset snapshot (the latest one by default): imitation, then optional DAgger, PPO and
    SAC."""
    result = train_policy(connect(config, home, parent_run_id), snapshot_path)
    create_markdown_artifact(
        key="train-summary",
        markdown=f"# train\n\n{result.samples} samples, val loss {result.val_loss:.4f}; model "
                 f"`{result.model.model_uri}` (MLflow run `{result.model.run_id}`)\n",
    )
    return result


@flow(name="evaluate")
def evaluate_flow(config: AutoloopConfig, model_uri: str, home: str | None = None,
                  parent_run_id: str | None = None) -> stages.EvaluateOutcome:
    """Evaluate a driver closed-loop on the evaluation suite (resuming an interrupted evaluation)."""
    outcome = evaluate_policy(connect(config, home, parent_run_id), model_uri)
    create_markdown_artifact(key="evaluate-summary", markdown=evaluation_markdown(model_uri, outcome),
                             description="autoloop evaluation summary")
    return outcome


@flow(name="promote")
def promote_flow(config: AutoloopConfig, model_uri: str, evaluation: stages.EvaluateOutcome | None = None,
                 home: str | None = None, parent_run_id: str | None = None) -> stages.PromotionResult:
    """Register a candidate model as challenger, gate it against the thresholds and the champion, and move the
    champion alias to it if it passes (evaluating it first if needed)."""
    context = connect(config, home, parent_run_id)
    model = resolve_model(context, model_uri)
    if evaluation is None:
        evaluation = evaluate_policy(context, model.model_uri)
    result = gate_and_register(context, model, evaluation)
    create_markdown_artifact(key="promote-summary", markdown=promotion_markdown(model_uri, result),
                             description="autoloop promotion verdict")
    return result
