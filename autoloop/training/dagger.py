"""DAgger: the learner drives, the expert labels every state it visits, the labelled episodes join the dataset, and
training continues on all of it — the closed loop that fixes compounding errors.

Each round stores its rollouts as episodes (``purpose: dagger``; the expert runs alongside on the same world state
and records its action and intended trajectory, see :class:`autoloop.rollout.RolloutOptions`) and writes a new dataset
snapshot: the base snapshot's episodes plus every DAgger episode so far. The rounds show as progress (``dagger``,
counted from round 1 when continuing earlier rounds), each round's rollouts and retraining as their own.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autoloop.compute import IN_PROCESS, Compute
from autoloop.config import SimConfig, TrainConfig
from autoloop.episodes import DatasetSnapshot, EpisodeStore, SnapshotPart, create_snapshot
from autoloop.progress import Progress
from autoloop.rollout import PolicyDriver, RolloutOptions, rollout
from autoloop.training.bc import TrainResult, train_bc
from autoloop.training.loop import EpochMetrics
from autoloop.training.stream import StreamedSnapshot
from policies.base import LearnedPolicy
from sim.metrics import score_suite
from sim.scenarios import Scenario

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DaggerRound:
    """One round: the learner's driving score on its rollouts (before retraining), the new snapshot, the
    retrained driver."""

    round: int
    rollout_driving_score: float
    episodes: int
    snapshot: DatasetSnapshot
    result: TrainResult


def dagger(policy: LearnedPolicy, base: DatasetSnapshot, *, config: TrainConfig, sim: SimConfig,
           store: EpisodeStore, datasets: Path, scenarios: Callable[[int], Sequence[Scenario]],
           tags: dict[str, str] | None = None, first_round: int = 1, compute: Compute = IN_PROCESS,
           on_epoch: Callable[[int, EpochMetrics], None] | None = None,
           on_round: Callable[[DaggerRound], None] | None = None) -> list[DaggerRound]:
    """Run ``config.dagger.iterations`` rounds from ``policy`` (trained on ``base``).

    :param scenarios: the scenarios the learner drives in round ``r`` (1, 2, ...); grouped by map, a world each.
    :param on_epoch: sees the round and each retraining epoch's metrics.
    :param on_round: sees each finished round.
    :param first_round: number of the first round (to continue an earlier call's rounds).
    :param compute: where the learner's rollouts run (this process, or shards on a Ray cluster).
    """
    rounds = []
    episode_ids = list(base.episode_ids)
    parts = list(base.parts)
    with Progress("dagger", first_round - 1 + config.dagger.iterations, "rounds", done=first_round - 1) as progress:
        for number in range(first_round, first_round + config.dagger.iterations):
            results = []
            for group in by_map(scenarios(number)):
                results += rollout(group, sim=sim_for(sim, group), driver=PolicyDriver.of(policy),
                                   policy_name=f"dagger-{number}", tags={"purpose": "dagger", **(tags or {})},
                                   options=RolloutOptions(labels=True, takeover_s=config.dagger.takeover_s),
                                   compute=compute)
            store.write_many([episode for episode, _ in results])
            episode_ids += [episode.episode_id for episode, _ in results]
            score = score_suite([record for _, record in results]).driving_score
            parts.append(SnapshotPart(f"dagger-{number}", f"DAgger round {number}: the learner's states, labelled by "
                                      "the expert", tuple(episode.episode_id for episode, _ in results)))
            snapshot = create_snapshot(store, datasets, episode_ids, parts=parts,
                                       filters={"purpose": "dagger", "round": number, "base": base.digest})
            data = StreamedSnapshot(store, snapshot, waypoints=config.waypoints)
            result = train_bc(data, config, policy=policy, epochs=config.dagger.epochs,
                              on_epoch=functools.partial(on_epoch, number) if on_epoch else None)
            policy = result.policy
            done = DaggerRound(number, score, len(results), snapshot, result)
            log.info("DAgger round %d: learner DS %.1f on %d routes; retrained on %d samples (snapshot %s)", number,
                     score, len(results), result.samples, snapshot.digest[:12])
            rounds.append(done)
            if on_round is not None:
                on_round(done)
            progress.advance()
    return rounds


def by_map(scenarios: Sequence[Scenario]) -> list[list[Scenario]]:
    """Scenarios grouped by map (a world runs one map), in first-seen order."""
    groups: dict[str, list[Scenario]] = {}
    for scenario in scenarios:
        groups.setdefault(scenario.map_name, []).append(scenario)
    return list(groups.values())


def sim_for(sim: SimConfig, group: Sequence[Scenario]) -> SimConfig:
    """``sim`` on the group's map, with actor slots for its busiest scenario (events included)."""
    from sim.scenarios.suites import EVENT_PEDESTRIANS, EVENT_VEHICLES

    vehicles = max(s.traffic_vehicles for s in group) + (EVENT_VEHICLES if any(s.events for s in group) else 0)
    pedestrians = max(s.pedestrians for s in group) + (EVENT_PEDESTRIANS if any(s.events for s in group) else 0)
    return sim.model_copy(update={"map_name": group[0].map_name,
                                  "traffic_vehicles": max(vehicles, sim.traffic_vehicles),
                                  "pedestrians": max(pedestrians, sim.pedestrians)})
