"""The stages of one data-engine cycle, each a function that runs inside an MLflow run of its own.

``collect`` -> ``train`` -> ``evaluate`` -> ``promote``. Prefect flows call these (one per task); they are
plain functions, usable without Prefect.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from autoloop import tracking
from autoloop.carla.evaluate import CarlaSetup, agent_driver, carla_setup, evaluate_in_carla
from autoloop.compute import Compute
from autoloop.config import AutoloopConfig, dump_config
from autoloop.context import StageContext, git_revision
from autoloop.engine.failures import Failure, evaluation_failures
from autoloop.engine.ledger import Ledger, find
from autoloop.engine.regression import with_regression
from autoloop.episodes import (
    DatasetSnapshot,
    EpisodeStore,
    SnapshotPart,
    create_snapshot,
    load_snapshot,
)
from autoloop.evaluation import (
    SIMULATION_CRASHED,
    Comparison,
    EvaluationResult,
    checkpoint_path,
    compare,
    evaluation_suite,
    run_evaluation,
)
from autoloop.evaluation.report import write_report
from autoloop.gating import Check, Verdict, decide
from autoloop.locks import exclusive
from autoloop.paths import Paths
from autoloop.rollout import DriverFactory, PolicyDriver, expert_driver
from sim.metrics import score_suite
from sim.scenarios.suites import Suite
from sim.scene.observation import OBSERVATION_FORMAT

log = logging.getLogger(__name__)


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


def start_cycle(context: StageContext, *, tags: Mapping[str, str] | None = None) -> StageContext:
    """Open the cycle's parent run (with ``tags`` besides the stage's and the profile's); stages started from the
    returned context nest under it."""
    run_id = tracking.create_run(
        f"cycle-{datetime.now(UTC):%Y%m%d-%H%M%S}", experiment_id=context.experiment_id,
        tags={**dict(context.run_tags), "autoloop.stage": "cycle", "autoloop.profile": context.config.profile,
              **(tags or {})},
    )
    return dataclasses.replace(context, parent_run_id=run_id)


def finish_cycle(context: StageContext, *, failed: bool = False) -> None:
    if context.parent_run_id:
        tracking.end_run(context.parent_run_id, failed=failed)


def collect(context: StageContext) -> CollectResult:
    """Source new episodes the data engine's way (:mod:`autoloop.engine.sourcing`: a share of the budget on what
    failed in the last evaluations and the fleet, driven by the champion with the expert labelling; the rest drawn
    for breadth and driven by the expert with exploration noise), store them, keep the fleet moments used in the
    regression suite, and snapshot the accumulated dataset with a part per reason."""
    from autoloop.engine.sourcing import fleet_moments, generated, source  # (torch: imported where it is used)

    config = context.config
    ledger = Ledger(context.paths.engine)
    first = reserve_seeds(context.paths, config, _collected_seeds(context.store))
    with tracking.stage_run("collect", experiment_id=context.experiment_id, parent_run_id=context.parent_run_id,
                            tags=dict(context.run_tags)) as run_id:
        tracking.log_params({**_flat(config.collect.model_dump()), "first_seed": first,
                             **_flat(config.engine.model_dump(), "engine."),
                             **{f"sim.{k}": v for k, v in config.sim.model_dump().items()}})
        champion = _champion_driver(config)
        shadowed, passes = _shadow(context, ledger, champion[0]) if champion is not None else ([], [])
        moments, skipped = fleet_moments(context.store, ledger, limit=config.engine.fleet_moments, extra=shadowed)
        bounds = config.engine.perturbation
        sourced = source(
            config, context.store, ledger, first_seed=first, champion=champion, moments=moments,
            tags={"mlflow_run_id": run_id}, compute=Compute.from_config(config.compute),
            generate=lambda scenario, count, seed: generated(scenario, count, bounds=bounds,
                                                         seed=config.engine.seed + seed))
        results = list(sourced.results)
        context.store.write_many([episode for episode, _ in results])
        ledger.mark_used([*passes, *(moment.key for moment in sourced.moments)])
        if config.evaluate.regression:
            ledger.regression.add(sourced.moments)
        steps = sum(episode.num_steps for episode, _ in results)
        suite = score_suite([record for _, record in results])
        snapshot = _accumulated_snapshot(context, config)
        tracking.log_dataset(snapshot, context="collected")
        tracking.log_dict({"weights": sourced.weights.to_json() if sourced.weights else None,
                           "left_out": [*skipped, *sourced.notes],
                           "episodes": [{"episode_id": episode.episode_id, "part": item.part, "reason": item.reason,
                                         "seed": item.seed, "status": record.status.value,
                                         "route_completion": record.route_completion, "steps": episode.num_steps}
                                        for item, (episode, record) in zip(sourced.planned, results, strict=True)]},
                          "collection.json")
        parts = {part: sum(item.part == part for item in sourced.planned)
                 for part in ("breadth", "targeted", "fleet", "generated")}
        tracking.log_metrics({"episodes": len(results), "steps": steps, "dataset_episodes": len(snapshot.episode_ids),
                              "expert_driving_score": suite.driving_score,
                              **{f"{part}_episodes": count for part, count in parts.items()}})
        tracking.set_tags({"autoloop.dataset_digest": snapshot.digest})
        log.info("collected %d episodes (%d steps: %s); snapshot %s holds %d episodes", len(results), steps,
                 ", ".join(f"{count} {part}" for part, count in parts.items() if count), snapshot.digest[:12],
                 len(snapshot.episode_ids))
        return CollectResult(len(results), steps, suite.driving_score, snapshot, run_id)


def _shadow(context: StageContext, ledger: Ledger, champion_uri: str) -> tuple[list[Failure], list[str]]:
    """Shadow mode of the champion on fleet logs it has not shadowed yet: its moments and the passes to mark
    used; the summaries go to the run."""
    from autoloop.engine.sourcing import shadow_pass

    config = context.config
    logged = tracking.logged_policy(champion_uri)
    moments, summaries, passes = shadow_pass(context.store, ledger, model_id=logged.model_id,
                                     policy=tracking.load_policy(logged.model_uri), bev=config.sim.bev(),
                                     waypoints=config.train.waypoints, episodes=config.engine.shadow_episodes)
    if summaries:
        tracking.log_dict({"champion": champion_uri, "logs": summaries}, "shadow.json")
        for name in ("ade_m", "fde_m", "collision_rate", "off_road_rate", "score"):
            values = [float(summary[name]) for summary in summaries if name in summary]
            if values:
                tracking.log_metrics({f"shadow_{name}": float(np.nanmean(values))})
        log.info("shadow mode: %s drove %d fleet logs open-loop; %d moments to learn from", champion_uri,
                 len(summaries), len(moments))
    return moments, passes


def _accumulated_snapshot(context: StageContext, config: AutoloopConfig) -> DatasetSnapshot:
    """Every collected episode (the newest ``collect.dataset_episodes`` when set) and the newest fleet episodes, a
    part per reason: breadth and fleet logs of weight 1, what failed of weight ``engine.failure_weight``."""
    collected = {episode_id: meta["tags"] for episode_id, meta in context.store.metadata("sim").items()
                 if meta["tags"].get("purpose") == "collect"}
    chosen = sorted(collected, key=lambda episode_id: (int(collected[episode_id].get("collection", -1)),
                                                       int(collected[episode_id].get("collect_seed", -1)), episode_id))
    if config.collect.dataset_episodes is not None:
        chosen = chosen[-config.collect.dataset_episodes:]
    fleet = _newest_fleet_episodes(context.store, config.collect.fleet_episodes)
    groups: dict[tuple[str, str], list[str]] = {}
    for episode_id in chosen:
        tags = collected[episode_id]
        part = tags.get("part", "breadth")
        groups.setdefault((part, "" if part == "breadth" else tags.get("reason", "")), []).append(episode_id)
    if fleet:
        groups[("fleet_logs", "fleet logs, learned from by their recorded future")] = fleet
    parts = [SnapshotPart(name=f"{part}-{index}" if part != "breadth" else "breadth",
                          reason=reason or "drawn uniformly over types and places", episode_ids=tuple(ids),
                          weight=1.0 if part in ("breadth", "fleet_logs") else config.engine.failure_weight)
             for index, ((part, reason), ids) in enumerate(sorted(groups.items()))]
    return create_snapshot(context.store, context.paths.datasets, chosen + fleet,
                           filters={"purpose": "collect", "collected_episodes": len(chosen),
                                    "fleet_episodes": len(fleet)}, parts=parts)


def _champion_driver(config: AutoloopConfig) -> tuple[str, DriverFactory] | None:
    """The champion's URI and driver, when there is one of this code's observation format."""
    champion = _usable_champion(config, "to collect")
    return (champion.uri, resolve_driver(champion.uri)[1]) if champion is not None else None


def _usable_champion(config: AutoloopConfig, purpose: str) -> tracking.ModelVersionRef | None:
    """The champion, when there is one this code can drive (of its observation format; another is passed over, said
    in the log with ``purpose``)."""
    champion = tracking.version_by_alias(config.registry.model_name)
    if champion is None:
        return None
    found = tracking.observation_format(champion.uri)
    if found != OBSERVATION_FORMAT:
        log.warning("champion %s not used %s: its observation format is %s (expected %s)", champion.uri, purpose,
                    found, OBSERVATION_FORMAT)
        return None
    return champion


def _newest_fleet_episodes(store: EpisodeStore, count: int) -> list[str]:
    """Up to ``count`` fleet episodes of the store, the newest written (by day, then id)."""
    if count == 0:
        return []
    manifests = store.manifests("fleet")
    newest = sorted(manifests, key=lambda episode_id: (str(manifests[episode_id].get("date", "")), episode_id))
    return newest[-count:]


def _collected_seeds(store: EpisodeStore) -> set[int]:
    """Collection seeds of every collected episode in the store."""
    return {int(meta["tags"]["collect_seed"]) for meta in store.metadata("sim").values()
            if meta["tags"].get("purpose") == "collect" and "collect_seed" in meta["tags"]}


#: The home's record of the collection seeds handed out (``{"next": <first seed not yet handed out>}``).
SEEDS_FILE = "collect-seeds.json"


def reserve_seeds(paths: Paths, config: AutoloopConfig, earlier: set[int]) -> int:
    """Hand out the next collection's seeds (``collect.episodes`` of them from the returned first one), exclusively:
    under a lock on the home, after every seed collected (``earlier``) and every seed handed out before, so that
    collections started at once on one home never drive the same seeds (seeds of a collection that stopped early
    stay unused)."""
    import json
    import os

    record = paths.home / SEEDS_FILE
    with exclusive(paths.home / f".{SEEDS_FILE}.lock"):
        try:
            handed_out = int(json.loads(record.read_text())["next"]) if record.is_file() else 0
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{record}: not a seed record (delete it: seeds then start after the stored "
                             "episodes' seeds)") from None
        first = _first_seed(config, earlier | ({handed_out - 1} if handed_out > 0 else set()))
        temporary = record.with_name(f".{SEEDS_FILE}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"next": first + config.collect.episodes}) + "\n")
        os.replace(temporary, record)
        return first


def _first_seed(config: AutoloopConfig, earlier: set[int]) -> int:
    """The next collection's first seed: after the highest collected; on one map (``collect.source: map``), its
    seeds must stay clear of the held-out evaluation seeds."""
    start = max(max(earlier, default=-1) + 1, config.collect.seed)
    held_out = config.evaluate.seed
    if config.collect.source == "map" and config.evaluate.suite is None and \
            start < held_out + config.evaluate.episodes and held_out < start + config.collect.episodes:
        raise ValueError(f"the next collection seeds {start}..{start + config.collect.episodes - 1} would reach "
                         f"the held-out evaluation seeds from {held_out}: raise evaluate.seed or use a new "
                         f"AUTOLOOP_HOME")
    return start


def train(context: StageContext, snapshot: DatasetSnapshot) -> TrainOutcome:
    """Train a driver on a dataset snapshot with the training pipeline (:mod:`autoloop.training.pipeline`:
    imitation, on ``compute.train_processes`` processes under ``torchrun`` when there are several, then
    ``train.dagger.iterations`` DAgger rounds, ``train.ppo.timesteps`` of PPO fine-tuning and ``train.sac.timesteps``
    of SAC fine-tuning, each starting from the driver before it) and log it as an MLflow model, with its per-step
    and per-epoch losses, its per-epoch checkpoint and every dataset snapshot it saw."""
    from autoloop.training import EpochMetrics, TrainResult, train_bc
    from autoloop.training.dagger import DaggerRound
    from autoloop.training.launch import torchrun, train_processes
    from autoloop.training.loop import CHECKPOINT
    from autoloop.training.pipeline import train_pipeline
    from autoloop.training.stream import StreamedSnapshot
    from autoloop.training.warm import initial_policy, schedule

    config = context.config
    with tracking.stage_run("train", experiment_id=context.experiment_id, parent_run_id=context.parent_run_id,
                            tags=dict(context.run_tags)) as run_id:
        tracking.log_params(_flat(config.train.model_dump()))
        tracking.log_dataset(snapshot)
        tracking.set_tags({"autoloop.dataset_digest": snapshot.digest})
        tracking.log_text(dump_config(config), "config.yaml")
        data = StreamedSnapshot(context.store, snapshot, waypoints=config.train.waypoints, bev=config.sim.bev())
        processes = train_processes(config)
        champion = _usable_champion(config, "to warm-start from")
        start = initial_policy(
            config.train if processes == 1 else config.train.model_copy(update={"init": "scratch"}),
            bev_shape=data.bev_shape, state_size=data.state_size,
            load_champion=lambda: tracking.load_policy(champion.uri) if champion else None,
            champion_name=champion.uri if champion else "")
        if processes > 1 and config.train.init == "champion":
            log.warning("train.init champion: data-parallel training (%d processes) starts from scratch", processes)
        settings = schedule(config.train, start.warm)
        tracking.log_params({"init_from": champion.uri if start.warm and champion else "scratch"})
        tracking.set_tags({"autoloop.init": start.message})
        checkpoints = context.paths.checkpoints / run_id
        epochs = {"done": 0}

        def on_epoch(_stage: str, metrics: EpochMetrics) -> None:
            epochs["done"] += 1
            tracking.log_metrics({"train_loss": metrics.train_loss, "val_loss": metrics.val_loss,
                                  **{f"train_{key}_loss": value for key, value in metrics.parts.items()}},
                                 step=epochs["done"])

        def on_step(step: int, losses: dict[str, float]) -> None:
            if step % STEP_METRICS_EVERY == 0:
                tracking.log_metrics({"step_loss" if key == "loss" else f"step_{key}_loss": value
                                      for key, value in losses.items()}, step=step)

        def imitate() -> TrainResult:
            """Imitation, on ``compute.train_processes`` processes under ``torchrun`` when there are several."""
            if processes > 1:
                launched = torchrun(config, paths=context.paths, snapshot=snapshot, checkpoints=checkpoints / "bc",
                                    processes=processes)
                for metrics in launched.history:
                    on_epoch("bc", metrics)
                result = TrainResult(launched.policy, launched.history, launched.samples)
            else:
                result = train_bc(data, settings, policy=start.policy, checkpoint_dir=checkpoints / "bc",
                                  on_epoch=functools.partial(on_epoch, "bc"), on_step=on_step)
            tracking.log_artifact(checkpoints / "bc" / CHECKPOINT, "checkpoints/bc")
            return result

        def on_round(done: DaggerRound) -> None:
            tracking.log_dataset(done.snapshot, context=f"dagger-{done.round}")
            tracking.log_metrics({"dagger_rollout_driving_score": done.rollout_driving_score,
                                  "dagger_samples": done.result.samples}, step=done.round)
            tracking.set_tags({"autoloop.dataset_digest": done.snapshot.digest})

        stages = train_pipeline(
            snapshot, config=settings, sim=config.sim, store=context.store, datasets=context.paths.datasets,
            folder=checkpoints, imitate=imitate,
            dagger_scenarios=lambda _round: [config.sim.sample(seed) for seed in _dagger_seeds(context)],
            tags={"mlflow_run_id": run_id}, compute=Compute.from_config(config.compute), on_epoch=on_epoch,
            on_round=on_round, on_rollout=lambda step, metrics: tracking.log_metrics(metrics, step=step))
        policy = stages[-1].policy
        imitation = [stage.result for stage in stages if stage.result is not None][-1]
        last, samples = imitation.history[-1], imitation.samples
        checkpoint = context.paths.checkpoints / f"{run_id}.pt"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        model = tracking.log_policy(policy, checkpoint, data.example())
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


@dataclass(frozen=True)
class EvaluateOutcome:
    """An evaluation stage: the result, its MLflow run, and where its report went."""

    result: EvaluationResult
    run_id: str
    report_uri: str


def load_evaluation(run_id: str, model: tracking.LoggedPolicy) -> EvaluateOutcome:
    """The outcome of an earlier evaluate stage of ``model``, from its MLflow run (``evaluation.json`` and the
    report's tag).

    :raises ValueError: when the run is no evaluation, or the evaluation of another model.
    """
    result = EvaluationResult.from_json(tracking.load_dict(run_id, "evaluation.json"))
    evaluated = tracking.run_tag(run_id, "autoloop.model_uri") or ""
    if not evaluated.startswith("models:/") or tracking.logged_policy(evaluated).model_id != model.model_id:
        raise ValueError(f"run {run_id} evaluated {evaluated or 'no model'}, not {model.model_uri}")
    return EvaluateOutcome(result, run_id, tracking.run_tag(run_id, "autoloop.report") or "")


def evaluate(context: StageContext, model_uri: str) -> EvaluateOutcome:
    """Evaluate a driver (``expert``, a checkpoint file, or an MLflow model URI) closed-loop on the evaluation
    suite (``evaluate.suite``, else the held-out scenarios), resuming its checkpoint if an earlier run stopped;
    logs metrics, per-route results and the report (Markdown + HTML) to the stage's MLflow run.

    With ``evaluate.backend: carla`` the driver drives ``evaluate.carla.routes`` in the CARLA Leaderboard's evaluator
    instead (:mod:`autoloop.carla.evaluate`); the run also carries the versions of CARLA and the Leaderboard and the
    route file's name and SHA-256.

    :raises ValueError: when ``model_uri`` names no driver, or the CARLA backend's inputs are unusable (before any
        MLflow run is made).
    """
    config = context.config
    # (a driver that does not exist, or a CARLA input that is not there, fails here, before any run is made)
    driver = resolve_driver(model_uri)
    carla = evaluation_backend(config)
    with tracking.stage_run("evaluate", experiment_id=context.experiment_id, parent_run_id=context.parent_run_id,
                            tags={**dict(context.run_tags), "autoloop.model_uri": model_uri,
                                  "autoloop.backend": config.evaluate.backend}) as run_id:
        settings = config.evaluate.model_dump(exclude=None if carla else {"carla"})
        suite = _suite(context) if carla is None else None  # (the held-out scenarios when evaluate.suite is unset)
        tracking.log_params({"model_uri": model_uri, **_flat(settings), **({"suite": suite.name} if suite else {})})
        if suite is not None:
            tracking.log_suite(suite.name, suite.content_hash, len(suite.scenarios))
        if carla is not None:
            tracking.set_tags(carla.tags())
        result = _evaluate(context, model_uri, driver, run_id, carla=carla)
        tracking.log_metrics(result.metrics())
        tracking.log_dict(result.to_json(), "evaluation.json")
        report = write_report(result, context.paths.reports / run_id, store=context.store,
                              clips=config.evaluate.report_clips, title=f"Evaluation of {model_uri}")
        report_uri = tracking.log_artifacts(report.folder, "report") + "/report.html"
        tracking.set_tags({"autoloop.suite": result.suite, "autoloop.suite_hash": result.suite_hash,
                           "autoloop.report": report_uri})
        log.info("%s on %s: DS %s, success %.0f %%, %d failed runs", model_uri, result.suite,
                 result.intervals["driving_score"], result.success_rate, result.failed_runs)
        return EvaluateOutcome(result, run_id, report_uri)


@dataclass(frozen=True)
class PromotionResult:
    """What the promote stage decided.

    :param champion_before: the champion when the candidate was judged (``None``: there was none).
    :param champion: its evaluation; ``None`` too when it was skipped, being of another observation format.
    :param registered: the candidate's new version (alias ``challenger``); ``None`` when its evaluation did not
        run every route.
    :param promoted: whether it took ``champion``.
    """

    verdict: Verdict
    candidate: EvaluationResult
    champion: EvaluationResult | None
    comparison: Comparison | None
    champion_before: tracking.ModelVersionRef | None
    registered: tracking.ModelVersionRef | None
    promoted: bool
    run_id: str
    report_uri: str


#: How often a promotion compares again when another one moved the champion meanwhile.
PROMOTION_ATTEMPTS = 3


def promote(context: StageContext, model: tracking.LoggedPolicy, candidate: EvaluateOutcome, *,
            lock: tracking.RegistryLock | None = None) -> PromotionResult:
    """Register a candidate that ran its whole evaluation as a new version (alias ``challenger``), compare it with
    the champion on the same routes (the champion's evaluation resumes or reuses its checkpoint), apply the gate,
    and on a pass move ``champion`` to it (the old one keeps ``previous-champion``). The verdict and every reason
    go to the version's tags and the run's ``verdict.json``; the report with the comparison to the run.

    :param lock: held around every registry write (default: :func:`autoloop.tracking.registry_lock`, one machine's).
    """
    config = context.config
    name = config.registry.model_name
    lock = lock or tracking.registry_lock(context.paths)
    result = candidate.result
    carla = evaluation_backend(config)  # (the champion drives where the candidate did; checked before the run)
    with tracking.stage_run("promote", experiment_id=context.experiment_id, parent_run_id=context.parent_run_id,
                            tags={**dict(context.run_tags), "autoloop.model_uri": model.model_uri}) as run_id:
        tracking.log_params({**config.gate.model_dump(), "model_uri": model.model_uri})
        tracking.log_model_metrics(result.metrics(), model=model)
        registered = None
        if not any(route.status == SIMULATION_CRASHED for route in result.routes):
            registered = tracking.register(model.model_uri, name, lock=lock, tags={
                **result.headline(), "dataset_digest": _dataset_digest(model), "suite": result.suite,
                "suite_hash": result.suite_hash, "git_sha": git_revision(), "evaluation_run_id": candidate.run_id,
                "promote_run_id": run_id, "verdict": "pending",
            }, description=f"Evaluation report: the artifact `report/report.html` of the evaluation run "
               f"[{candidate.run_id}](#/experiments/{context.experiment_id}/runs/{candidate.run_id}).")
        promoted, before, champion, comparison = False, None, None, None
        suite = _suite(context)
        for _ in range(PROMOTION_ATTEMPTS):
            before = tracking.version_by_alias(name)
            champion, comparison = _compare_with(context, before, result, run_id, carla=carla)
            verdict = decide(result, comparison, config.gate, champion=champion,
                             regression=suite.regression if suite.content_hash == result.suite_hash else (),
                             failing_ds=config.engine.failing_ds)
            if registered is None or not verdict.passed:
                break
            promoted = tracking.promote(registered, expected_champion=before.version if before else None, lock=lock)
            if promoted:
                break
            log.info("another promotion moved the champion meanwhile: comparing with the new one")
        else:
            verdict = Verdict(False, (*verdict.checks, Check(
                "champion stable", False, f"the champion moved during each of {PROMOTION_ATTEMPTS} comparisons")))
        report = write_report(result, context.paths.reports / run_id, store=context.store, comparison=comparison,
                              clips=config.evaluate.report_clips, title=f"Promotion of {model.model_uri}")
        report_uri = tracking.log_artifacts(report.folder, "report") + "/report.html"
        outcome = "passed" if verdict.passed else "failed"
        tracking.log_dict({**verdict.to_json(), "champion": before.uri if before else None,
                           "registered": registered.uri if registered else None, "promoted": promoted},
                          "verdict.json")
        tracking.set_tags({"autoloop.verdict": outcome, "autoloop.report": report_uri,
                           "autoloop.reasons": "; ".join(verdict.reasons) or "all checks passed"})
        if comparison is not None:
            tracking.log_metrics({"champion_driving_score": comparison.champion_driving_score,
                                  "paired_difference": comparison.difference.mean,
                                  "paired_difference_ci_low": comparison.difference.low,
                                  "paired_difference_ci_high": comparison.difference.high})
        changes = _data_changes(context, model, before)
        tracking.set_tags({"autoloop.data_changes": changes})
        if registered is not None:
            tracking.set_version_tags(registered, {
                "verdict": outcome, "reasons": "; ".join(verdict.reasons) or "all checks passed",
                "compared_with": before.version if before is not None and champion is not None else "none",
                "promote_report": report_uri, "data_changes": changes}, lock=lock)
        _learn(context, suite, result, champion, promoted)
        log.info("%s %s: %s", model.model_uri, "promoted to champion" if promoted else "not promoted",
                 "; ".join(verdict.reasons) or "all checks passed")
        return PromotionResult(verdict, result, champion, comparison, before, registered, promoted, run_id,
                               report_uri)


def _learn(context: StageContext, suite: Suite, candidate: EvaluationResult, champion: EvaluationResult | None,
           promoted: bool) -> None:
    """What the next cycles learn from this promotion: the failures of the candidate and the champion (the next
    collection's findings), and the routes a champion failed (the champion's, and the candidate's when it took
    over) kept in the regression suite."""
    if candidate.suite_hash != suite.content_hash:
        log.warning("the candidate's evaluation is of another suite than today's (%s): nothing learned from it",
                    candidate.suite)
        return
    engine = context.config.engine
    ledger = Ledger(context.paths.engine)
    results = [candidate] + ([champion] if champion is not None else [])
    findings = find(results, suite, failing_ds=engine.failing_ds)
    ledger.write_findings(findings)
    if context.config.evaluate.regression:
        champions = ([champion] if champion is not None else []) + ([candidate] if promoted else [])
        ledger.regression.add([failure for result in champions
                               for failure in evaluation_failures(result, suite, failing_ds=engine.failing_ds)])
    log.info("findings: %d failed routes of %d for the next collection", len(findings.failures),
             len(candidate.routes))


def _data_changes(context: StageContext, model: tracking.LoggedPolicy,
                  champion: tracking.ModelVersionRef | None) -> str:
    """What changed in the training data since the champion's, in one line: episodes added per part, and the
    newest reasons."""
    mine = _snapshot_of(context, _dataset_digest(model))
    if mine is None:
        return "unknown: the candidate's dataset snapshot is not in this home"
    theirs = _snapshot_of(context, tracking.run_tag(champion.run_id, "autoloop.dataset_digest") or "") \
        if champion else None
    before = set(theirs.episode_ids) if theirs is not None else set()
    added: Counter[str] = Counter()
    reasons: list[str] = []
    for part in mine.parts:
        new = [episode_id for episode_id in part.episode_ids if episode_id not in before]
        if new:
            added[part.name.split("-")[0]] += len(new)
            if part.name != "breadth" and part.reason not in reasons:
                reasons.append(part.reason)
    since = f"since {champion.uri}" if champion is not None else "(first champion)"
    counts = ", ".join(f"{kind} {count}" for kind, count in sorted(added.items())) or "none"
    shown = "; ".join(reasons[:5]) + (f"; and {len(reasons) - 5} more" if len(reasons) > 5 else "")
    return f"+{sum(added.values())} episodes {since} ({counts})" + (f": {shown}" if shown else "")


def _snapshot_of(context: StageContext, digest: str) -> DatasetSnapshot | None:
    path = context.paths.datasets / f"{digest}.json"
    return load_snapshot(path) if digest and path.is_file() else None


def rollback(context: StageContext, *, lock: tracking.RegistryLock | None = None) -> tuple[str, str]:
    """Move ``champion`` back to the version it replaced; returns ``(from version, to version)``."""
    return tracking.rollback(context.config.registry.model_name, lock=lock or tracking.registry_lock(context.paths))


def _compare_with(context: StageContext, champion: tracking.ModelVersionRef | None, candidate: EvaluationResult,
                  run_id: str, *, carla: CarlaSetup | None) -> tuple[EvaluationResult | None, Comparison | None]:
    """The champion's evaluation and the paired comparison with it; ``(None, None)`` without a champion, or with
    one logged with another observation format than this autoloop's (it cannot drive here: the candidate is then
    judged alone)."""
    if champion is None:
        return None, None
    found = tracking.observation_format(champion.uri)
    if found != OBSERVATION_FORMAT:
        log.warning("champion %s skipped: its observation format is %s (expected %s); the candidate is judged "
                    "without a comparison", champion.uri, "none" if found is None else found, OBSERVATION_FORMAT)
        return None, None
    result = _evaluate(context, champion.uri, resolve_driver(champion.uri), run_id, carla=carla)
    settings = context.config.evaluate
    return result, compare(candidate, result, resamples=settings.bootstrap_resamples, confidence=settings.confidence,
                           seed=settings.bootstrap_seed)


def latest_snapshot_path(paths: Paths) -> Path:
    """The manifest of the most recently written dataset snapshot.

    :raises FileNotFoundError: when there is none, saying what to run.
    """
    manifests = sorted(paths.datasets.glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not manifests:
        raise FileNotFoundError(f"no dataset snapshots under {paths.datasets}: run `autoloop collect` first")
    return manifests[-1]


def latest_snapshot(paths: Paths) -> DatasetSnapshot:
    """The most recently written dataset snapshot."""
    return load_snapshot(latest_snapshot_path(paths))


def training_snapshot(paths: Paths, manifest: str | None) -> DatasetSnapshot:
    """The snapshot a training run reads: ``manifest``'s, else the most recent one under ``paths``."""
    return load_snapshot(Path(manifest)) if manifest else latest_snapshot(paths)


def evaluation_backend(config: AutoloopConfig) -> CarlaSetup | None:
    """The checked inputs of a CARLA evaluation (``evaluate.backend: carla``), or ``None`` for the embedded
    simulator.

    :raises ValueError: one line naming the setting or file that cannot be used.
    """
    return carla_setup(config.evaluate) if config.evaluate.backend == "carla" else None


def _evaluate(context: StageContext, model_uri: str, driver: tuple[str, DriverFactory], run_id: str, *,
              carla: CarlaSetup | None) -> EvaluationResult:
    """The evaluation of ``model_uri``: on the embedded simulator, or in CARLA with ``carla``; either resumes or
    reuses its checkpoint."""
    config = context.config
    identity, factory = driver
    tags = {"model_uri": model_uri, "model_identity": identity, "mlflow_run_id": run_id}
    version = tracking.registered_version(model_uri)
    if version is not None:
        tags["model_version"] = version.uri
    if carla is not None:
        return evaluate_in_carla(carla, driver=agent_driver(model_uri, identity), identity=identity,
                                 policy_name=model_uri, config=config, paths=context.paths, tags=tags)
    suite = _suite(context)
    checkpoint = checkpoint_path(context.paths.evaluations, identity=identity, suite=suite, sim=config.sim,
                                 scorer=config.evaluate.scorer)
    return run_evaluation(suite, factory, policy_name=model_uri, identity=identity, sim=config.sim,
                          settings=config.evaluate, store=context.store, checkpoint=checkpoint, tags=tags,
                          compute=Compute.from_config(config.compute))


def _suite(context: StageContext) -> Suite:
    """What candidates drive: the evaluation suite (:func:`autoloop.evaluation.evaluation_suite`), with the
    regression suite after it when ``evaluate.regression``."""
    suite = evaluation_suite(context.config)
    if not context.config.evaluate.regression:
        return suite
    return with_regression(suite, Ledger(context.paths.engine).regression.routes(context.store))


def resolve_driver(spec: str) -> tuple[str, DriverFactory]:
    """What evaluation drives for ``spec`` and its identity for checkpoints: ``expert``, a checkpoint file
    (identity: its content hash), or an MLflow model URI (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``,
    ``models:/m-...``; identity: the logged model id, so an alias resolves to what it points at now). A learned
    driver is loaded the first time a batch needs it (a complete checkpoint needs none).

    :raises ValueError: when ``spec`` is none of these, or names a model, version or alias that does not exist.
    """
    if spec == "expert":
        return "expert", expert_driver
    if spec.startswith("models:/"):
        logged = tracking.logged_policy(spec)
        return logged.model_id, PolicyDriver(functools.partial(tracking.load_policy, logged.model_uri))
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"driver {spec!r} is neither 'expert', a models:/ URI nor a checkpoint file")
    from policies.checkpoint import load_policy

    load_policy(path)  # (a file that is not a driver checkpoint fails here, naming itself, before any work)
    identity = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    return identity, PolicyDriver(functools.partial(load_policy, path))


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
    promoted: bool = False
    report_uri: str = ""


