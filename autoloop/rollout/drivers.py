"""What drives a rollout: a factory that builds the driver of each batch's world.

The privileged expert reads the world it drives (a :class:`WorldDriver`) and needs no observations; a learned
driver acts on observations alone and is built once, whatever the world (:class:`PolicyDriver`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from policies.base import Policy
from policies.expert import ExpertDriver
from sim.scene.observation import Observation
from sim.scene.source import SceneSource

#: Builds the driver of a batch's world (any backend's scene: the embedded world, a CARLA scene).
DriverFactory = Callable[[SceneSource], Policy]


@runtime_checkable
class WorldDriver(Protocol):
    """A driver that reads the world it drives (its ``world``), like the privileged expert: the runner renders no
    observations for it."""

    world: SceneSource

    def act(self, observation: Observation | None = None) -> NDArray[np.float32]:
        ...

    def reset(self, done: NDArray[np.bool_]) -> None:
        ...


def expert_driver(world: SceneSource) -> Policy:
    """The privileged expert on ``world``."""
    return ExpertDriver(world)


class PolicyDriver:
    """A driver that needs no world (a learned one), loaded the first time a batch asks for it.

    Pickled (to drive shards on a Ray worker), it carries the loaded policy rather than the way to load it: the
    caller loads it once, and the workers need no access to where it came from.
    """

    def __init__(self, load: Callable[[], Policy]) -> None:
        self._load: Callable[[], Policy] | None = load
        self._policy: Policy | None = None

    @classmethod
    def of(cls, policy: Policy) -> PolicyDriver:
        driver = cls(lambda: policy)
        driver._policy = policy
        return driver

    def __call__(self, world: SceneSource) -> Policy:
        return self.policy()

    def policy(self) -> Policy:
        if self._policy is None:
            assert self._load is not None
            self._policy = self._load()
        return self._policy

    def __getstate__(self) -> dict[str, Any]:
        return {"_load": None, "_policy": self.policy()}
