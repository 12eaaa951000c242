"""Repeat-factor sampling: samples of rare driving situations appear several times per epoch.

Imitation data is dominated by open road and by waiting at red lights; the decisions that cost a driving score —
braking for a curbside stop of the mission, pulling over for a siren, slowing behind a slower car — are a fraction
of a percent of the samples, and a network trained on the plain mix regresses towards cruising there. As LVIS's
repeat factor sampling does for rare categories (Gupta et al., 2019), each sample is sorted into categories, a
category of frequency ``f`` (its share of the training rows) gets the repeat factor ``max(1, sqrt(t / f))`` for a
threshold ``t``, and a sample is repeated by the largest factor of its categories.

A category is a situation the state vector shows (:mod:`sim.scene.observation`) crossed with the expert's
longitudinal decision (its target speed against the current speed). A sample is in every situation it shows (a
leader and a stop line, say), and in ``open road`` when it shows none.

A sample's repeat factor is then multiplied by its weight (its dataset snapshot part's,
:class:`~autoloop.episodes.SnapshotPart`): the rows of a part of weight 3 appear three times as often.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from sim.scene.observation import SPEED_SCALE_MPS, STATE_SIZE, Feature

if TYPE_CHECKING:
    from autoloop.training.data import TrajectoryArrays

log = logging.getLogger(__name__)

SITUATIONS = ("curbside stop", "siren", "stop line or give way", "leader", "path offset", "pull-in wait", "open road")
DECISIONS = ("brake", "accelerate", "stand", "keep")

#: A decision is to brake (accelerate) when the target speed is this much below (above) the current speed.
DECISION_MPS = 1.0
#: Standing: current and target speed both below this.
STANDING_MPS = 0.5


def categories(state: NDArray[np.float32], target_speed_mps: NDArray[np.float32],
               has_target: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Each sample's categories ``(N, len(SITUATIONS), len(DECISIONS))`` from its state ``(N, STATE_SIZE)``
    and its target speed ``(N,)`` (a sample without a target keeps its speed)."""
    if state.shape[1] != STATE_SIZE:
        raise ValueError(f"states of {state.shape[1]} features; situations read the {STATE_SIZE}-feature vector")
    f = Feature
    shown = np.stack([
        (state[:, f.CURB_STOP_AHEAD] < 0.3) & (state[:, f.CURB_DWELL] > 0.0),  # a curbside stop within 15 m, to stand
        state[:, f.SIREN] > 0.5,                                               # a siren heard
        ((state[:, f.MUST_STOP] > 0.5) & (state[:, f.STOP_LINE_AHEAD] < 0.6))  # a stop line within 30 m to stop at,
        | (state[:, f.GIVE_WAY] > 0.5),                                        # or giving way at a junction
        state[:, f.LEADER_GAP] < 0.4,                                          # an actor in the path within 20 m
        (np.abs(state[:, f.PATH_OFFSET]) > 0.05) | (np.abs(state[:, f.PATH_TARGET]) > 0.05),  # path off the route
        state[:, f.PULL_IN_WAIT] > 0.5,                                        # at the curb, waiting to pull in
    ], axis=1)
    situations = np.concatenate([shown, ~shown.any(axis=1, keepdims=True)], axis=1)
    speed = state[:, f.SPEED].astype(np.float64) * SPEED_SCALE_MPS
    target = np.where(has_target, target_speed_mps, speed)
    stand = (speed < STANDING_MPS) & (target < STANDING_MPS)
    brake = ~stand & (target < speed - DECISION_MPS)
    accelerate = ~stand & (target > speed + DECISION_MPS)
    decisions = np.stack([brake, accelerate, stand, ~(stand | brake | accelerate)], axis=1)
    result: NDArray[np.bool_] = situations[:, :, None] & decisions[:, None, :]
    return result


#: Number of categories (situations x decisions); a sample's categories are the bits of one ``uint32``.
CATEGORIES = len(SITUATIONS) * len(DECISIONS)


