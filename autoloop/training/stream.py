"""Training samples streamed from the episode store: a ``torch.utils.data.IterableDataset`` over a snapshot.

Why PyArrow and torch's ``DataLoader`` workers rather than Ray Data: the samples are a function of one episode (the
trajectory targets look ahead along the episode's own poses; a fleet log's observations are rendered per episode
and cached), an epoch's order must be an exact function of ``(seed, epoch)`` so that resumed and data-parallel runs
stay equal to uninterrupted ones, and each DDP rank must read its own part. torch workers reading Parquet with
PyArrow give all three with the process group training already has; Ray Data's streaming executor orders blocks as
they finish (its ``preserve_order`` serialises them) and would bring a Ray runtime to every training process.

How an epoch is read (:func:`epoch_windows`, the one definition of an epoch's order, for every source):

- the training rows (the validation share held out, repeated by their repeat factors times their snapshot
  part's weight: :mod:`autoloop.training.balance`) are laid out episode after episode, the episodes in an order
  drawn from ``(seed, epoch)``; the first ``rows_per_epoch`` are the epoch's;
- rank ``r`` of ``W`` takes the ``r``-th of ``W`` equal contiguous shares, so it reads its own episodes (two ranks
  share at most the episode at their boundary);
- a rank's share is cut into windows of ``shuffle_buffer`` rows (rounded up to whole batches); each window is
  shuffled by ``(seed, epoch, rank, window)``: a bounded shuffle buffer whose order does not depend on timing;
- loader process ``k`` of ``K`` reads windows ``k, k + K, ...``, one episode at a time (its ego Parquet file, hash
  checked, decoded column by column: one row group per episode as the store writes them), and yields collated
  batches in which the BEVs stay bit-packed; the ``DataLoader`` takes one batch from each worker in turn;
- the training process unpacks the BEV bits on the training device (:func:`unpack_bits`).

The source of samples is the store (:class:`StreamedSnapshot`, which keeps only a :class:`SampleIndex` of a few
bytes per sample in memory: category bits and weight) or arrays in memory (:class:`TrajectoryArrays`): both go
through this one stream, so training on either yields the same batches, hence the same weights.

Memory: per loader process, one window of samples (``shuffle_buffer`` x ~4.8 kB at 9 x 64 x 64: ~80 MB) and the
episodes it reads; in the training process, the index (8 bytes per sample) and, while an epoch is planned, ~50 bytes
per sample (the validation split, the repeated rows and their order): a snapshot of 10 M steps (46 GB of packed BEVs)
plans in ~0.5 GB over the process's own ~0.3 GB (measured).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from autoloop.episodes import DatasetSnapshot, EpisodeStore
from autoloop.episodes.dataset import unpack_bev
from autoloop.training.balance import SampleIndex, sample_index
from autoloop.training.data import Batch, Samples, SnapshotSamples
from sim.scene.bev import BevSpec
from sim.scene.observation import Observation

log = logging.getLogger(__name__)

#: The collated fields of a batch, as :class:`~autoloop.training.data.Batch` names them (``bev`` packed).
FIELDS = ("bev", "state", "action", "waypoints", "speed", "has_trajectory", "has_action")


class SampleSource(Protocol):
    """Where samples come from: their index, and one unit's samples (units in the index's order)."""

    @property
    def bev_shape(self) -> tuple[int, int, int]: ...

    @property
    def state_size(self) -> int: ...

    def __len__(self) -> int: ...

    def index(self) -> SampleIndex: ...

    def read(self, unit: int) -> Samples: ...


class StreamedSnapshot:
    """A snapshot's samples read from the store when a loader needs them (see the module docstring). Building it
    reads every episode once without its BEVs, for the index (categories, weights, samples per episode)."""

    def __init__(self, store: EpisodeStore, snapshot: DatasetSnapshot, *, waypoints: int = 4,
                 waypoint_dt_s: float = 0.5, bev: BevSpec | None = None) -> None:
        self.samples = SnapshotSamples(store, snapshot, waypoints=waypoints, waypoint_dt_s=waypoint_dt_s, bev=bev)
        self.bev_shape = self.samples.bev_shape
        indexes, self.episodes, state_sizes = [], [], set()
        for position in range(len(snapshot.episode_ids)):
            part = self.samples.episode(position, light=True)
            if part is None:
                continue
            self.episodes.append(position)
            state_sizes.add(part["state"].shape[1])
            indexes.append(sample_index(part["state"], part["speed"], part["has_trajectory"], part["weight"],
                                        np.array([len(part["speed"])])))
        if not indexes:
            raise ValueError(f"dataset snapshot {snapshot.digest[:12]} has no episode with observations")
        if len(state_sizes) > 1:
            raise ValueError(f"episodes of snapshot {snapshot.digest[:12]} have states of sizes {sorted(state_sizes)}")
        self._state_size = int(state_sizes.pop())
        categories = [i.categories for i in indexes]
        self._index = SampleIndex(
            unit_sizes=np.concatenate([i.unit_sizes for i in indexes]),
            categories=None if any(c is None for c in categories) else np.concatenate(categories),  # type: ignore
            weight=np.concatenate([i.weight for i in indexes if i.weight is not None]))

    @property
    def state_size(self) -> int:
        return self._state_size

    def __len__(self) -> int:
        return len(self._index)

    def index(self) -> SampleIndex:
        return self._index

    def example(self, count: int = 2) -> Observation:
        """The first ``count`` samples' observations (of the first episode that has samples): the input example a
        model is logged with."""
        unit = int(np.flatnonzero(self._index.unit_sizes)[0])
        part = self.read(unit)
        rows = np.arange(min(count, len(part["state"])))
        return {"bev": unpack_bev(part["bev"], rows, self.bev_shape), "state": part["state"][rows]}

    def read(self, unit: int) -> Samples:
        part = self.samples.episode(self.episodes[unit])
        if part is None or len(part["speed"]) != self._index.unit_sizes[unit]:
            raise ValueError(f"episode {self.samples.snapshot.episode_ids[self.episodes[unit]]} changed while "
                             "training read it")
        return part


@dataclass(frozen=True)
class EpochPlan:
    """The windows of rows one rank reads in one epoch, and the batch size they are cut into."""

    windows: tuple[NDArray[np.intp], ...]
    batch_size: int

    def batches(self, workers: int) -> int:
        """Batches the plan yields through ``workers`` loader processes (0: in the training process)."""
        return sum(-(-sum(len(w) for w in self.windows[k::max(workers, 1)]) // self.batch_size)
                   for k in range(max(workers, 1)))


def epoch_windows(index: SampleIndex, rows: NDArray[np.intp], *, seed: int, epoch: int, per_epoch: int, rank: int,
                  world_size: int, window: int, batch_size: int, shuffle: bool = True) -> EpochPlan:
    """This rank's windows of ``rows`` (sorted, repeats adjacent) for ``epoch`` (see the module docstring);
    ``shuffle=False``: every row once, in order, windows of whole batches (validation)."""
    if not shuffle:
        return EpochPlan(tuple(rows[i:i + batch_size] for i in range(0, len(rows), batch_size)), batch_size)
    unit_of = np.repeat(np.arange(len(index.unit_sizes)), index.unit_sizes)
    position = np.empty(len(index.unit_sizes), dtype=np.intp)
    position[np.random.default_rng([seed, epoch]).permutation(len(index.unit_sizes))] = np.arange(
        len(index.unit_sizes))
    laid_out = rows[np.argsort(position[unit_of[rows]], kind="stable")][:per_epoch]
    share = per_epoch // world_size
    mine = laid_out[rank * share:(rank + 1) * share]
    size = -(-window // batch_size) * batch_size
    return EpochPlan(tuple(np.random.default_rng([seed, epoch, rank, k]).permutation(mine[start:start + size])
                           for k, start in enumerate(range(0, share, size))), batch_size)


class SampleStream(IterableDataset[dict[str, torch.Tensor]]):
    """The batches of ``plan`` read from ``source``, each loader process reading its windows (the module
    docstring); a batch is a dict of CPU tensors named as :data:`FIELDS`, its BEVs packed."""

    def __init__(self, source: SampleSource, plan: EpochPlan) -> None:
        self.source, self.plan = source, plan
        self.starts = np.concatenate([[0], np.cumsum(source.index().unit_sizes)])

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        pending: dict[str, list[NDArray[np.generic]]] = {name: [] for name in FIELDS}
        held = 0
        for window in self.plan.windows[worker::workers]:
            samples = self._gather(window)
            start = 0
            while start < len(window):
                take = min(self.plan.batch_size - held, len(window) - start)
                for name in FIELDS:
                    pending[name].append(samples[name][start:start + take])
                held, start = held + take, start + take
                if held == self.plan.batch_size:
                    yield _collate(pending)
                    pending, held = {name: [] for name in FIELDS}, 0
        if held:
            yield _collate(pending)

    def _gather(self, rows: NDArray[np.intp]) -> Samples:
        """The samples of ``rows`` (global sample numbers), in their order, each episode read once."""
        units = np.searchsorted(self.starts, rows, side="right") - 1
        gathered: Samples = {}
        for unit in np.unique(units):
            part = self.source.read(int(unit))
            where = np.flatnonzero(units == unit)
            local = rows[where] - self.starts[unit]
            for name in FIELDS:
                values = part[name]
                if name not in gathered:
                    gathered[name] = np.empty((len(rows), *values.shape[1:]), dtype=values.dtype)
                gathered[name][where] = values[local]
        return gathered


def _collate(pending: dict[str, list[NDArray[np.generic]]]) -> dict[str, torch.Tensor]:
    arrays = {name: np.concatenate(parts) for name, parts in pending.items()}
    for name in ("state", "action", "waypoints", "speed"):
        arrays[name] = arrays[name].astype(np.float32, copy=False)
    return {name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in arrays.items()}


def loader(source: SampleSource, plan: EpochPlan, *, workers: int, pin_memory: bool = False,
           ) -> DataLoader[dict[str, torch.Tensor]]:
    """A ``DataLoader`` of :class:`SampleStream` batches with ``workers`` loader processes."""
    return DataLoader(SampleStream(source, plan), batch_size=None, num_workers=workers, pin_memory=pin_memory,
                      persistent_workers=False, prefetch_factor=4 if workers else None)


def unpack_bits(packed: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """``numpy.packbits``-packed rows ``(N, bytes)`` unpacked to ``(N, *shape)`` uint8, on ``packed``'s device."""
    shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=packed.device)
    bits = (packed.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(len(packed), -1)[:, :int(np.prod(shape))].reshape(len(packed), *shape)


def to_batch(tensors: dict[str, torch.Tensor], bev_shape: tuple[int, int, int], device: torch.device) -> Batch:
    """A collated batch moved to ``device``, its BEVs unpacked there."""
    moved = {name: tensor.to(device, non_blocking=True) for name, tensor in tensors.items()}
    return Batch(bev=unpack_bits(moved.pop("bev"), bev_shape), **moved)

