"""The observation encoder every learned driver shares: a convolutional encoder of the BEV raster fused with the
state vector (behaviour cloning, trajectory imitation, and the SB3 agents' features extractor).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture of :class:`ObservationEncoder`.

    :param bev_channels: BEV channels ``C``.
    :param bev_size_px: BEV height and width (a multiple of 16).
    :param state_size: length of the state vector.
    :param width: channels of the first convolution (later ones double up to ``4 * width``).
    :param hidden: width of the BEV projection (the state's is half of it).
    """

    bev_channels: int
    bev_size_px: int
    state_size: int
    width: int = 16
    hidden: int = 128

    @property
    def features(self) -> int:
        """Length of the fused feature vector."""
        return self.hidden + self.hidden // 2


class ObservationEncoder(nn.Module):
    """``(bev uint8 (B, C, H, W), state float (B, S)) -> features (B, config.features)``.

    Four strided convolutions (stride 16 in all) and a linear projection of the BEV, one linear layer of the state,
    concatenated.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.conv = nn.Sequential(
            nn.Conv2d(config.bev_channels, w, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(4 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(),
        )
        flat = 4 * w * (config.bev_size_px // 16) ** 2
        self.bev_proj = nn.Sequential(nn.Linear(flat, config.hidden), nn.ReLU())
        self.state_proj = nn.Sequential(nn.Linear(config.state_size, config.hidden // 2), nn.ReLU())

    def forward(self, bev: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.bev_proj(self.conv(bev.float())), self.state_proj(state.float())], dim=-1)
