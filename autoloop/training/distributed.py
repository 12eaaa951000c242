"""Process groups for data-parallel training, started by ``torchrun`` or by hand.

``torchrun --nproc_per_node N -m autoloop.training.ddp ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; without them training runs as one process. NCCL on GPUs (one per local rank),
gloo on CPUs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Topology:
    """Where this process trains: its rank among ``world_size`` and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


#: One process on the CPU.
SINGLE_CPU = Topology(rank=0, world_size=1, device=torch.device("cpu"))


@contextmanager
def process_group(*, cuda: bool | None = None) -> Iterator[Topology]:
    """Join the process group the environment describes (``torchrun``'s variables), or run alone; the group is
    destroyed on exit if this call created it.

    :param cuda: train on the GPU (default: when one is available).
    """
    use_cuda = torch.cuda.is_available() if cuda is None else cuda
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    created = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world_size)
        created = True
    try:
        yield Topology(rank=rank, world_size=world_size, device=device)
    finally:
        if created:
            dist.barrier()  # (gloo aborts a process whose peer tears the group down under it)
            dist.destroy_process_group()
