"""Closed-loop rollouts on the embedded simulator: one runner for collection, DAgger, evaluation, the study, the
benchmarks, mining replays and the synthetic fleet.

- :mod:`~autoloop.rollout.runner` — :func:`drive`: a driver, scenarios (batched per map, sharded over
  :mod:`autoloop.compute`), a recorder and :class:`RolloutOptions` (noise, perturbed starts, expert labels and
  takeovers);
- :mod:`~autoloop.rollout.drivers` — what drives: the privileged expert, a learned driver;
- :mod:`~autoloop.rollout.episodes` — routes kept as episodes of the store (:func:`rollout`);
- :mod:`~autoloop.rollout.routes` — routes kept as records and comfort, for scoring.
"""

from autoloop.rollout.drivers import DriverFactory, PolicyDriver, WorldDriver, expert_driver
from autoloop.rollout.episodes import EpisodeRecorder, actor_snapshot, actor_table, rollout, store_file_maps
from autoloop.rollout.routes import DrivenRoute, RouteRecorder
from autoloop.rollout.runner import (
    PLAIN,
    Batch,
    Recorder,
    Recording,
    RolloutOptions,
    Step,
    drive,
    drive_shards,
)

__all__ = [
    "PLAIN",
    "Batch",
    "DrivenRoute",
    "DriverFactory",
    "EpisodeRecorder",
    "PolicyDriver",
    "Recorder",
    "Recording",
    "RolloutOptions",
    "RouteRecorder",
    "Step",
    "WorldDriver",
    "actor_snapshot",
    "actor_table",
    "drive",
    "drive_shards",
    "expert_driver",
    "rollout",
    "store_file_maps",
]
