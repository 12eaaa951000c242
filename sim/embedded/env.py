"""Gymnasium environments over the embedded world: a native ``VectorEnv`` and a single ``Env``. Reward and info are
the scene's (:mod:`sim.scene.outcome`), the same in CARLA (:class:`sim.carla.env.CarlaEnv`).

==================  =============================================================================================
Action              ``Box(-1, 1, (2,), float32)``: ``[steer, accel]``; steer > 0 turns left, accel < 0 brakes
Observation         ``Dict(bev=Box(0, 1, (9, 128, 128), uint8), state=Box(-4, 4, (25,), float32))`` by default, see
                    :mod:`sim.scene.observation` and :class:`sim.scene.bev.Channel`
Reward              ``0.1 * route progress (m)`` minus ``1 - coefficient`` for each new infraction (Leaderboard
                    coefficients, e.g. 0.4 for hitting a vehicle) minus 1 when the route fails
Terminated          the route is completed, or failed (deviation from the route, agent blocked)
Truncated           the scenario's timeout is reached
Info                ``route_completion`` [0, 1], ``status`` ("" while running), ``infractions`` (counts so far, one
                    per :data:`sim.scene.records.INFRACTIONS`), ``running_score`` (driving score so far: completion
                    so far x penalty so far, LB 2.0); ``driving_score`` [0, 100] of routes that have ended, scored
                    once by :func:`sim.metrics.score_route` (the vector env marks which in ``_driving_score``,
                    Gymnasium's convention)
==================  =============================================================================================

Each reset draws a scenario from the env's seeded generator (:func:`sim.scenarios.sample_scenario`) unless
``options={"scenario": s}`` (single env) or ``options={"scenarios": [...]}`` (vector env) gives them.
The vector env resets finished sub-environments on the next step (``AutoresetMode.NEXT_STEP``) unless
``autoreset=False``, in which case finished sub-environments stay frozen until ``reset``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.typing import NDArray

from sim.embedded.config import WorldConfig
from sim.embedded.world import World
from sim.maps import get_map
from sim.metrics import RouteStatus, score_route
from sim.scenarios import Scenario, sample_scenario
from sim.scene import outcome
from sim.scene.bev import BevSpec
from sim.scene.observation import Observation, Observer, observation_space

ACTION_SPACE = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)


class DrivingVectorEnv(VectorEnv[Observation, NDArray[np.float32], NDArray[Any]]):
    """``num_envs`` scenarios on the embedded simulator, stepped as one batch.

    :param num_envs: batch size.
    :param map_name: map every scenario runs on.
    :param traffic_vehicles: background vehicles in sampled scenarios.
    :param pedestrians: pedestrians in sampled scenarios.
    :param autoreset: reset finished sub-environments on the next step.
    :param world_config: physical and rule parameters (its actor slots grow to fit the traffic asked for).
    :param bev: BEV raster size.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 8, *, map_name: str = "junction4-60", traffic_vehicles: int = 6,
                 pedestrians: int = 0, autoreset: bool = True, world_config: WorldConfig = WorldConfig(),
                 bev: BevSpec = BevSpec()) -> None:
        self.num_envs = num_envs
        self.map_name = map_name
        self.traffic_vehicles = traffic_vehicles
        self.pedestrians = pedestrians
        world_config = dataclasses.replace(world_config,
                                           max_vehicles=max(world_config.max_vehicles, traffic_vehicles),
                                           max_pedestrians=max(world_config.max_pedestrians, pedestrians))
        self.autoreset = autoreset
        if not autoreset:
            self.metadata = {**self.metadata, "autoreset_mode": AutoresetMode.DISABLED}
        self.world = World(get_map(map_name), num_envs, world_config)
        self.observer = Observer(self.world, bev)
        self.single_observation_space = observation_space(bev)
        self.single_action_space = ACTION_SPACE
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._needs_reset = np.zeros(num_envs, dtype=bool)
        self._final_score = np.zeros(num_envs)

    def reset(self, *, seed: int | Sequence[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[Observation, dict[str, Any]]:
        """Start new scenarios in every sub-environment (``options["scenarios"]`` or sampled)."""
        if isinstance(seed, int) or seed is None:
            super().reset(seed=seed)
        else:
            super().reset(seed=int(seed[0]))
        scenarios = (options or {}).get("scenarios")
        if scenarios is None:
            scenarios = [self._sample() for _ in range(self.num_envs)]
        self._start(list(range(self.num_envs)), list(scenarios))
        self._needs_reset[:] = False
        return self.observer.observe(), self._info()

    def step(self, actions: NDArray[np.float32]) -> tuple[Observation, NDArray[np.float64], NDArray[np.bool_],
                                                         NDArray[np.bool_], dict[str, Any]]:
        world = self.world
        restart = np.flatnonzero(self._needs_reset)
        if len(restart):
            self._start(list(restart), [self._sample() for _ in restart])
        was_running = world.running.copy()
        before_progress = world.progress_s.copy()
        before_infractions = world.infractions.copy()
        world.step(np.asarray(actions, dtype=np.float64), mask=~self._needs_reset)
        ended = was_running & ~world.running
        reward = outcome.reward(world.scene, before_progress, before_infractions, ended)
        truncated = ended & world.ended_with(RouteStatus.ROUTE_TIMEOUT)
        terminated = ended & ~truncated
        for env in np.flatnonzero(ended):  # score each route once, when it ends
            self._final_score[env] = score_route(world.route_record(int(env))).driving_score
        self._needs_reset = ended if self.autoreset else np.zeros(self.num_envs, dtype=bool)
        return self.observer.observe(), reward, terminated, truncated, self._info()

    def reset_envs(self, envs: Sequence[int], scenarios: Sequence[Scenario] | None = None) -> Observation:
        """Start new scenarios (given, or sampled) in some sub-environments only; observations of all."""
        envs = [int(e) for e in envs]
        self._start(envs, list(scenarios) if scenarios is not None else [self._sample() for _ in envs])
        self._needs_reset[envs] = False
        return self.observer.observe()

    def _sample(self) -> Scenario:
        return sample_scenario(int(self.np_random.integers(2**31 - 1)), map_name=self.map_name,
                               traffic_vehicles=self.traffic_vehicles, pedestrians=self.pedestrians,
                               timing=self.world.config.lights)

    def _start(self, envs: list[int], scenarios: list[Scenario]) -> None:
        self.world.reset(scenarios, envs)
        self._final_score[envs] = 0.0

    def _info(self) -> dict[str, Any]:
        world = self.world
        info: dict[str, Any] = outcome.info(world.scene)
        ended = ~world.running
        if ended.any():
            info["driving_score"], info["_driving_score"] = np.where(ended, self._final_score, 0.0), ended
        return info


class DrivingEnv(gym.Env[Observation, NDArray[np.float32]]):
    """One scenario at a time on the embedded simulator (see the module docstring for the spaces).

    :param map_name: map every scenario runs on.
    :param traffic_vehicles: background vehicles in sampled scenarios.
    :param pedestrians: pedestrians in sampled scenarios.
    :param world_config: physical and rule parameters.
    :param bev: BEV raster size.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, *, map_name: str = "junction4-60", traffic_vehicles: int = 6, pedestrians: int = 0,
                 world_config: WorldConfig = WorldConfig(), bev: BevSpec = BevSpec()) -> None:
        self._vector = DrivingVectorEnv(1, map_name=map_name, traffic_vehicles=traffic_vehicles,
                                        pedestrians=pedestrians, autoreset=False, world_config=world_config, bev=bev)
        self.observation_space = self._vector.single_observation_space
        self.action_space = self._vector.single_action_space

    @property
    def world(self) -> World:
        return self._vector.world

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Observation, dict[str, Any]]:
        super().reset(seed=seed)
        scenario = (options or {}).get("scenario")
        if scenario is None:
            scenario = sample_scenario(int(self.np_random.integers(2**31 - 1)), map_name=self._vector.map_name,
                                       traffic_vehicles=self._vector.traffic_vehicles,
                                       pedestrians=self._vector.pedestrians, timing=self.world.config.lights)
        obs, info = self._vector.reset(options={"scenarios": [scenario]})
        return _first(obs), _first(info)

    def step(self, action: NDArray[np.float32]) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self._vector.step(np.asarray(action)[None])
        return _first(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]), _first(info)


def _first(batch: dict[str, Any]) -> dict[str, Any]:
    """The first sub-environment's entries of a batched observation or info (masked-out info keys dropped)."""
    return {key: value[0].item() if value[0].ndim == 0 else value[0] for key, value in batch.items()
            if not key.startswith("_") and batch.get(f"_{key}", np.ones(1, dtype=bool))[0]}