def record_cycle(context: StageContext, summary: CycleSummary) -> None:
    """Put the cycle's summary on its parent run: what it collected and trained on as params, its scores as
    metrics (a run list of cycles then compares cycles)."""
    if context.parent_run_id is None:
        return
    tracking.log_params({"profile": context.config.profile, "dataset_digest": summary.dataset_digest,
                         "candidate_uri": summary.candidate_uri, "champion_before": summary.champion_before or "none",
                         "registered_version": summary.registered_version or "none",
                         "verdict": "passed" if summary.passed else "failed"}, run_id=context.parent_run_id)
    metrics = {"episodes": summary.episodes, "steps": summary.steps, "samples": summary.samples,
               "expert_driving_score": summary.expert_driving_score, "train_loss": summary.train_loss,
               "val_loss": summary.val_loss, "driving_score": summary.driving_score,
               "route_completion": summary.route_completion, "promoted": float(summary.promoted)}
    if summary.champion_driving_score is not None:
        metrics["champion_driving_score"] = summary.champion_driving_score
    if summary.paired_difference is not None:
        metrics["paired_difference"] = summary.paired_difference
    tracking.log_metrics(metrics, run_id=context.parent_run_id)


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
        promoted=promotion.promoted,
        report_uri=promotion.report_uri,
    )
