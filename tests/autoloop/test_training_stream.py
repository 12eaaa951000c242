"""Training samples streamed from the store: the same samples, order and weights as training from memory."""

from pathlib import Path

import numpy as np
import pytest
import torch

from autoloop.bench_data import bev_shape, real_format_episode
from autoloop.config import TrainConfig
from autoloop.episodes import EpisodeStore, SnapshotPart, create_snapshot
from autoloop.training import load_trajectory_arrays, train_bc
from autoloop.training.balance import epoch_rows
from autoloop.training.stream import StreamedSnapshot, epoch_windows, loader, unpack_bits

EPISODES = 6
STEPS = 40


@pytest.fixture(scope="module")
def snapshot_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[EpisodeStore, Path]:
    root = tmp_path_factory.mktemp("stream")
    store = EpisodeStore(root / "episodes")
    rng = np.random.default_rng(0)
    store.write_many([real_format_episode(f"ep-{i}", STEPS + 7 * i, bev_shape(16), rng) for i in range(EPISODES)])
    snapshot = create_snapshot(store, root / "datasets", store.episode_ids(), {},
                               parts=[SnapshotPart("rare", "weighted", ("ep-1", "ep-4"), weight=2.5)])
    return store, snapshot.path


def test_the_streamed_index_is_the_in_memory_one(snapshot_data: tuple[EpisodeStore, Path]) -> None:
    from autoloop.episodes import load_snapshot

    store, path = snapshot_data
    snapshot = load_snapshot(path)
    arrays, streamed = load_trajectory_arrays(store, snapshot), StreamedSnapshot(store, snapshot)
    memory, stream = arrays.index(), streamed.index()
    assert len(streamed) == len(arrays) and streamed.bev_shape == arrays.bev_shape == (9, 16, 16)
    np.testing.assert_array_equal(stream.unit_sizes, [STEPS + 7 * i for i in range(EPISODES)])
    np.testing.assert_array_equal(stream.unit_sizes, memory.unit_sizes)
    assert stream.categories is not None and memory.categories is not None
    np.testing.assert_array_equal(stream.categories, memory.categories)
    np.testing.assert_array_equal(stream.weight, memory.weight)
    assert set(np.unique(stream.weight)) == {1.0, 2.5}  # the part's weight reaches its samples


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_training_equals_in_memory_training(snapshot_data: tuple[EpisodeStore, Path], workers: int) -> None:
    from autoloop.episodes import load_snapshot

    store, path = snapshot_data
    snapshot = load_snapshot(path)
    # windows of 48 rows: the epoch is shuffled in several windows, read by two worker processes
    config = TrainConfig(epochs=2, batch_size=16, threads=1, width=4, hidden=16, seed=3, repeat_threshold=0.5,
                         shuffle_buffer=48, loader_workers=workers)
    streamed_steps: list[dict[str, float]] = []
    memory_steps: list[dict[str, float]] = []
    streamed = train_bc(StreamedSnapshot(store, snapshot), config, on_step=lambda _, losses: streamed_steps.append(
        losses))
    memory = train_bc(load_trajectory_arrays(store, snapshot), config,
                      on_step=lambda _, losses: memory_steps.append(losses))
    assert streamed_steps == memory_steps and len(streamed_steps) > 2 * 10
    assert streamed.history == memory.history
    for (name, a), (_, b) in zip(streamed.policy.net.state_dict().items(), memory.policy.net.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    other = train_bc(StreamedSnapshot(store, snapshot), config.model_copy(update={"seed": 4}))
    assert not torch.equal(next(iter(other.policy.net.state_dict().values())),
                           next(iter(streamed.policy.net.state_dict().values())))


def test_each_rank_and_worker_reads_its_own_share(snapshot_data: tuple[EpisodeStore, Path]) -> None:
    from autoloop.episodes import load_snapshot

    store, path = snapshot_data
    arrays = load_trajectory_arrays(store, load_snapshot(path))
    index = arrays.index()
    rows = epoch_rows(index, np.arange(len(index)), threshold=0.5, seed=0)
    per_epoch = len(rows) - 5
    plans = [epoch_windows(index, rows, seed=0, epoch=1, per_epoch=per_epoch, rank=rank, world_size=2, window=30,
                           batch_size=8) for rank in range(2)]
    shares = [np.concatenate(plan.windows) for plan in plans]
    assert len(shares[0]) == len(shares[1]) == per_epoch // 2
    # together the ranks hold the epoch's rows, each as often as the repeat factors say
    laid = np.sort(np.concatenate(shares))
    assert set(np.unique(laid)) <= set(rows) and len(laid) == 2 * (per_epoch // 2)
    starts = np.concatenate([[0], np.cumsum(index.unit_sizes)])
    episodes = [set(np.searchsorted(starts, share, side="right") - 1) for share in shares]
    assert len(episodes[0] & episodes[1]) <= 1  # the ranks share at most their boundary episode
    # workers: every batch of the plan once, their BEVs unpacked as numpy does
    seen = []
    for batch in loader(arrays, plans[0], workers=2):
        assert len(batch["bev"]) <= 8
        seen.append(batch["state"])
    assert len(seen) == plans[0].batches(2)
    assert torch.cat(seen).shape[0] == per_epoch // 2
    assert torch.equal(torch.sort(torch.cat(seen)[:, 0]).values,
                       torch.sort(torch.from_numpy(arrays.state[shares[0], 0])).values)


def test_bits_unpack_as_numpy_unpacks_them() -> None:
    bits = np.random.default_rng(1).random((5, 3, 7, 7)) < 0.3
    packed = np.packbits(bits.reshape(5, -1), axis=1)
    unpacked = unpack_bits(torch.from_numpy(packed), (3, 7, 7))
    np.testing.assert_array_equal(unpacked.numpy(), bits.astype(np.uint8))
