"""The stages of one data-engine cycle, each a function that runs inside an MLflow run of its own.

``collect`` -> ``train`` -> ``evaluate`` -> ``promote``. Prefect flows call these (one per task); they are
plain functions, usable without Prefect.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from autoloop import tracking
from autoloop.config import AutoloopConfig, dump_config
from autoloop.episodes import (
    DatasetSnapshot,
    EpisodeStore,
    create_snapshot,
    load_snapshot,
)
from autoloop.evaluation import EvaluationResult, evaluate_driver
from autoloop.gating import Verdict, decide
from autoloop.paths import Paths
from autoloop.rollout import DriverFactory, expert_driver, rollout
from autoloop.training import EpochMetrics, load_trajectory_arrays, train_bc
from autoloop.training.dagger import dagger
from autoloop.training.loop import CHECKPOINT
from autoloop.training.ppo import train_ppo
from sim.embedded.observation import Observation
from sim.metrics import score_suite

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageContext:
    """What every stage needs: the config, where to write, and which MLflow runs to nest under."""

    config: AutoloopConfig
    paths: Paths
    experiment_id: str
    parent_run_id: str | None = None

    @property
    def store(self) -> EpisodeStore:
        return EpisodeStore(self.paths.episodes)


@dataclass(frozen=True)
class CollectResult:
    episodes: int
    steps: int
    expert_driving_score: float
    snapshot: DatasetSnapshot
    run_id: str


@dataclass(frozen=True)
class TrainOutcome:
    model: tracking.LoggedPolicy
    samples: int
    train_loss: float
    val_loss: float
    dataset_digest: str


@dataclass(frozen=True)
class PromotionResult:
    verdict: Verdict
    candidate: EvaluationResult
    champion: EvaluationResult | None
    champion_before: tracking.ModelVersionRef | None
    registered: tracking.ModelVersionRef | None
    run_id: str


def open_context(config: AutoloopConfig, *, paths: Paths | None = None,
                 parent_run_id: str | None = None) -> StageContext:
    """Connect to the tracking store (creating the experiment) and build the stage context."""
    paths = paths or Paths.from_env()
    experiment_id = tracking.configure(paths, config.registry.experiment)
    return StageContext(config=config, paths=paths, experiment_id=experiment_id, parent_run_id=parent_run_id)


def start_cycle(context: StageContext) -> StageContext:
    """Open the cycle's parent run; stages started from the returned context nest under it."""
    run_id = tracking.create_run(
        f"cycle-{datetime.now(UTC):%Y%m%d-%H%M%S}", experiment_id=context.experiment_id,
        tags={"autoloop.stage": "cycle", "autoloop.profile": context.config.profile},
    )
    return StageContext(context.config, context.paths, context.experiment_id, parent_run_id=run_id)


def finish_cycle(context: StageContext, *, failed: bool = False) -> None:
    if context.parent_run_id:
        tracking.end_run(context.parent_run_id, failed=failed)


