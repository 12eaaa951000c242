"""A single stage run directly in this process: what its Prefect flow (:mod:`flows.stages`) runs, without the flow.

The CLI runs a stage this way when no Prefect API is configured, where a flow run would start a temporary API
server only to record itself there and stop it again. What the flow adds is left out: no flow run (so no
``prefect.*`` tags on the MLflow runs), no retries of transient failures, no persisted results, no Prefect
artifacts or events; the registry is guarded by this machine's file lock, as a flow without a server guards it
(:mod:`flows.locks`). The inputs are checked before, as the CLI checks them before a flow run.
"""

from __future__ import annotations

from autoloop import stages, tracking
from autoloop.config import AutoloopConfig
from autoloop.context import open_context
from autoloop.paths import Paths


def collect(config: AutoloopConfig, home: Paths) -> stages.CollectResult:
    """The collect stage (:func:`autoloop.stages.collect`)."""
    return stages.collect(open_context(config, paths=home))


def train(config: AutoloopConfig, home: Paths, dataset: str | None) -> stages.TrainOutcome:
    """The train stage on the snapshot manifest ``dataset`` (default: the newest snapshot)."""
    context = open_context(config, paths=home)
    return stages.train(context, stages.training_snapshot(context.paths, dataset))


def evaluate(config: AutoloopConfig, home: Paths, model_uri: str) -> stages.EvaluateOutcome:
    """The evaluate stage of the driver ``model_uri`` (:func:`autoloop.stages.evaluate`)."""
    return stages.evaluate(open_context(config, paths=home), model_uri)


def promote(config: AutoloopConfig, home: Paths, model_uri: str) -> stages.PromotionResult:
    """The promote stage of the candidate ``model_uri``: its evaluation, then the gate and the registry."""
    context = open_context(config, paths=home)
    model = tracking.logged_policy(model_uri)
    return stages.promote(context, model, stages.evaluate(context, model.model_uri))
