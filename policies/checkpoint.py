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

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises what its unpickler meets: UnpicklingError, EOFError, RuntimeError...
        raise ValueError(f"{path}: not a driver checkpoint (torch cannot load it: {_first_line(error)})") from None
    checkpoint: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
    kind = checkpoint.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{path}: not a driver checkpoint (kind {kind!r}; known: {', '.join(KINDS)})")
    check_observation_format(checkpoint.get("observation_format"), what=f"driver checkpoint {path}",
                             remedy="retrain it (`autoloop train`)")
    try:
        policy: LearnedPolicy = import_module(KINDS[kind]).from_checkpoint(checkpoint)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
        raise ValueError(f"{path}: a {kind} checkpoint that does not load ({type(error).__name__}: "
                         f"{_first_line(error)})") from None
    return policy


def _first_line(error: BaseException, limit: int = 200) -> str:
    """An exception's message: its first line, cut short (torch's run to paragraphs)."""
    lines = str(error).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= limit else line[:limit] + "…"
