"""What the SB3 fine-tunings share (:mod:`autoloop.training.ppo`, :mod:`autoloop.training.sac`): the native
batched simulator as an SB3 ``VecEnv``, a callback reporting the driving scores of the routes that end, and the
learning run (its environment steps shown as :class:`~autoloop.progress.Progress`) with its result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit

from autoloop.config import SimConfig
from autoloop.progress import Progress
from policies.sb3 import Sb3Policy
from sim.embedded.sb3 import Sb3VecEnv


def make_vec_env(sim: SimConfig, num_envs: int) -> Sb3VecEnv:
    """The SB3 view of ``num_envs`` sampled scenarios on ``sim``'s map, stepped as one batch."""
    return Sb3VecEnv(num_envs=num_envs, map_name=sim.map_name, traffic_vehicles=sim.traffic_vehicles,
                     pedestrians=sim.pedestrians, bev=sim.bev())


class RouteTracker(BaseCallback):
    """Collects the driving scores of routes that end, and reports the metrics of the steps since the last report
    (``<prefix>_reward_per_step``: mean reward per step; ``<prefix>_routes_ended``; ``<prefix>_driving_score``:
    mean driving score of those routes, when any ended) with the step count.

    :param on_report: receives the step count and the metrics.
    :param prefix: of the metric names (``ppo``, ``sac``).
    :param every: report at the end of the first rollout at least this many environment steps after the last report
        (0: every rollout, PPO's; SAC's rollouts are ``train_freq`` vector steps), and at the end of training.
    """

    def __init__(self, on_report: Callable[[int, dict[str, float]], None] | None, *, prefix: str,
                 every: int = 0) -> None:
        super().__init__()
        self.on_report = on_report
        self.prefix = prefix
        self.every = every
        self.all_scores: list[float] = []
        self._scores: list[float] = []
        self._rewards: list[float] = []
        self._reported_at = 0

    def _on_step(self) -> bool:
        infos: list[dict[str, Any]] = self.locals["infos"]
        self._rewards.append(float(np.mean(self.locals["rewards"])))
        scores = [info["driving_score"] for info in infos if "driving_score" in info]
        self._scores += scores
        self.all_scores += scores
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps - self._reported_at >= self.every:
            self._report()

    def _on_training_end(self) -> None:
        if self._rewards:
            self._report()

    def _report(self) -> None:
        metrics = {f"{self.prefix}_reward_per_step": float(np.mean(self._rewards)) if self._rewards else 0.0,
                   f"{self.prefix}_routes_ended": float(len(self._scores))}
        if self._scores:
            metrics[f"{self.prefix}_driving_score"] = float(np.mean(self._scores))
        self._scores, self._rewards, self._reported_at = [], [], self.num_timesteps
        if self.on_report is not None:
            self.on_report(self.num_timesteps, metrics)


@dataclass(frozen=True)
class FineTuneResult:
    """An RL fine-tuning: the driver (kind ``ppo`` or ``sac``), the environment steps taken, and the routes that
    ended during training with their mean driving score (NaN when none ended)."""

    policy: Sb3Policy
    timesteps: int
    finished_routes: int
    mean_driving_score: float


def learn(model: BaseAlgorithm, env: Sb3VecEnv, timesteps: int, tracker: RouteTracker) -> FineTuneResult:
    """Let ``model`` learn ``timesteps`` environment steps on ``env`` (closed afterwards), ``tracker`` watching;
    the steps show as progress named after the tracker's prefix."""
    learn_steps(model, timesteps, what=tracker.prefix, callback=tracker)
    env.close()
    scores = tracker.all_scores
    return FineTuneResult(policy=Sb3Policy(model.policy), timesteps=int(model.num_timesteps),
                          finished_routes=len(scores),
                          mean_driving_score=float(np.mean(scores)) if scores else float("nan"))


def learn_steps(model: BaseAlgorithm, timesteps: int, *, what: str, callback: BaseCallback | None = None,
                reset_num_timesteps: bool = True) -> None:
    """``model.learn(timesteps)`` with its environment steps shown as :class:`~autoloop.progress.Progress` (``what``)
    against the steps it takes (:func:`planned_timesteps`).

    :param callback: also watches the run.
    :param reset_num_timesteps: as SB3's; ``False`` counts on from the steps already taken.
    """
    start = 0 if reset_num_timesteps else model.num_timesteps
    with Progress(what, start + planned_timesteps(model, timesteps), "steps", done=start) as progress:
        model.learn(total_timesteps=timesteps, callback=[*([callback] if callback else []), _Advance(progress)],
                    reset_num_timesteps=reset_num_timesteps)


def planned_timesteps(model: BaseAlgorithm, timesteps: int) -> int:
    """The environment steps ``model.learn(timesteps)`` takes: ``timesteps`` rounded up to whole rollouts of every
    env at once (PPO's: ``n_steps`` per env; SAC's: ``train_freq`` vector steps; rollouts counted in episodes:
    vector steps)."""
    if isinstance(model, OnPolicyAlgorithm):
        chunk = model.n_steps * model.n_envs
    elif isinstance(model, OffPolicyAlgorithm) and isinstance(model.train_freq, TrainFreq) \
            and model.train_freq.unit == TrainFrequencyUnit.STEP:
        chunk = model.train_freq.frequency * model.n_envs
    else:
        chunk = model.n_envs
    return -(-timesteps // chunk) * chunk


class _Advance(BaseCallback):
    """Moves a :class:`~autoloop.progress.Progress` to the run's step count after each vector step."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def _on_step(self) -> bool:
        self.progress.update(self.num_timesteps)
        return True
