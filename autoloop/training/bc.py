"""Imitation learning: regress the expert's trajectory (and action) from observations.

``waypoints`` drivers learn the future waypoints (L1, metres), the target speed (L1, m/s) and, through the auxiliary
control head, the expert's action (L1); samples without a trajectory target (a log's last seconds) train the action
alone; samples without an expert action (fleet logs) train the trajectory alone. ``bc`` drivers learn the action
(mean squared error) of the samples that have one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from autoloop.config import TrainConfig
from autoloop.training.data import Batch
from autoloop.training.distributed import SINGLE_CPU, Topology
from autoloop.training.loop import EpochMetrics, fit
from autoloop.training.stream import SampleSource
from policies.base import LearnedPolicy
from policies.bc import BcNet, BcNetConfig, BcPolicy
from policies.waypoints import ControllerParams, WaypointNet, WaypointNetConfig, WaypointPolicy

#: Weight of the speed and the action losses against the waypoints'.
SPEED_WEIGHT = 1.0
ACTION_WEIGHT = 1.0


@dataclass(frozen=True)
class TrainResult:
    policy: LearnedPolicy
    history: tuple[EpochMetrics, ...]
    samples: int


def build_policy(config: TrainConfig, bev_shape: tuple[int, int, int], state_size: int) -> LearnedPolicy:
    """A fresh driver of the kind ``config.policy`` (weights drawn from ``config.seed``)."""
    torch.manual_seed(config.seed)
    channels, size, _ = bev_shape
    if config.policy == "bc":
        return BcPolicy(BcNet(BcNetConfig(channels, size, state_size, width=config.width, hidden=config.hidden)))
    net = WaypointNet(WaypointNetConfig(channels, size, state_size, width=config.width, hidden=config.hidden,
                                        waypoints=config.waypoints))
    return WaypointPolicy(net, ControllerParams(mode=config.control, steering=config.steering))


def network(policy: LearnedPolicy) -> nn.Module:
    """The torch network a learned driver acts with."""
    if not isinstance(policy, BcPolicy | WaypointPolicy):
        raise TypeError(f"imitation trains bc and waypoints drivers, not {policy.kind}")
    return policy.net


def train_bc(data: SampleSource, config: TrainConfig, *, policy: LearnedPolicy | None = None,
             epochs: int | None = None, topology: Topology = SINGLE_CPU,
             checkpoint_dir: Path | None = None, on_epoch: Callable[[EpochMetrics], None] | None = None,
             on_step: Callable[[int, dict[str, float]], None] | None = None) -> TrainResult:
    """Train a driver on ``data`` (samples in memory, :class:`~autoloop.training.data.TrajectoryArrays`, or
    streamed from the store, :class:`~autoloop.training.stream.StreamedSnapshot`) — a new one of ``config.policy``,
    or continue ``policy``'s weights — for ``epochs`` (default ``config.epochs``); see
    :func:`autoloop.training.loop.fit` for checkpoints and DDP."""
    if policy is None:
        policy = build_policy(config, data.bev_shape, data.state_size)
    net = network(policy)
    loss = waypoint_loss if isinstance(net, WaypointNet) else action_loss
    history = fit(net, data, loss, config=config, epochs=epochs or config.epochs, topology=topology,
                  checkpoint_dir=checkpoint_dir, on_epoch=on_epoch, on_step=on_step)
    net.cpu()
    return TrainResult(policy=policy, history=history, samples=len(data))


def action_loss(net: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
    mask = batch.has_action.float()
    squared = ((net(batch.bev, batch.state).float() - batch.action) ** 2).mean(dim=1)
    value = (squared * mask).sum() / mask.sum().clamp(min=1.0)
    return value, {"action": value.item()}


def waypoint_loss(net: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
    prediction = net(batch.bev, batch.state)
    mask = batch.has_trajectory.float()
    count = mask.sum().clamp(min=1.0)
    waypoints = ((prediction.waypoints.float() - batch.waypoints).abs().mean(dim=(1, 2)) * mask).sum() / count
    speed = ((prediction.speed.float() - batch.speed).abs() * mask).sum() / count
    has_action = batch.has_action.float()
    action = ((prediction.control.float() - batch.action).abs().mean(dim=1) * has_action).sum() / (
        has_action.sum().clamp(min=1.0))
    value = waypoints + SPEED_WEIGHT * speed + ACTION_WEIGHT * action
    return value, {"waypoints": waypoints.item(), "speed": speed.item(), "action": action.item()}
