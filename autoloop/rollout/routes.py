"""Rollouts kept as route results only (benchmarks, the study's scores, mining replays): :class:`RouteRecorder`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from autoloop.rollout.runner import Batch, Step
from sim.metrics import RouteRecord, comfort


class DrivenRoute(NamedTuple):
    """A route's Leaderboard record and its comfort (Bench2Drive's, in [0, 1]; 1 for a route of under three
    steps)."""

    record: RouteRecord
    comfort: float


@dataclass(frozen=True)
class RouteRecorder:
    """Keeps each route's record and the comfort of its ride: a :class:`DrivenRoute` per scenario."""

    def begin(self, batch: Batch) -> _RouteRecording:
        return _RouteRecording(batch)


class _RouteRecording:
    def __init__(self, batch: Batch) -> None:
        self.world = batch.world
        self.running: list[NDArray[np.bool_]] = []
        self.speed_mps: list[NDArray[np.float64]] = []
        self.yaw_rad: list[NDArray[np.float64]] = []

    def before_step(self, step: Step) -> None:
        pass

    def after_step(self, step: Step) -> None:
        """The ride as it went: each step's speed and heading after it, while the route ran."""
        self.running.append(step.running)
        self.speed_mps.append(self.world.ego.speed_mps.copy())
        self.yaw_rad.append(self.world.ego.yaw_rad.copy())

    def finish(self) -> list[DrivenRoute]:
        running, speed, yaw = np.array(self.running), np.array(self.speed_mps), np.array(self.yaw_rad)
        routes = []
        for slot in range(self.world.batch_size):
            frames = running[:, slot]
            smooth = comfort(speed[frames, slot], yaw[frames, slot], self.world.config.dt_s) if (
                frames.sum() >= 3) else 1.0
            routes.append(DrivenRoute(self.world.route_record(slot), smooth))
        return routes
