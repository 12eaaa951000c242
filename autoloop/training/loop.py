"""The training loop every imitation learner shares: data-parallel (DDP) when the process group has several
processes, mixed precision and ``torch.compile`` on GPUs, a checkpoint after every epoch and exact resume.

Reproducibility: the network's initial weights come from ``seed`` (every rank builds the same, and DDP broadcasts
rank 0's anyway); each epoch's order is drawn from ``(seed, epoch)`` and split into one equal share per rank (the
training rows repeated by their repeat factors and their snapshot parts' weights first:
:mod:`autoloop.training.balance`; the order: :mod:`autoloop.training.stream`, which reads the samples, from memory
or streamed from the store, with ``loader_workers`` processes); so a run resumed from the checkpoint of epoch ``e``
repeats epochs ``e + 1 ...`` exactly as an uninterrupted run does, and its final weights are equal
(``torch.equal``) on the same hardware, thread count and ``loader_workers``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from autoloop.config import TrainConfig
from autoloop.progress import Progress
from autoloop.training.balance import epoch_rows
from autoloop.training.data import Batch
from autoloop.training.distributed import SINGLE_CPU, Topology
from autoloop.training.stream import EpochPlan, SampleSource, epoch_windows, loader, to_batch
from sim.scene.observation import OBSERVATION_FORMAT, check_observation_format

log = logging.getLogger(__name__)

VALIDATION_SHARE = 0.1
CHECKPOINT = "last.pt"

#: ``loss(net, batch) -> (loss to minimise, its parts as floats)``.
LossFn = Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class EpochMetrics:
    """Mean losses of one epoch over the training and the validation samples, and their parts."""

    epoch: int
    train_loss: float
    val_loss: float
    parts: dict[str, float]


def fit(net: nn.Module, data: SampleSource, loss: LossFn, *, config: TrainConfig, epochs: int,
        topology: Topology = SINGLE_CPU, checkpoint_dir: Path | None = None,
        on_epoch: Callable[[EpochMetrics], None] | None = None,
        on_step: Callable[[int, dict[str, float]], None] | None = None) -> tuple[EpochMetrics, ...]:
    """Train ``net`` in place for ``epochs`` epochs; returns every epoch's metrics (those before a resume too).

    :param checkpoint_dir: where ``last.pt`` (weights, optimizer, history, RNG, observation format) is written after
        every epoch (by rank 0, atomically); training resumes from it when it is there.
    :raises ~sim.scene.observation.ObservationFormatError: when ``last.pt`` is of another observation format.
    :param on_epoch: sees each epoch's metrics (on rank 0).
    :param on_step: sees the global step and the batch's losses after each optimizer step (on rank 0).
    """
    index = data.index()
    if len(index) < 2:
        raise ValueError(f"training needs at least 2 samples, got {len(index)}")
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    cuda = topology.device.type == "cuda"
    net.to(topology.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    history: list[EpochMetrics] = []
    path = checkpoint_dir / CHECKPOINT if checkpoint_dir is not None else None
    if path is not None and path.exists():
        history = _restore(path, net, optimizer)
        log.info("resuming from %s after epoch %d", path, len(history))
    model: nn.Module = net
    if cuda and config.compile:
        model = torch.compile(model)  # type: ignore[assignment]
    if topology.distributed:
        model = DistributedDataParallel(model, device_ids=[topology.device.index] if cuda else None)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda and config.amp else nullcontext
    val_rows, train_rows = _split(len(index), config.seed)
    train_rows = epoch_rows(index, train_rows, threshold=config.repeat_threshold, seed=config.seed)
    per_epoch = min(len(train_rows), config.rows_per_epoch or len(train_rows))
    if per_epoch < len(train_rows):
        log.info("each epoch trains on %d of the %d rows, drawn anew per epoch", per_epoch, len(train_rows))
    share = per_epoch // topology.world_size
    if share < 1:
        raise ValueError(f"{len(train_rows)} training samples cannot be shared by {topology.world_size} processes")

    def plan(epoch: int) -> EpochPlan:
        return epoch_windows(index, train_rows, seed=config.seed, epoch=epoch, per_epoch=per_epoch,
                             rank=topology.rank, world_size=topology.world_size, window=config.shuffle_buffer,
                             batch_size=config.batch_size)

    batches_per_epoch = plan(1).batches(config.loader_workers)
    val_plan = epoch_windows(index, val_rows, seed=config.seed, epoch=0, per_epoch=len(val_rows), rank=0,
                             world_size=1, window=1024, batch_size=1024, shuffle=False)
    progress = Progress("train", epochs * batches_per_epoch, "steps", done=len(history) * batches_per_epoch,
                        bar=None if topology.is_main else False)
    with progress:
        for epoch in range(len(history) + 1, epochs + 1):
            model.train()
            total, parts_total = 0.0, dict[str, float]()
            stream = loader(data, plan(epoch), workers=config.loader_workers, pin_memory=cuda)
            for step, tensors in enumerate(stream):
                batch = to_batch(tensors, data.bev_shape, topology.device)
                with autocast():
                    value, parts = loss(model, batch)
                optimizer.zero_grad(set_to_none=True)
                value.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                total += value.item() * len(batch)
                for key, part in parts.items():
                    parts_total[key] = parts_total.get(key, 0.0) + part * len(batch)
                if on_step is not None and topology.is_main:
                    on_step((epoch - 1) * batches_per_epoch + step + 1, {"loss": value.item(), **parts})
                if topology.is_main:
                    progress.advance()
            val = _validate(net, data, val_plan, loss, topology.device, autocast, config.loader_workers)
            metrics = EpochMetrics(epoch=epoch, train_loss=_mean_over_ranks(total, share, topology), val_loss=val,
                                   parts={key: _mean_over_ranks(part, share, topology)
                                          for key, part in sorted(parts_total.items())})
            history.append(metrics)
            if path is not None:
                if topology.is_main:
                    _save(path, net, optimizer, history)
                if topology.distributed:
                    dist.barrier()
            if on_epoch is not None and topology.is_main:
                on_epoch(metrics)
    net.eval()
    return tuple(history)


def _split(samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Validation and training rows: a fixed ``VALIDATION_SHARE`` drawn by ``seed``."""
    order = np.random.default_rng(seed).permutation(samples)
    n_val = max(1, int(VALIDATION_SHARE * samples))
    return np.sort(order[:n_val]), np.sort(order[n_val:])


