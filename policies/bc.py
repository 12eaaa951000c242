"""A behaviour-cloning driver: a small convolutional network from BEV + state to ``[steer, accel]``.

The BEV encoder is four strided convolutions; the state vector goes through one linear layer; a two-layer head
maps both to actions squashed into [-1, 1] by ``tanh``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from sim.embedded.observation import Observation


@dataclass(frozen=True)
class BcNetConfig:
    """Architecture of :class:`BcNet`.

    :param bev_channels: BEV channels ``C``.
    :param bev_size_px: BEV height and width.
    :param state_size: length of the state vector.
    :param width: channels of the first convolution (later ones double up to ``4 * width``).
    :param hidden: width of the fused head.
    """

    bev_channels: int
    bev_size_px: int
    state_size: int
    width: int = 16
    hidden: int = 128


class BcNet(nn.Module):
    """``(bev uint8 (B, C, H, W), state float (B, S)) -> actions (B, 2)`` in [-1, 1]."""

    def __init__(self, config: BcNetConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.encoder = nn.Sequential(
            nn.Conv2d(config.bev_channels, w, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(4 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(),
        )
        flat = 4 * w * (config.bev_size_px // 16) ** 2
        self.bev_proj = nn.Sequential(nn.Linear(flat, config.hidden), nn.ReLU())
        self.state_proj = nn.Sequential(nn.Linear(config.state_size, config.hidden // 2), nn.ReLU())
        self.head = nn.Sequential(
            nn.Linear(config.hidden + config.hidden // 2, config.hidden), nn.ReLU(),
            nn.Linear(config.hidden, 2), nn.Tanh(),
        )

    def forward(self, bev: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        features = torch.cat([self.bev_proj(self.encoder(bev.float())), self.state_proj(state)], dim=-1)
        out: torch.Tensor = self.head(features)
        return out


class BcPolicy:
    """A :class:`~policies.base.Policy` around a trained :class:`BcNet` (runs on the CPU)."""

    def __init__(self, net: BcNet) -> None:
        self.net = net.eval()

    def act(self, observation: Observation) -> NDArray[np.float32]:
        with torch.inference_mode():
            bev = torch.from_numpy(np.ascontiguousarray(observation["bev"]))
            state = torch.from_numpy(np.ascontiguousarray(observation["state"], dtype=np.float32))
            actions: NDArray[np.float32] = self.net(bev, state).numpy()
        return actions

    def reset(self, done: NDArray[np.bool_]) -> None:
        """The network is memoryless."""

    def save(self, path: Path) -> None:
        """Write architecture and weights to one file."""
        torch.save({"config": asdict(self.net.config), "state_dict": self.net.state_dict()}, path)

    @classmethod
    def load(cls, path: Path) -> BcPolicy:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        net = BcNet(BcNetConfig(**checkpoint["config"]))
        net.load_state_dict(checkpoint["state_dict"])
        return cls(net)
