"""A stable-baselines3 ``VecEnv`` over the native batched environment: SB3 trains on the embedded simulator
without a process (or a Python env object) per scenario.

SB3's conventions differ from Gymnasium 1.x vector envs: a finished sub-environment is reset within the same
``step`` call, its last observation goes to ``info["terminal_observation"]``, and a timeout sets
``info["TimeLimit.truncated"]``. ``stable_baselines3`` is imported only here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from sim.embedded.env import DrivingVectorEnv


class Sb3VecEnv(VecEnv):
    """SB3 view of a :class:`~sim.embedded.env.DrivingVectorEnv` (built here with ``autoreset=False``).

    :param env_kwargs: arguments of :class:`~sim.embedded.env.DrivingVectorEnv` (``num_envs``, ``map_name``, ...).
    """

    def __init__(self, **env_kwargs: Any) -> None:
        self.env = DrivingVectorEnv(**{**env_kwargs, "autoreset": False})
        super().__init__(self.env.num_envs, self.env.single_observation_space, self.env.single_action_space)
        self._actions: NDArray[np.float32] | None = None
        self._seed: int | None = None

    def reset(self) -> VecEnvObs:
        obs, _ = self.env.reset(seed=self._seed)
        self._seed = None
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: NDArray[Any]) -> None:
        self._actions = np.asarray(actions, dtype=np.float32).reshape(self.num_envs, -1)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        obs, reward, terminated, truncated, info = self.env.step(self._actions)
        self._actions = None
        done = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for env in range(self.num_envs):
            infos[env]["route_completion"] = float(info["route_completion"][env])
            infos[env]["running_score"] = float(info["running_score"][env])
        finished = [int(env) for env in np.flatnonzero(done)]
        if finished:
            for env in finished:
                infos[env]["terminal_observation"] = {key: value[env].copy() for key, value in obs.items()}
                infos[env]["TimeLimit.truncated"] = bool(truncated[env] and not terminated[env])
                infos[env]["driving_score"] = float(info["driving_score"][env])
                infos[env]["status"] = str(info["status"][env])
            obs = self.env.reset_envs(finished)
        return obs, reward.astype(np.float32), done, infos

    def close(self) -> None:
        self.env.close()

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        self._seed = seed
        return [seed] * self.num_envs

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.env, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def _indices(self, indices: VecEnvIndices) -> Iterable[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return indices