def collect(context: StageContext) -> CollectResult:
    """Drive the expert (with exploration noise) on new collection scenarios, store the episodes, and snapshot
    them with the most recent earlier collected episodes as a dataset."""
    config = context.config
    earlier = _collected_seeds(context.store)
    seeds = _next_seeds(config, earlier)
    with tracking.stage_run("collect", experiment_id=context.experiment_id,
                            parent_run_id=context.parent_run_id) as run_id:
        tracking.log_params({**config.collect.model_dump(), "first_seed": seeds.start,
                             **{f"sim.{k}": v for k, v in config.sim.model_dump().items()}})
        scenarios = [config.sim.sample(seed)
                     for seed in seeds]
        results = rollout(scenarios, sim=config.sim, driver=expert_driver, policy_name="expert",
                          tags={"purpose": "collect", "mlflow_run_id": run_id}, record_observations=True,
                          action_noise=config.collect.action_noise, noise_seed=seeds.start)
        context.store.write_many([episode for episode, _ in results])
        steps = sum(episode.num_steps for episode, _ in results)
        suite = score_suite([record for _, record in results])
        keep = config.collect.dataset_episodes - len(results)
        older = [earlier[seed] for seed in sorted(earlier)[max(0, len(earlier) - keep):]] if keep else []
        episode_ids = [episode.episode_id for episode, _ in results] + older
        snapshot = create_snapshot(
            context.store, context.paths.datasets, episode_ids,
            filters={"purpose": "collect", "new_seeds": [seeds.start, seeds.stop - 1],
                     "earlier_episodes": len(older)},
        )
        tracking.log_dataset(snapshot, context="collected")
        tracking.log_dict({"episodes": [
            {"episode_id": episode.episode_id, "scenario_seed": seed, "status": record.status.value,
             "route_completion": record.route_completion, "steps": episode.num_steps}
            for seed, (episode, record) in zip(seeds, results, strict=True)
        ]}, "collection.json")
        tracking.log_metrics({"episodes": len(results), "steps": steps, "dataset_episodes": len(episode_ids),
                              "expert_driving_score": suite.driving_score})
        tracking.set_tags({"autoloop.dataset_digest": snapshot.digest})
        log.info("collected %d episodes (%d steps); snapshot %s holds %d episodes", len(results), steps,
                 snapshot.digest[:12], len(episode_ids))
        return CollectResult(len(results), steps, suite.driving_score, snapshot, run_id)


def _collected_seeds(store: EpisodeStore) -> dict[int, str]:
    """Scenario seed -> episode id of every expert collection episode in the store."""
    return {int(meta["scenario"]["traffic_seed"]): episode_id
            for episode_id, meta in store.metadata("sim").items() if meta["tags"].get("purpose") == "collect"}


def _next_seeds(config: AutoloopConfig, earlier: dict[int, str]) -> range:
    start = max(max(earlier, default=-1) + 1, config.collect.seed)
    seeds = range(start, start + config.collect.episodes)
    held_out = config.evaluate.seed
    if seeds.start < held_out + config.evaluate.episodes and held_out < seeds.stop:
        raise ValueError(f"the next collection seeds {seeds.start}..{seeds.stop - 1} would reach the held-out "
                         f"evaluation seeds from {held_out}: raise evaluate.seed or use a new AUTOLOOP_HOME")
    return seeds


def train(context: StageContext, snapshot: DatasetSnapshot) -> TrainOutcome:
    """Train a driver on a dataset snapshot (imitation, then ``train.dagger.iterations`` DAgger rounds and
    ``train.ppo.timesteps`` of PPO fine-tuning) and log it as an MLflow model, with its per-step and per-epoch
    losses, its per-epoch checkpoint and every dataset snapshot it saw."""
    config = context.config
    with tracking.stage_run("train", experiment_id=context.experiment_id,
                            parent_run_id=context.parent_run_id) as run_id:
        tracking.log_params(_flat(config.train.model_dump()))
        tracking.log_dataset(snapshot)
        tracking.set_tags({"autoloop.dataset_digest": snapshot.digest})
        tracking.log_text(dump_config(config), "config.yaml")
        data = load_trajectory_arrays(context.store, snapshot, waypoints=config.train.waypoints)
        checkpoints = context.paths.checkpoints / run_id
        epochs = {"done": 0}

        def on_epoch(metrics: EpochMetrics) -> None:
            epochs["done"] += 1
            tracking.log_metrics({"train_loss": metrics.train_loss, "val_loss": metrics.val_loss,
                                  **{f"train_{key}_loss": value for key, value in metrics.parts.items()}},
                                 step=epochs["done"])

        def on_step(step: int, losses: dict[str, float]) -> None:
            if step % STEP_METRICS_EVERY == 0:
                tracking.log_metrics({f"step_{key}_loss": value for key, value in losses.items()}, step=step)

        result = train_bc(data, config.train, checkpoint_dir=checkpoints / "bc", on_epoch=on_epoch, on_step=on_step)
        tracking.log_artifact(checkpoints / "bc" / CHECKPOINT, "checkpoints/bc")
        policy, last, samples = result.policy, result.history[-1], result.samples
        if config.train.dagger.iterations:
            rounds = dagger(policy, snapshot, config=config.train, sim=config.sim, store=context.store,
                            datasets=context.paths.datasets,
                            scenarios=lambda _round: [config.sim.sample(seed) for seed in _dagger_seeds(context)],
                            tags={"mlflow_run_id": run_id}, on_epoch=lambda _round, m: on_epoch(m))
            for done in rounds:
                tracking.log_dataset(done.snapshot, context=f"dagger-{done.round}")
                tracking.log_metrics({"dagger_rollout_driving_score": done.rollout_driving_score,
                                      "dagger_samples": done.result.samples}, step=done.round)
            policy, last, samples = rounds[-1].result.policy, rounds[-1].result.history[-1], rounds[-1].result.samples
            tracking.set_tags({"autoloop.dataset_digest": rounds[-1].snapshot.digest})
        if config.train.ppo.timesteps:
            tuned = train_ppo(config.train.ppo, sim=config.sim, width=config.train.width, hidden=config.train.hidden,
                              init=policy, on_rollout=lambda step, m: tracking.log_metrics(m, step=step))
            policy = tuned.policy
        checkpoint = context.paths.checkpoints / f"{run_id}.pt"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        rows = np.arange(min(len(data), 2))
        example: Observation = {"bev": data.bev(rows), "state": data.state[rows]}
        model = tracking.log_policy(policy, checkpoint, example)
        log.info("trained a %s driver on %d samples: val loss %.4f; model %s", policy.kind, samples, last.val_loss,
                 model.model_uri)
        return TrainOutcome(model, samples, last.train_loss, last.val_loss, snapshot.digest)


