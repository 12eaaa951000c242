"""RL fine-tuning with stable-baselines3 SAC on the native batched simulator (:class:`sim.embedded.sb3.Sb3VecEnv`).

The reward is the environment's, as for PPO (:mod:`autoloop.training.ppo`). SAC is off-policy: transitions go to
a replay buffer (SB3's ``DictReplayBuffer`` of ``Dict(bev, state)`` observations; BEVs are large, so the buffer
is small) and every ``train_freq`` vector steps the actor, two critics and the entropy coefficient take
``gradient_steps`` gradient steps. The actor and the critics each have a features extractor (SB3's default for
SAC), the shared encoder; the warm start (:func:`policies.sb3.warm_start_sac`) makes the actor's deterministic
action the imitation driver's control head exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.vec_env import VecEnv

from autoloop.config import SacConfig, SimConfig
from autoloop.training.rl import FineTuneResult, RouteTracker, learn, make_vec_env
from policies.base import LearnedPolicy
from policies.sb3 import sac_policy_kwargs, warm_start_sac

#: Fine-tuning metrics are reported after at least this many environment steps (SAC's rollouts are short).
REPORT_EVERY = 1024


def make_sac(env: VecEnv, config: SacConfig, *, width: int, hidden: int, init: LearnedPolicy | None = None,
             device: str = "cpu") -> SAC:
    """A SAC agent on ``env`` with the shared encoder, warm-started from ``init`` when given (and
    ``config.warm_start``)."""
    model = SAC("MultiInputPolicy", env, learning_rate=config.learning_rate, buffer_size=config.buffer_size,
                learning_starts=config.learning_starts, batch_size=config.batch_size, tau=config.tau,
                gamma=config.gamma, train_freq=config.train_freq, gradient_steps=config.gradient_steps,
                ent_coef=config.ent_coef, replay_buffer_class=DictReplayBuffer, seed=config.seed, device=device,
                policy_kwargs=sac_policy_kwargs(width, hidden), verbose=0)
    if init is not None and config.warm_start:
        warm_start_sac(model.policy, init, log_std_init=config.log_std_init)
    return model


def train_sac(config: SacConfig, *, sim: SimConfig, width: int, hidden: int, init: LearnedPolicy | None = None,
              on_rollout: Callable[[int, dict[str, float]], None] | None = None) -> FineTuneResult:
    """Fine-tune for ``config.timesteps`` environment steps; ``on_rollout`` sees the step count and the metrics
    of every :data:`REPORT_EVERY` steps or so (mean reward per step, driving score of the routes that ended)."""
    torch.manual_seed(config.seed)
    env = make_vec_env(sim, config.num_envs)
    env.seed(config.seed)
    model = make_sac(env, config, width=width, hidden=hidden, init=init)
    tracker = RouteTracker(on_rollout, prefix="sac", every=REPORT_EVERY)
    return learn(model, env, config.timesteps, tracker)
