"""RL fine-tuning with stable-baselines3 PPO on the native batched simulator (:class:`sim.embedded.sb3.Sb3VecEnv`).

The reward is the environment's, in the spirit of Roach / CaRL: 0.1 per metre of route progress, minus
``1 - penalty`` for each Leaderboard infraction (0.5 for a pedestrian, 0.4 for a vehicle, 0.3 for a red light, ...),
minus 1 when the route fails (deviation, blocked). The actor-critic shares the imitation drivers' encoder and is
warm-started from their weights (:func:`policies.sb3.warm_start`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from autoloop.config import PpoConfig, SimConfig
from autoloop.training.rl import FineTuneResult, RouteTracker, learn, make_vec_env
from policies.base import LearnedPolicy
from policies.sb3 import policy_kwargs, warm_start


def make_ppo(env: VecEnv, config: PpoConfig, *, width: int, hidden: int, init: LearnedPolicy | None = None,
             device: str = "cpu") -> PPO:
    """A PPO agent on ``env`` with the shared encoder, warm-started from ``init`` when given (and
    ``config.warm_start``)."""
    model = PPO("MultiInputPolicy", env, learning_rate=config.learning_rate, n_steps=config.n_steps,
                batch_size=config.batch_size, n_epochs=config.n_epochs, seed=config.seed, device=device,
                policy_kwargs=policy_kwargs(width, hidden, config.log_std_init), verbose=0)
    if init is not None and config.warm_start:
        warm_start(model.policy, init)
    return model


def train_ppo(config: PpoConfig, *, sim: SimConfig, width: int, hidden: int, init: LearnedPolicy | None = None,
              on_rollout: Callable[[int, dict[str, float]], None] | None = None) -> FineTuneResult:
    """Fine-tune for ``config.timesteps`` environment steps; ``on_rollout`` sees the step count and the metrics of
    each rollout (mean reward per step, driving score of the routes that ended in it)."""
    torch.manual_seed(config.seed)
    env = make_vec_env(sim, config.num_envs)
    env.seed(config.seed)
    model = make_ppo(env, config, width=width, hidden=hidden, init=init)
    tracker = RouteTracker(on_rollout, prefix="ppo")
    return learn(model, env, config.timesteps, tracker)


class GymVectorVecEnv(VecEnv):
    """SB3 view of any Gymnasium vector env built with ``autoreset_mode=SAME_STEP`` (e.g. a ``SyncVectorEnv`` of
    single envs), for comparing it with the native :class:`~sim.embedded.sb3.Sb3VecEnv`."""

    def __init__(self, env: VectorEnv) -> None:
        if env.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
            raise ValueError("GymVectorVecEnv needs a vector env with autoreset_mode=SAME_STEP")
        self.env = env
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self._actions: Any = None
        self._seed: int | None = None

    def reset(self) -> VecEnvObs:
        obs, _ = self.env.reset(seed=self._seed)
        self._seed = None
        return obs  # type: ignore[no-any-return]

    def step_async(self, actions: Any) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        obs, reward, terminated, truncated, info = self.env.step(self._actions)
        done = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for env in np.flatnonzero(done):
            infos[env]["terminal_observation"] = {key: value[env] for key, value in info["final_obs"][env].items()}
            infos[env]["TimeLimit.truncated"] = bool(truncated[env] and not terminated[env])
        return obs, np.asarray(reward, dtype=np.float32), done, infos

    def close(self) -> None:
        self.env.close()

    def seed(self, seed: int | None = None) -> list[int | None]:
        self._seed = seed
        return [seed] * self.num_envs

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.env, attr_name)] * self.num_envs

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        return [getattr(self.env, method_name)(*method_args, **method_kwargs)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * self.num_envs
