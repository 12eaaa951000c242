"""Stable-Baselines3 agents on the shared observation encoder: a features extractor for SB3 policies, the warm
start of an actor-critic from an imitation network, and the SB3 policy as a driver (kind ``ppo``).

The SB3 policy's actor is the imitation driver's direct control path: encoder -> one hidden layer (ReLU) ->
``[steer, accel]``; with the warm start, PPO begins where imitation ended (its Gaussian mean is clipped to
[-1, 1] where imitation squashed by ``tanh``). ``stable_baselines3`` is imported only here and in
:mod:`sim.embedded.sb3`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from policies.base import LearnedPolicy
from policies.bc import BcNet, BcPolicy
from policies.encoder import EncoderConfig, ObservationEncoder
from policies.waypoints import WaypointNet, WaypointPolicy
from sim.embedded.observation import Observation, state_prefix


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
    """SB3 ``policy_kwargs`` of an actor-critic on the shared encoder, shaped like the imitation control path."""
    return {"features_extractor_class": BevFeaturesExtractor,
            "features_extractor_kwargs": {"width": width, "hidden": hidden},
            "net_arch": {"pi": [hidden], "vf": [hidden]}, "activation_fn": nn.ReLU,
            "normalize_images": False, "log_std_init": log_std_init}


def warm_start(policy: ActorCriticPolicy, imitation: LearnedPolicy) -> None:
    """Copy an imitation driver's encoder and control path into an actor-critic built with :func:`policy_kwargs`
    (the critic keeps its fresh head; the encoder is shared)."""
    net = imitation.net if isinstance(imitation, BcPolicy | WaypointPolicy) else None
    if isinstance(net, WaypointNet):
        hidden, out = net.trunk[0], net.control_head[0]
    elif isinstance(net, BcNet):
        hidden, out = net.head[0], net.head[2]
    else:
        raise TypeError(f"cannot warm-start PPO from a {imitation.kind} driver")
    extractor = policy.features_extractor
    assert isinstance(extractor, BevFeaturesExtractor)
    extractor.encoder.load_state_dict(net.encoder.state_dict())
    policy.mlp_extractor.policy_net[0].load_state_dict(hidden.state_dict())
    policy.action_net.load_state_dict(out.state_dict())


class Sb3Policy:
    """A :class:`~policies.base.LearnedPolicy` around a trained SB3 actor-critic (deterministic actions)."""

    kind = "ppo"

    def __init__(self, policy: ActorCriticPolicy) -> None:
        self.policy = policy.eval()

    def act(self, observation: Observation) -> NDArray[np.float32]:
        inputs = {key: np.asarray(value) for key, value in observation.items()}
        space = self.policy.observation_space["state"].shape  # type: ignore[index]
        inputs["state"] = state_prefix(np.asarray(inputs["state"], dtype=np.float32), space[0])
        actions, _ = self.policy.predict(inputs, deterministic=True)
        return np.clip(np.asarray(actions, dtype=np.float32), -1.0, 1.0)

    def reset(self, done: NDArray[np.bool_]) -> None:
        """The policy is memoryless."""

    def save(self, path: Path) -> None:
        buffer = io.BytesIO()
        self.policy.save(buffer)  # type: ignore[arg-type]
        torch.save({"kind": self.kind, "sb3": torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)},
                   path)


def from_checkpoint(checkpoint: dict[str, Any]) -> Sb3Policy:
    buffer = io.BytesIO(checkpoint["sb3"].numpy().tobytes())
    return Sb3Policy(ActorCriticPolicy.load(buffer, device="cpu"))  # type: ignore[arg-type]
