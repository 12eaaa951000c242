"""Warm start: training starts from the champion's weights (``train.init: champion``) or from scratch.

A warm start fine-tunes a copy of the champion (its network's weights loaded into a fresh driver of this config,
whose controller settings it keeps) on the cycle's dataset by the fine-tune schedule (:func:`schedule`). It needs
the champion's network to be the one this config builds (same kind, BEV shape, state size, width, hidden,
waypoints); without a champion, or with another network, training starts from scratch and says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import fields
from typing import NamedTuple

from autoloop.config import TrainConfig
from autoloop.training.bc import build_policy, network
from policies.base import LearnedPolicy
from policies.bc import BcNetConfig, BcPolicy
from policies.waypoints import WaypointNetConfig, WaypointPolicy

log = logging.getLogger(__name__)


class InitialPolicy(NamedTuple):
    """The driver training starts from (its own: training it never changes the champion's weights), the line
    saying which (logged too), and whether it holds the champion's weights (train it by :func:`schedule`)."""

    policy: LearnedPolicy
    message: str
    warm: bool


def initial_policy(config: TrainConfig, *, bev_shape: tuple[int, int, int], state_size: int,
                   load_champion: Callable[[], LearnedPolicy | None],
                   champion_name: str = "champion") -> InitialPolicy:
    """The driver training starts from, the line saying which, and whether it is the champion's.

    :param config: ``config.init`` chooses: ``champion`` warm-starts from ``load_champion()`` where it can,
        ``scratch`` draws fresh weights from ``config.seed`` (:func:`~autoloop.training.bc.build_policy`).
    :param bev_shape: ``(C, H, W)`` of the training observations.
    :param state_size: length of their state vector.
    :param load_champion: the champion driver, or ``None`` when there is none yet (called only for ``champion``).
    :param champion_name: how the lines name the champion (its model URI, say).
    """
    fresh = build_policy(config, bev_shape, state_size)
    if config.init == "scratch":
        return _said(fresh, "train.init is scratch: training from scratch")
    champion = load_champion()
    if champion is None:
        return _said(fresh, "no champion yet: training from scratch")
    if champion.kind != config.policy:
        return _said(fresh, f"{champion_name} is a {champion.kind} driver, this config trains {config.policy}: "
                            "training from scratch", level=logging.WARNING)
    theirs, ours = _architecture(champion), _architecture(fresh)
    differences = [f"{field.name} {getattr(theirs, field.name)} (config: {getattr(ours, field.name)})"
                   for field in fields(ours) if getattr(theirs, field.name) != getattr(ours, field.name)]
    if differences:
        return _said(fresh, f"{champion_name}'s network differs from this config's in {', '.join(differences)}: "
                            "training from scratch", level=logging.WARNING)
    network(fresh).load_state_dict(network(champion).state_dict())  # (copies: the champion's tensors stay its own)
    return _said(fresh, f"warm start from {champion_name}: fine-tuning {config.finetune_epochs} epochs at learning "
                        f"rate {config.finetune_learning_rate:g}", warm=True)


def schedule(config: TrainConfig, warm: bool) -> TrainConfig:
    """``config`` with the fine-tune schedule (``finetune_epochs``, ``finetune_learning_rate``) when ``warm``."""
    if not warm:
        return config
    return config.model_copy(update={"epochs": config.finetune_epochs,
                                     "learning_rate": config.finetune_learning_rate})


def _architecture(policy: LearnedPolicy) -> BcNetConfig | WaypointNetConfig:
    """The network configuration of a ``bc`` or ``waypoints`` driver."""
    if not isinstance(policy, BcPolicy | WaypointPolicy):
        raise TypeError(f"warm starts continue bc and waypoints drivers, not {policy.kind}")
    return policy.net.config


def _said(policy: LearnedPolicy, line: str, *, level: int = logging.INFO, warm: bool = False) -> InitialPolicy:
    log.log(level, "%s", line)
    return InitialPolicy(policy, line, warm)
