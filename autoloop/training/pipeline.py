"""The training pipeline: imitation on a dataset snapshot, then ``config.dagger.iterations`` DAgger rounds, then
``config.ppo.timesteps`` of PPO and ``config.sac.timesteps`` of SAC fine-tuning, each stage starting from the driver
before it. The train stage (:func:`autoloop.stages.train`) and the driving-quality study
(:mod:`autoloop.training.study`) both run it.

Each stage's driver is saved in the pipeline's folder as the stage ends: ``bc.pt``, ``dagger-<n>.pt`` (with
``dagger-<n>.snapshot``, the path of the dataset snapshot the round trained on), ``ppo.pt``, ``sac.pt``. Run again
on the same folder, the pipeline loads the stages it finds there instead of training them again, and goes on from
the last one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autoloop.compute import IN_PROCESS, Compute
from autoloop.config import SimConfig, TrainConfig
from autoloop.episodes import DatasetSnapshot, EpisodeStore, load_snapshot
from autoloop.training.bc import TrainResult, train_bc
from autoloop.training.dagger import DaggerRound, dagger
from autoloop.training.loop import EpochMetrics
from autoloop.training.ppo import train_ppo
from autoloop.training.sac import train_sac
from autoloop.training.stream import StreamedSnapshot
from policies.base import LearnedPolicy
from policies.checkpoint import load_policy
from sim.scenarios import Scenario


@dataclass(frozen=True)
class Stage:
    """A finished stage of the pipeline.

    :param name: ``bc``, ``dagger-<n>``, ``ppo`` or ``sac`` (its driver's file name in the folder).
    :param policy: the driver it ended with.
    :param snapshot: the dataset snapshot of the last imitation before it (DAgger rounds add to the dataset).
    :param result: for an imitation stage trained in this call: its epochs' losses and samples (``None`` for RL
        stages and stages loaded from the folder).
    """

    name: str
    policy: LearnedPolicy
    snapshot: DatasetSnapshot
    result: TrainResult | None = None


def train_pipeline(snapshot: DatasetSnapshot, *, config: TrainConfig, sim: SimConfig, store: EpisodeStore,
                   datasets: Path, folder: Path, dagger_scenarios: Callable[[int], Sequence[Scenario]],
                   rl_sim: SimConfig | None = None, imitate: Callable[[], TrainResult] | None = None,
                   tags: dict[str, str] | None = None, compute: Compute = IN_PROCESS,
                   on_epoch: Callable[[str, EpochMetrics], None] | None = None,
                   on_round: Callable[[DaggerRound], None] | None = None,
                   on_rollout: Callable[[int, dict[str, float]], None] | None = None,
                   on_stage: Callable[[Stage], None] | None = None) -> list[Stage]:
    """Run (or resume, from ``folder``) the pipeline on ``snapshot``; every stage, in order.

    :param sim: the simulator of DAgger's rollouts (and the BEV imitation trains on).
    :param datasets: where DAgger's snapshots go.
    :param folder: where each stage's driver is saved (and found again).
    :param dagger_scenarios: the scenarios the learner drives in DAgger round ``n`` (1, 2, ...).
    :param rl_sim: the simulator PPO and SAC sample scenarios on (default: ``sim``).
    :param imitate: trains the first driver (default: :func:`~autoloop.training.bc.train_bc` on the snapshot's
        samples, epochs checkpointed under ``folder/bc``); called only when the folder holds no ``bc.pt``.
    :param tags: stored with DAgger's episodes, besides ``purpose=dagger``.
    :param compute: where DAgger's rollouts run.
    :param on_epoch: sees the imitation stage's name and each of its epochs' metrics.
    :param on_round: sees each DAgger round trained in this call.
    :param on_rollout: sees PPO's and SAC's step counts and metrics.
    :param on_stage: sees each stage as it ends (or is loaded).
    """
    folder.mkdir(parents=True, exist_ok=True)
    stages: list[Stage] = []

    def done(stage: Stage) -> Stage:
        stages.append(stage)
        if on_stage is not None:
            on_stage(stage)
        return stage

    # imitation
    if (folder / "bc.pt").exists():
        stage = done(Stage("bc", load_policy(folder / "bc.pt"), snapshot))
    else:
        if imitate is None:
            data = StreamedSnapshot(store, snapshot, waypoints=config.waypoints, bev=sim.bev())
            imitate = functools.partial(train_bc, data, config, checkpoint_dir=folder / "bc",
                                        on_epoch=functools.partial(on_epoch, "bc") if on_epoch else None)
        result = imitate()
        result.policy.save(folder / "bc.pt")
        stage = done(Stage("bc", result.policy, snapshot, result))
    # DAgger: the rounds already in the folder, then the others
    rounds = config.dagger.iterations
    first = 1
    while first <= rounds and (folder / f"dagger-{first}.pt").exists():
        trained = load_snapshot(Path((folder / f"dagger-{first}.snapshot").read_text()))
        stage = done(Stage(f"dagger-{first}", load_policy(folder / f"dagger-{first}.pt"), trained))
        first += 1

    def round_done(finished: DaggerRound) -> None:
        name = f"dagger-{finished.round}"
        finished.result.policy.save(folder / f"{name}.pt")
        (folder / f"{name}.snapshot").write_text(str(finished.snapshot.path))
        if on_round is not None:
            on_round(finished)
        done(Stage(name, finished.result.policy, finished.snapshot, finished.result))

    def round_epoch(number: int, metrics: EpochMetrics) -> None:
        if on_epoch is not None:
            on_epoch(f"dagger-{number}", metrics)

    if first <= rounds:
        remaining = config.model_copy(update={"dagger": config.dagger.model_copy(
            update={"iterations": rounds - first + 1})})
        dagger(stage.policy, stage.snapshot, config=remaining, sim=sim, store=store, datasets=datasets,
               scenarios=dagger_scenarios, tags=tags, first_round=first, compute=compute, on_epoch=round_epoch,
               on_round=round_done)
        stage = stages[-1]
    # RL fine-tuning, SAC after PPO when both run
    tunings = [("ppo", config.ppo.timesteps, functools.partial(train_ppo, config.ppo)),
               ("sac", config.sac.timesteps, functools.partial(train_sac, config.sac))]
    for name, timesteps, tune in tunings:
        if not timesteps:
            continue
        file = folder / f"{name}.pt"
        if file.exists():
            policy = load_policy(file)
        else:
            policy = tune(sim=rl_sim or sim, width=config.width, hidden=config.hidden, init=stage.policy,
                          on_rollout=on_rollout).policy
            policy.save(file)
        stage = done(Stage(name, policy, stage.snapshot))
    return stages
