"""The one protocol every driver implements, and the one every learned driver adds to it."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from sim.scene.observation import Observation


@runtime_checkable
class Policy(Protocol):
    """A batched driver: observations of B egos in, ``(B, 2)`` actions ``[steer, accel]`` in [-1, 1] out."""

    def act(self, observation: Observation) -> NDArray[np.float32]:
        """Actions for a batch of observations (``bev`` ``(B, C, H, W)``, ``state`` ``(B, S)``)."""
        ...

    def reset(self, done: NDArray[np.bool_]) -> None:
        """Forget any per-episode memory of the egos whose ``done`` is true."""
        ...


@runtime_checkable
class LearnedPolicy(Policy, Protocol):
    """A driver that lives in a file: what MLflow logs (the pyfunc model of :mod:`autoloop.tracking.model_code` loads it
    back with :func:`policies.checkpoint.load_policy`), and what training, DAgger and PPO hand on.

    ``kind`` names the implementation in the checkpoint (:data:`policies.checkpoint.KINDS`).
    """

    kind: str

    def save(self, path: Path) -> None:
        """Write everything needed to act again (architecture, weights, controller settings) to one file."""
        ...


@runtime_checkable
class Planner(Protocol):
    """A driver that plans where it drives: after each :meth:`Policy.act`, ``plan_xy`` holds the waypoints it
    planned, ``(B, K, 2)`` metres in the ego frame of the observation it acted on (x forward, y left). Rollouts
    store them with each step (the ``plan_xy`` column, map frame) and the replay viewer draws them."""

    plan_xy: NDArray[np.float64]
