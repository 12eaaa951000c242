"""Loading any learned driver from its file: each checkpoint names its ``kind``."""

from __future__ import annotations

from pathlib import Path

import torch

from policies.base import LearnedPolicy

#: Kinds of learned driver (``kind`` in a checkpoint) -> the module that loads them.
KINDS = {"bc": "policies.bc", "waypoints": "policies.waypoints", "ppo": "policies.sb3",
         "sac": "policies.sb3"}


def load_policy(path: Path) -> LearnedPolicy:
    """Load a driver written by a learned policy's ``save`` (on the CPU)."""
    from importlib import import_module

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    kind = checkpoint.get("kind", "bc") if isinstance(checkpoint, dict) else None
    if kind not in KINDS:
        raise ValueError(f"{path}: not a driver checkpoint (kind {kind!r}; known: {', '.join(KINDS)})")
    policy: LearnedPolicy = import_module(KINDS[kind]).from_checkpoint(checkpoint)
    return policy
