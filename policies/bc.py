"""A behaviour-cloning driver: the shared observation encoder and a two-layer head to ``[steer, accel]``
squashed into [-1, 1] by ``tanh``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from policies.checkpoint import load_policy, write_checkpoint
from policies.encoder import EncoderConfig, ObservationEncoder
from sim.scene.observation import Observation


@dataclass(frozen=True)
class BcNetConfig:
    """Architecture of :class:`BcNet` (see :class:`~policies.encoder.EncoderConfig` for the encoder's fields).

    :param bev_channels: BEV channels ``C``.
    :param bev_size_px: BEV height and width.
    :param state_size: length of the state vector.
    :param width: channels of the first convolution.
    :param hidden: width of the fused head.
    """

    bev_channels: int
    bev_size_px: int
    state_size: int
    width: int = 16
    hidden: int = 128

    def encoder(self) -> EncoderConfig:
        return EncoderConfig(self.bev_channels, self.bev_size_px, self.state_size, self.width, self.hidden)


class BcNet(nn.Module):
    """``(bev uint8 (B, C, H, W), state float (B, S)) -> actions (B, 2)`` in [-1, 1]."""

    def __init__(self, config: BcNetConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ObservationEncoder(config.encoder())
        self.head = nn.Sequential(
            nn.Linear(config.encoder().features, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, 2), nn.Tanh(),
        )

    def forward(self, bev: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.encoder(bev, state))
        return out


def torch_inputs(net: nn.Module, observation: Observation) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of observations as ``(bev, state)`` tensors on the net's device."""
    device = next(net.parameters()).device
    bev = torch.from_numpy(np.ascontiguousarray(observation["bev"])).to(device)
    state = torch.from_numpy(np.ascontiguousarray(observation["state"], dtype=np.float32)).to(device)
    return bev, state


class BcPolicy:
    """A :class:`~policies.base.LearnedPolicy` around a trained :class:`BcNet`."""

    kind = "bc"

    def __init__(self, net: BcNet) -> None:
        self.net = net.eval()

    def act(self, observation: Observation) -> NDArray[np.float32]:
        with torch.inference_mode():
            actions: NDArray[np.float32] = self.net(*torch_inputs(self.net, observation)).float().cpu().numpy()
        return actions

    def reset(self, done: NDArray[np.bool_]) -> None:
        """The network is memoryless."""

    def save(self, path: Path) -> None:
        """Write architecture and weights to one file."""
        write_checkpoint(path, self.kind, {"config": asdict(self.net.config), "state_dict": self.net.state_dict()})

    @classmethod
    def load(cls, path: Path) -> BcPolicy:
        policy = load_policy(path)
        if not isinstance(policy, BcPolicy):
            raise ValueError(f"{path}: a {policy.kind} driver, not a bc one")
        return policy


def from_checkpoint(checkpoint: dict[str, Any]) -> BcPolicy:
    net = BcNet(BcNetConfig(**checkpoint["config"]))
    net.load_state_dict(checkpoint["state_dict"])
    return BcPolicy(net)