#: Per-step losses go to MLflow every this many optimizer steps.
STEP_METRICS_EVERY = 10


def _dagger_seeds(context: StageContext) -> range:
    """Scenario seeds of the next DAgger round: after the highest one already in the store."""
    dagger_config = context.config.train.dagger
    seeds = [int(meta["scenario"]["traffic_seed"]) for meta in context.store.metadata("sim").values()
             if meta["tags"].get("purpose") == "dagger"]
    start = max(max(seeds, default=-1) + 1, dagger_config.seed)
    held_out = context.config.evaluate
    if start < held_out.seed + held_out.episodes and held_out.seed < start + dagger_config.episodes:
        raise ValueError(f"the next DAgger seeds from {start} would reach the held-out evaluation seeds from "
                         f"{held_out.seed}: lower train.dagger.seed or raise evaluate.seed")
    return range(start, start + dagger_config.episodes)


def _flat(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameters as ``a.b`` keys."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def evaluate(context: StageContext, model_uri: str) -> EvaluationResult:
    """Evaluate a driver (``expert`` or an MLflow model URI) closed-loop on the held-out scenarios."""
    with tracking.stage_run("evaluate", experiment_id=context.experiment_id, parent_run_id=context.parent_run_id,
                            tags={"autoloop.model_uri": model_uri}) as run_id:
        result = _evaluate(context, model_uri, run_id)
        tracking.log_params({"model_uri": model_uri, **context.config.evaluate.model_dump()})
        tracking.log_metrics(result.metrics())
        tracking.log_dict(asdict(result), "evaluation.json")
        return result


def promote(context: StageContext, model: tracking.LoggedPolicy, candidate: EvaluationResult) -> PromotionResult:
    """Gate a candidate against the thresholds and the current champion (re-evaluated on the same scenarios);
    register it and move the ``champion`` alias to it if it passes."""
    config = context.config
    name = config.registry.model_name
    with tracking.stage_run("promote", experiment_id=context.experiment_id, parent_run_id=context.parent_run_id,
                            tags={"autoloop.model_uri": model.model_uri}) as run_id:
        tracking.log_params({**config.gate.model_dump(), "model_uri": model.model_uri})
        tracking.log_model_metrics(candidate.metrics(), model=model)
        before = tracking.version_by_alias(name)
        champion = _evaluate(context, before.uri, run_id) if before is not None else None
        verdict = decide(candidate, champion, config.gate)
        tracking.log_dict({"passed": verdict.passed, "checks": [asdict(c) for c in verdict.checks],
                           "champion": before.uri if before else None}, "verdict.json")
        tracking.set_tags({"autoloop.verdict": "passed" if verdict.passed else "failed",
                           "autoloop.reasons": "; ".join(verdict.reasons) or "all checks passed"})
        if champion is not None:
            tracking.log_metrics({"champion_driving_score": champion.driving_score,
                                  "paired_difference": verdict.paired_difference or 0.0})
        registered = None
        if verdict.passed:
            registered = tracking.register(model, name, tags={
                "driving_score": f"{candidate.driving_score:.2f}",
                "route_completion": f"{candidate.route_completion:.2f}",
                "dataset_digest": _dataset_digest(model),
                "promote_run_id": run_id,
            })
            tracking.set_alias(registered, tracking.CHAMPION)
            log.info("promoted %s version %s to champion", name, registered.version)
        else:
            log.info("not promoted: %s", "; ".join(verdict.reasons))
        return PromotionResult(verdict, candidate, champion, before, registered, run_id)


def latest_snapshot(paths: Paths) -> DatasetSnapshot:
    """The most recently written dataset snapshot."""
    manifests = sorted(paths.datasets.glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not manifests:
        raise FileNotFoundError(f"no dataset snapshots under {paths.datasets}: run `autoloop collect` first")
    return load_snapshot(manifests[-1])


def _evaluate(context: StageContext, model_uri: str, run_id: str) -> EvaluationResult:
    return evaluate_driver(_driver(model_uri), policy_name=model_uri, config=context.config, store=context.store,
                           tags={"model_uri": model_uri, "mlflow_run_id": run_id})


def _driver(model_uri: str) -> DriverFactory:
    """``expert`` or a learned driver loaded from MLflow (which does not need the world)."""
    if model_uri == "expert":
        return expert_driver
    policy = tracking.load_policy(model_uri)
    return lambda world: policy


def _dataset_digest(model: tracking.LoggedPolicy) -> str:
    return tracking.run_tag(model.run_id, "autoloop.dataset_digest") or "unknown"


@dataclass(frozen=True)
class CycleSummary:
    """What one cycle did, for people: the CLI's table and the Prefect artifact."""

    cycle_run_id: str | None
    episodes: int
    steps: int
    expert_driving_score: float
    dataset_digest: str
    samples: int
    train_loss: float
    val_loss: float
    candidate_uri: str
    driving_score: float
    route_completion: float
    champion_before: str | None
    champion_driving_score: float | None
    paired_difference: float | None
    passed: bool
    reasons: tuple[str, ...]
    registered_version: str | None
    champion_uri: str
    mlflow_ui: str


def summarize(context: StageContext, collected: CollectResult, trained: TrainOutcome,
              promotion: PromotionResult) -> CycleSummary:
    name = context.config.registry.model_name
    return CycleSummary(
        cycle_run_id=context.parent_run_id,
        episodes=collected.episodes,
        steps=collected.steps,
        expert_driving_score=collected.expert_driving_score,
        dataset_digest=collected.snapshot.digest,
        samples=trained.samples,
        train_loss=trained.train_loss,
        val_loss=trained.val_loss,
        candidate_uri=trained.model.model_uri,
        driving_score=promotion.candidate.driving_score,
        route_completion=promotion.candidate.route_completion,
        champion_before=promotion.champion_before.uri if promotion.champion_before else None,
        champion_driving_score=promotion.champion.driving_score if promotion.champion else None,
        paired_difference=promotion.verdict.paired_difference,
        passed=promotion.verdict.passed,
        reasons=promotion.verdict.reasons,
        registered_version=promotion.registered.version if promotion.registered else None,
        champion_uri=f"models:/{name}@{tracking.CHAMPION}",
        mlflow_ui=tracking.ui_command(context.paths),
    )