@dataclass(frozen=True)
class SampleIndex:
    """What sampling needs of each sample of a dataset, a few bytes per sample: the samples are grouped in units
    (episodes, in order), each has its categories as bits (``None``: states that are not autoloop's vector) and
    its weight (``None``: every sample weighs 1)."""

    unit_sizes: NDArray[np.intp]
    categories: NDArray[np.uint32] | None
    weight: NDArray[np.float32] | None

    def __len__(self) -> int:
        return int(self.unit_sizes.sum())


def sample_index(state: NDArray[np.float32], speed: NDArray[np.float32], has_trajectory: NDArray[np.bool_],
                 weight: NDArray[np.float32] | None, unit_sizes: NDArray[np.intp]) -> SampleIndex:
    """The :class:`SampleIndex` of samples with these states ``(N, S)``, target speeds and targets."""
    bits = None
    if state.shape[1] == STATE_SIZE:
        member = categories(state, speed, has_trajectory).reshape(len(state), CATEGORIES)
        bits = (member.astype(np.uint32) << np.arange(CATEGORIES, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)
    return SampleIndex(unit_sizes=np.asarray(unit_sizes, dtype=np.intp), categories=bits, weight=weight)


def repeat_factors(data: TrajectoryArrays | SampleIndex, rows: NDArray[np.intp], threshold: float,
                   ) -> NDArray[np.float64]:
    """Repeat factors ``(len(rows),)`` of ``rows`` of ``data``, the frequencies counted over ``rows``; all 1 for
    states that are not autoloop's vector (situations cannot be read off them)."""
    if threshold <= 0.0:
        return np.ones(len(rows))
    index = data if isinstance(data, SampleIndex) else data.index()
    if index.categories is None:
        log.warning("no repeat-factor sampling: states are not autoloop's %d features", STATE_SIZE)
        return np.ones(len(rows))
    bits = index.categories[rows]
    shifts = np.arange(CATEGORIES, dtype=np.uint32)
    counts = np.zeros(CATEGORIES)
    for start in range(0, len(bits), 1 << 20):  # (in chunks: an index may hold millions of samples)
        counts += ((bits[start:start + (1 << 20), None] >> shifts) & 1).sum(axis=0)
    factor = np.maximum(1.0, np.sqrt(threshold / np.maximum(counts / max(len(rows), 1), 1e-12)))
    result = np.ones(len(rows))
    for category in np.flatnonzero(factor > 1.0):
        member = ((bits >> np.uint32(category)) & 1).astype(bool)
        result[member] = np.maximum(result[member], factor[category])
    return result


def epoch_rows(data: TrajectoryArrays | SampleIndex, rows: NDArray[np.intp], *, threshold: float, seed: int,
               ) -> NDArray[np.intp]:
    """The rows an epoch trains on: ``rows`` repeated by their repeat factors (``threshold``: see
    :func:`repeat_factors`) times their weights (:attr:`SampleIndex.weight`), drawn by :func:`repeated_rows`
    from ``seed``; ``rows`` as they are when every factor and weight is 1."""
    index = data if isinstance(data, SampleIndex) else data.index()
    factors = repeat_factors(index, rows, threshold)
    if index.weight is not None:
        factors = factors * index.weight[rows]
    repeated = repeated_rows(rows, factors, seed)
    if np.any(factors != 1.0):
        log.info("repeat-factor sampling: %d training rows per epoch from %d samples (factors %.2f to %.1f)",
                 len(repeated), len(rows), factors.min(), factors.max())
    return repeated


def repeated_rows(rows: NDArray[np.intp], factors: NDArray[np.float64], seed: int) -> NDArray[np.intp]:
    """``rows``, each ``floor(factor)`` times and once more with probability ``factor``'s fraction (drawn once
    from ``seed``, so every epoch, rank and resumed run sees the same rows)."""
    extra = np.random.default_rng([seed, 0x5EED]).random(len(rows)) < factors - np.floor(factors)
    counts = np.floor(factors).astype(np.intp) + extra
    result: NDArray[np.intp] = np.repeat(rows, counts)
    return result
