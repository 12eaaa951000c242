"""The one protocol every driver implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from sim.embedded.observation import Observation


@runtime_checkable
class Policy(Protocol):
    """A batched driver: observations of B egos in, ``(B, 2)`` actions ``[steer, accel]`` in [-1, 1] out."""

    def act(self, observation: Observation) -> NDArray[np.float32]:
        """Actions for a batch of observations (``bev`` ``(B, C, H, W)``, ``state`` ``(B, S)``)."""
        ...

    def reset(self, done: NDArray[np.bool_]) -> None:
        """Forget any per-episode memory of the egos whose ``done`` is true."""
        ...
