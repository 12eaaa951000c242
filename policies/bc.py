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

from policies.encoder import EncoderConfig, ObservationEncoder
from sim.embedded.observation import Observation, state_prefix


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
    """A batch of observations as ``(bev, state)`` tensors on the net's device (the state cut to the features the
    net was trained on: :func:`~sim.embedded.observation.state_prefix`)."""
    device = next(net.parameters()).device
    bev = torch.from_numpy(np.ascontiguousarray(observation["bev"])).to(device)
    size = getattr(getattr(net, "config", None), "state_size", None)
    features = np.asarray(observation["state"], dtype=np.float32)
    features = state_prefix(features, size) if size is not None else features
    state = torch.from_numpy(np.ascontiguousarray(features)).to(device)
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
        torch.save({"kind": self.kind, "config": asdict(self.net.config), "state_dict": self.net.state_dict()}, path)

    @classmethod
    def load(cls, path: Path) -> BcPolicy:
        return from_checkpoint(torch.load(path, map_location="cpu", weights_only=True))


def from_checkpoint(checkpoint: dict[str, Any]) -> BcPolicy:
    net = BcNet(BcNetConfig(**checkpoint["config"]))
    net.load_state_dict(checkpoint["state_dict"])
    return BcPolicy(net)
