"""A learned driver's file: each checkpoint names its ``kind`` and the observation format it reads
(:data:`~sim.scene.observation.OBSERVATION_FORMAT`); one of another format is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from policies.base import LearnedPolicy
from sim.scene.observation import OBSERVATION_FORMAT, check_observation_format

#: Kinds of learned driver (``kind`` in a checkpoint) -> the module that loads them.
KINDS = {"bc": "policies.bc", "waypoints": "policies.waypoints", "ppo": "policies.sb3",
         "sac": "policies.sb3"}


def write_checkpoint(path: Path, kind: str, content: dict[str, Any]) -> None:
    """Write a driver's checkpoint: its ``kind``, the observation format, and ``content`` (architecture, weights,
    controller settings)."""
    torch.save({"kind": kind, "observation_format": OBSERVATION_FORMAT, **content}, path)


def load_policy(path: Path) -> LearnedPolicy:
    """Load a driver written by a learned policy's ``save`` (on the CPU).

    :raises ValueError: when the file is not a driver checkpoint.
    :raises ~sim.scene.observation.ObservationFormatError: when it was trained on another observation format.
    """
    from importlib import import_module

    loaded = torch.load(path, map_location="cpu", weights_only=True)
    checkpoint: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
    kind = checkpoint.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{path}: not a driver checkpoint (kind {kind!r}; known: {', '.join(KINDS)})")
    check_observation_format(checkpoint.get("observation_format"), what=f"driver checkpoint {path}",
                             remedy="retrain it (`autoloop train`)")
    policy: LearnedPolicy = import_module(KINDS[kind]).from_checkpoint(checkpoint)
    return policy
