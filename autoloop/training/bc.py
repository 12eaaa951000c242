"""Behaviour cloning: regress the expert's actions from observations.

The loop reads top to bottom: split episodes' samples into train/validation (10 %), then for each epoch shuffle,
unpack BEV batches, take Adam steps on the mean squared error, and measure the validation loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from autoloop.config import TrainConfig
from autoloop.episodes import TrainingArrays
from policies.bc import BcNet, BcNetConfig, BcPolicy

VALIDATION_SHARE = 0.1


@dataclass(frozen=True)
class EpochMetrics:
    """Mean losses of one epoch (mean squared error over both actions)."""

    epoch: int
    train_loss: float
    val_loss: float


@dataclass(frozen=True)
class TrainResult:
    policy: BcPolicy
    history: tuple[EpochMetrics, ...]
    samples: int


def train_bc(data: TrainingArrays, config: TrainConfig, *,
             on_epoch: Callable[[EpochMetrics], None] | None = None) -> TrainResult:
    """Train a :class:`~policies.bc.BcNet` on ``data``; ``on_epoch`` sees each epoch's metrics."""
    if len(data) < 2:
        raise ValueError(f"behaviour cloning needs at least 2 samples, got {len(data)}")
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(data))
    n_val = max(1, int(VALIDATION_SHARE * len(data)))
    val_rows, train_rows = order[:n_val], order[n_val:]
    channels, size, _ = data.bev_shape
    net = BcNet(BcNetConfig(bev_channels=channels, bev_size_px=size, state_size=data.state.shape[1]))
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    state = torch.from_numpy(data.state)
    label = torch.from_numpy(data.label)
    history = []
    batches_per_epoch = -(-len(train_rows) // config.batch_size)
    columns = (TextColumn("[bold]train[/] epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.4f}"), TimeRemainingColumn())
    with Progress(*columns) as progress:
        task = progress.add_task("train", total=config.epochs * batches_per_epoch, epoch=0, loss=float("nan"))
        for epoch in range(1, config.epochs + 1):
            net.train()
            shuffled = rng.permutation(train_rows)
            total = 0.0
            for first in range(0, len(shuffled), config.batch_size):
                rows = np.sort(shuffled[first:first + config.batch_size])
                loss = _loss(net, data, rows, state, label)
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                total += loss.item() * len(rows)
                progress.update(task, advance=1, epoch=epoch, loss=loss.item())
            net.eval()
            with torch.no_grad():
                val = sum(_loss(net, data, val_rows[i:i + 1024], state, label).item() * len(val_rows[i:i + 1024])
                          for i in range(0, len(val_rows), 1024)) / len(val_rows)
            metrics = EpochMetrics(epoch=epoch, train_loss=total / len(train_rows), val_loss=val)
            history.append(metrics)
            if on_epoch is not None:
                on_epoch(metrics)
    return TrainResult(policy=BcPolicy(net), history=tuple(history), samples=len(data))


def _loss(net: BcNet, data: TrainingArrays, rows: np.ndarray, state: torch.Tensor,
          label: torch.Tensor) -> torch.Tensor:
    index = torch.from_numpy(rows)
    prediction = net(torch.from_numpy(data.bev(rows)), state[index])
    return torch.nn.functional.mse_loss(prediction, label[index])
