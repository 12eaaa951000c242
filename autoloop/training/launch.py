"""Imitation training on every accelerator of the machine (and across machines): the train stage launches the
data-parallel trainer (:mod:`autoloop.training.ddp`) under ``torchrun`` and reads back what it trained.

One node unless the job's environment says otherwise: ``torchrun`` reads its rendezvous from ``PET_NNODES``,
``PET_NODE_RANK``, ``PET_RDZV_ENDPOINT`` and ``PET_RDZV_BACKEND`` (a multi-node job sets them on every node); with none
of them set it runs ``--standalone`` on a free local port.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from autoloop.config import AutoloopConfig, dump_config
from autoloop.episodes import DatasetSnapshot
from autoloop.paths import Paths
from autoloop.training.loop import EpochMetrics
from policies.base import LearnedPolicy
from policies.checkpoint import load_policy

log = logging.getLogger(__name__)

#: torchrun's variables that say the job spans several nodes.
MULTI_NODE_ENV = ("PET_NNODES", "PET_RDZV_ENDPOINT")


def train_processes(config: AutoloopConfig) -> int:
    """How many processes imitation trains on: ``compute.train_processes``, else one per GPU when the machine has
    two or more, else 1 (this process)."""
    if config.compute.train_processes is not None:
        return config.compute.train_processes
    gpus = torch.cuda.device_count()
    return gpus if gpus >= 2 else 1


def gpu_slots(config: AutoloopConfig) -> int:
    """GPUs a training of ``config`` occupies: one per process on a machine with GPUs; one on a machine without
    (so that training runs on a pool still queue behind each other)."""
    return train_processes(config) if torch.cuda.is_available() else 1


@dataclass(frozen=True)
class Launched:
    """What the data-parallel run trained (rank 0's driver) and its per-epoch losses."""

    policy: LearnedPolicy
    history: tuple[EpochMetrics, ...]
    samples: int


def torchrun(config: AutoloopConfig, *, paths: Paths, snapshot: DatasetSnapshot, checkpoints: Path,
             processes: int) -> Launched:
    """Train ``config.train`` on ``snapshot`` with ``processes`` processes per node under ``torchrun``; resumes
    after the last finished epoch in ``checkpoints`` like any run of :mod:`autoloop.training.ddp`.

    :raises RuntimeError: when the trainer fails (its output's last lines in the message).
    """
    checkpoints.mkdir(parents=True, exist_ok=True)
    config_file, output, history = (checkpoints / name for name in ("config.yaml", "driver.pt", "history.json"))
    config_file.write_text(dump_config(config))
    rendezvous = [] if any(name in os.environ for name in MULTI_NODE_ENV) else ["--standalone"]
    command = [sys.executable, "-m", "torch.distributed.run", *rendezvous, "--nproc-per-node", str(processes),
               "-m", "autoloop.training.ddp", "--home", str(paths.home), "--dataset", str(snapshot.path),
               "--checkpoints", str(checkpoints), "--output", str(output), "--config", str(config_file),
               "--history", str(history)]
    log.info("training on %d processes per node: %s", processes, " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise RuntimeError(f"data-parallel training ({processes} processes) exited with {done.returncode}:\n{tail}")
    record = json.loads(history.read_text())
    return Launched(policy=load_policy(output), samples=int(record["samples"]),
                    history=tuple(EpochMetrics(**epoch) for epoch in record["epochs"]))