def _validate(net: nn.Module, data: SampleSource, plan: EpochPlan, loss: LossFn, device: torch.device,
              autocast: Callable[[], Any], workers: int) -> float:
    net.eval()
    total, count = 0.0, 0
    with torch.no_grad(), autocast():
        for tensors in loader(data, plan, workers=workers, pin_memory=device.type == "cuda"):
            batch = to_batch(tensors, data.bev_shape, device)
            total += loss(net, batch)[0].item() * len(batch)
            count += len(batch)
    return total / count


def _mean_over_ranks(total: float, count: int, topology: Topology) -> float:
    if not topology.distributed:
        return total / count
    tensor = torch.tensor([total, float(count)], dtype=torch.float64, device=topology.device)
    dist.all_reduce(tensor)
    return float(tensor[0] / tensor[1])


def _save(path: Path, net: nn.Module, optimizer: torch.optim.Optimizer, history: list[EpochMetrics]) -> None:
    """Write the checkpoint next to the old one, then rename it over (a kill never leaves half a checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"observation_format": OBSERVATION_FORMAT, "model": net.state_dict(),
                "optimizer": optimizer.state_dict(), "history": [asdict(m) for m in history],
                "torch_rng": torch.get_rng_state()}, temporary)
    os.replace(temporary, path)


def _restore(path: Path, net: nn.Module, optimizer: torch.optim.Optimizer) -> list[EpochMetrics]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    check_observation_format(checkpoint.get("observation_format"), what=f"training checkpoint {path}",
                             remedy=f"delete it to train from the start (`rm {path}`)")
    net.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    torch.set_rng_state(checkpoint["torch_rng"])
    return [EpochMetrics(**m) for m in checkpoint["history"]]
