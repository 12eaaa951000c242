"""Stable-Baselines3 agents on the shared observation encoder: a features extractor for SB3 policies, the warm
start of PPO's actor-critic and of SAC's actor from an imitation network, and the SB3 policy as a driver (kind
``ppo`` or ``sac``).

The SB3 policy's actor is the imitation driver's direct control path: encoder -> one hidden layer (ReLU) ->
``[steer, accel]``. With the warm start, PPO begins where imitation ended up to the squashing (its Gaussian mean
is clipped to [-1, 1] where imitation squashed by ``tanh``), and SAC begins exactly where it ended (SAC squashes
its Gaussian by ``tanh`` too). ``stable_baselines3`` is imported only here, in :mod:`sim.embedded.sb3` and in the
training modules.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

from policies.base import LearnedPolicy
from policies.bc import BcNet, BcPolicy
from policies.checkpoint import write_checkpoint
from policies.encoder import EncoderConfig, ObservationEncoder
from policies.waypoints import WaypointNet, WaypointPolicy
from sim.scene.observation import Observation


class BevFeaturesExtractor(BaseFeaturesExtractor):
    """SB3 features extractor: :class:`~policies.encoder.ObservationEncoder` of the ``Dict(bev, state)``
    observations (SB3 must not scale the 0/1 BEV as an image: ``normalize_images=False``)."""

    def __init__(self, observation_space: gym.spaces.Dict, width: int = 16, hidden: int = 128) -> None:
        bev, state = observation_space["bev"], observation_space["state"]
        assert bev.shape is not None and state.shape is not None
        config = EncoderConfig(bev_channels=bev.shape[0], bev_size_px=bev.shape[1], state_size=state.shape[0],
                               width=width, hidden=hidden)
        super().__init__(observation_space, config.features)
        self.encoder = ObservationEncoder(config)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        features: torch.Tensor = self.encoder(observations["bev"], observations["state"])
        return features


def policy_kwargs(width: int, hidden: int, log_std_init: float) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` of a PPO actor-critic on the shared encoder, shaped like the imitation control path."""
    return {**_encoder_kwargs(width, hidden), "net_arch": {"pi": [hidden], "vf": [hidden]},
            "log_std_init": log_std_init}


def sac_policy_kwargs(width: int, hidden: int) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` of a SAC policy on the shared encoder: the actor (its own features extractor, SB3's
    default) shaped like the imitation control path, two critics with one hidden layer each."""
    return {**_encoder_kwargs(width, hidden), "net_arch": {"pi": [hidden], "qf": [hidden]}}


def _encoder_kwargs(width: int, hidden: int) -> dict[str, Any]:
    return {"features_extractor_class": BevFeaturesExtractor,
            "features_extractor_kwargs": {"width": width, "hidden": hidden}, "activation_fn": nn.ReLU,
            "normalize_images": False}


def warm_start(policy: ActorCriticPolicy, imitation: LearnedPolicy) -> None:
    """Copy an imitation driver's encoder and control path into an actor-critic built with :func:`policy_kwargs`
    (the critic keeps its fresh head; the encoder is shared)."""
    encoder, hidden, out = _control_path(imitation)
    _extractor(policy.features_extractor).encoder.load_state_dict(encoder.state_dict())
    policy.mlp_extractor.policy_net[0].load_state_dict(hidden.state_dict())
    policy.action_net.load_state_dict(out.state_dict())


def warm_start_sac(policy: SACPolicy, driver: LearnedPolicy, *, log_std_init: float) -> None:
    """Copy a driver's encoder and control path into a SAC policy built with :func:`sac_policy_kwargs`: the
    encoder into the actor's and the critics' features extractors, the hidden and output layers into the actor's
    ``latent_pi`` and ``mu``, so the deterministic action ``tanh(mu)`` is the imitation control head's. The
    actor's log standard deviation starts at the constant ``log_std_init`` (zero weights); the critics keep fresh
    heads, and the target critics start as copies of the critics.

    :param driver: an imitation driver (``bc``, ``waypoints``) or a PPO driver (whose mean SAC then squashes by
        ``tanh`` where PPO clipped it).
    """
    encoder, hidden, out = _control_path(driver)
    actor, critic = policy.actor, policy.critic
    _extractor(actor.features_extractor).encoder.load_state_dict(encoder.state_dict())
    _extractor(critic.features_extractor).encoder.load_state_dict(encoder.state_dict())
    actor.latent_pi[0].load_state_dict(hidden.state_dict())
    actor.mu.load_state_dict(out.state_dict())
    assert isinstance(actor.log_std, nn.Linear)
    with torch.no_grad():
        actor.log_std.weight.zero_()
        actor.log_std.bias.fill_(log_std_init)
    policy.critic_target.load_state_dict(critic.state_dict())


def _control_path(driver: LearnedPolicy) -> tuple[nn.Module, nn.Module, nn.Module]:
    """A driver's encoder, hidden layer (Linear, before its ReLU) and control output layer (Linear)."""
    if isinstance(driver, Sb3Policy) and isinstance(driver.policy, ActorCriticPolicy):
        return (_extractor(driver.policy.features_extractor).encoder, driver.policy.mlp_extractor.policy_net[0],
                driver.policy.action_net)
    net = driver.net if isinstance(driver, BcPolicy | WaypointPolicy) else None
    if isinstance(net, WaypointNet):
        return net.encoder, net.trunk[0], net.control_head[0]
    if isinstance(net, BcNet):
        return net.encoder, net.head[0], net.head[2]
    raise TypeError(f"cannot warm-start an SB3 policy from a {driver.kind} driver")


def _extractor(module: nn.Module) -> BevFeaturesExtractor:
    assert isinstance(module, BevFeaturesExtractor)
    return module


#: SB3 policy class of each driver kind.
POLICY_CLASSES: dict[str, type[BasePolicy]] = {"ppo": ActorCriticPolicy, "sac": SACPolicy}


class Sb3Policy:
    """A :class:`~policies.base.LearnedPolicy` around a trained SB3 policy (deterministic actions): a PPO
    actor-critic (kind ``ppo``) or a SAC policy (kind ``sac``)."""

    def __init__(self, policy: BasePolicy) -> None:
        self.policy = policy.eval()
        self.kind = "sac" if isinstance(policy, SACPolicy) else "ppo"
        if not isinstance(policy, POLICY_CLASSES[self.kind]):
            raise TypeError(f"not a PPO or SAC policy: {type(policy).__name__}")

    def act(self, observation: Observation) -> NDArray[np.float32]:
        inputs = {key: np.asarray(value) for key, value in observation.items()}
        actions, _ = self.policy.predict(inputs, deterministic=True)
        return np.clip(np.asarray(actions, dtype=np.float32), -1.0, 1.0)

    def reset(self, done: NDArray[np.bool_]) -> None:
        """The policy is memoryless."""

    def save(self, path: Path) -> None:
        buffer = io.BytesIO()
        self.policy.save(buffer)  # type: ignore[arg-type]
        write_checkpoint(path, self.kind, {"sb3": torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)})


def from_checkpoint(checkpoint: dict[str, Any]) -> Sb3Policy:
    buffer = io.BytesIO(checkpoint["sb3"].numpy().tobytes())
    return Sb3Policy(POLICY_CLASSES[checkpoint["kind"]].load(buffer, device="cpu"))  # type: ignore[arg-type]
