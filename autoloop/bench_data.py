"""Real-format episodes for the store and data benchmarks, and ``autoloop bench data``: how fast the training data
path (:mod:`autoloop.training.stream`) turns a real-format store into collated batches, beside how fast the training
step consumes them.

An episode here has the columns a labelled collection rollout writes (:mod:`autoloop.rollout.episodes`): the ego's
poses and controls, the executed ``action``, the expert's ``label``, ``label_plan_xy`` and ``label_plan_speed``, the
``STATE_SIZE``-float ``obs_state`` and the bit-packed ``obs_bev`` of ``len(Channel)`` channels; the BEV bits are set
with the share of a rendered town BEV (about one in eight), so that zstd compresses them as it does real ones.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autoloop.episodes import Episode
from autoloop.progress import counted
from policies.expert import ExpertParams
from sim.scene.bev import Channel
from sim.scene.observation import STATE_SIZE

#: Share of set BEV bits (drivable area and lane lines dominate a rendered BEV).
BEV_FILL = 0.125


def bev_shape(size_px: int) -> tuple[int, int, int]:
    """The stored BEV shape at ``size_px``: ``(len(Channel), size_px, size_px)``."""
    return len(Channel), size_px, size_px


def real_format_episode(episode_id: str, steps: int, shape: tuple[int, int, int], rng: np.random.Generator,
                        ) -> Episode:
    """A sim episode of ``steps`` steps (dt 0.05 s) with every column a labelled rollout stores, driven by the
    expert (trajectory targets come from its poses), of BEV ``shape``."""
    plan_steps = ExpertParams().plan_steps
    speed = np.clip(8.0 + np.cumsum(rng.standard_normal(steps) * 0.1), 0.0, 20.0).astype(np.float32)
    yaw = np.cumsum(rng.standard_normal(steps) * 0.01).astype(np.float32)
    columns: dict[str, Any] = {"step": np.arange(steps, dtype=np.int32),
                               "time_s": np.arange(steps, dtype=np.float32) * 0.05,
                               "x_m": np.cumsum(speed * np.cos(yaw) * 0.05),
                               "y_m": np.cumsum(speed * np.sin(yaw) * 0.05), "yaw_rad": yaw, "speed_mps": speed}
    for name in ("steer_rad", "accel_mps2", "route_progress_m"):
        columns[name] = rng.standard_normal(steps).astype(np.float32)
    for name in ("action", "label"):
        columns[name] = rng.uniform(-1, 1, (steps, 2)).astype(np.float32)
    columns["label_plan_xy"] = rng.standard_normal((steps, 2 * plan_steps)).astype(np.float32)
    columns["label_plan_speed"] = rng.uniform(0, 15, (steps, plan_steps)).astype(np.float32)
    columns["obs_state"] = rng.uniform(0, 1, (steps, STATE_SIZE)).astype(np.float32)
    bits = rng.random((steps, int(np.prod(shape))), dtype=np.float32) < BEV_FILL
    columns["obs_bev"] = np.packbits(bits, axis=1)
    return Episode(episode_id, "sim", columns, {"map_name": "town-1", "policy": "expert", "dt_s": 0.05,
                                                "tags": {"purpose": "bench"}, "bev_shape": list(shape)})


@dataclass(frozen=True)
class DataBenchResult:
    """``autoloop bench data`` at one BEV size: the loader's rate per number of loader workers, the training step's
    consumption rate, and their ratio (loader with the most workers / training step)."""

    bev_shape: tuple[int, int, int]
    samples: int
    store_mb: float
    index_seconds: float
    index_mb: float
    batch_size: int
    loader_samples_per_s: dict[str, float]
    train_step_samples_per_s: float
    loader_over_train: float
    device: str
    peak_rss_mb: float
    peak_rss_workers_mb: float
    ddp: dict[str, float] | None


def bench_data(root: Path, *, episodes: int = 40, steps: int = 500, bev_sizes: Sequence[int] = (64, 128),
               workers: Sequence[int] = (0, 1, 2), batch_size: int = 256, train_batches: int = 8, threads: int = 1,
               ddp: bool = True, seed: int = 0) -> list[DataBenchResult]:
    """Measure the training data path for each BEV size: write ``episodes`` real-format episodes of ``steps`` steps
    into a store under ``root`` and snapshot them; build the streamed snapshot's index (timed); read one epoch of
    every sample (the training order, 16 k shuffle windows) through the ``DataLoader`` into collated batches with
    each number of ``workers`` (samples/s); time ``train_batches`` optimizer steps of the ``waypoints`` network on
    collated batches (BEV bits unpacked on the training device, the GPU when there is one; ``threads`` torch
    threads) for the training step's own rate; and, with ``ddp``, one epoch of training through
    ``python -m autoloop.training.ddp`` on 1 and on 2 processes (gloo on CPUs; wall time of the command, process
    start-up and index included). Peak memory: the largest resident set of this process and of any loader worker
    (``getrusage``)."""
    import resource

    import torch

    from autoloop.config import TrainConfig
    from autoloop.episodes import EpisodeStore, create_snapshot
    from autoloop.training.balance import epoch_rows
    from autoloop.training.stream import StreamedSnapshot, epoch_windows, loader

    torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rng = np.random.default_rng(seed)
    results = []
    for size in bev_sizes:
        shape = bev_shape(size)
        home = root / f"bev{size}"
        store = EpisodeStore(home / "episodes")
        for index in counted(range(episodes), f"bench data: {size} px store", "episodes"):
            store.write(real_format_episode(f"bench-{index:06d}", steps, shape, rng))
        snapshot = create_snapshot(store, home / "datasets", store.episode_ids(), {"purpose": "bench"})
        start = time.perf_counter()
        streamed = StreamedSnapshot(store, snapshot)
        index_seconds = time.perf_counter() - start
        sample_index = streamed.index()
        config = TrainConfig(batch_size=batch_size, seed=seed, threads=threads)
        rows = epoch_rows(sample_index, np.arange(len(sample_index)), threshold=config.repeat_threshold, seed=seed)
        plan = epoch_windows(sample_index, rows, seed=seed, epoch=1, per_epoch=len(rows), rank=0, world_size=1,
                             window=config.shuffle_buffer, batch_size=batch_size)
        rates = {}
        for count in workers:
            start = time.perf_counter()
            seen = sum(len(batch["speed"]) for batch in loader(streamed, plan, workers=count))
            rates[str(count)] = round(seen / (time.perf_counter() - start), 1)
        # the training step alone, on batches already collated
        collated = []
        for batch in loader(streamed, plan, workers=0):
            collated.append(batch)
            if len(collated) == train_batches + 1:
                break
        train_rate = _train_step_rate(collated, config, shape, streamed.state_size, device)
        size_mb = sum(p.stat().st_size for p in store.root.rglob("*.parquet")) / 2**20
        index_mb = sum(a.nbytes for a in (sample_index.unit_sizes, sample_index.categories, sample_index.weight)
                       if a is not None) / 2**20
        results.append(DataBenchResult(
            bev_shape=shape, samples=len(streamed), store_mb=round(size_mb, 1), index_seconds=round(index_seconds, 3),
            index_mb=round(index_mb, 3), batch_size=batch_size, loader_samples_per_s=rates,
            train_step_samples_per_s=round(train_rate, 1),
            loader_over_train=round(rates[str(max(workers))] / train_rate, 2), device=str(device),
            peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            peak_rss_workers_mb=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            ddp=_ddp_rates(home, snapshot.path, batch_size=batch_size, threads=threads, samples=len(streamed))
            if ddp else None))
    return results


def _train_step_rate(collated: list[Any], config: Any, shape: tuple[int, int, int], state_size: int,
                     device: Any) -> float:
    """Samples/s of the ``waypoints`` network's optimizer steps on ``collated`` batches after a warm-up step on the
    first (BEV bits unpacked on ``device``)."""
    import torch

    from autoloop.training.bc import build_policy, network, waypoint_loss
    from autoloop.training.stream import to_batch

    net = network(build_policy(config, shape, state_size)).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    for number, tensors in enumerate(collated):
        if number == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        value, _ = waypoint_loss(net, to_batch(tensors, shape, device))
        optimizer.zero_grad(set_to_none=True)
        value.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return sum(len(t["speed"]) for t in collated[1:]) / (time.perf_counter() - start)


def _ddp_rates(home: Path, dataset: Path, *, batch_size: int, threads: int, samples: int) -> dict[str, float]:
    """Training samples/s of one epoch through ``python -m autoloop.training.ddp`` on 1 and 2 processes (one
    loader worker each), wall time of the command."""
    import subprocess
    import sys

    config = home / "bench.yaml"
    config.write_text(f"train:\n  epochs: 1\n  batch_size: {batch_size}\n  threads: {threads}\n  loader_workers: 1\n"
                      "  rows_per_epoch: null\n  init: scratch\n")
    rates = {}
    for processes in (1, 2):
        run = home / f"ddp-{processes}"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "autoloop.training.ddp", "--home", str(home), "--dataset", str(dataset),
                        "--checkpoints", str(run), "--output", str(run / "driver.pt"), "--config", str(config),
                        "--nproc", str(processes)], check=True, capture_output=True)
        rates[f"{processes}_ranks_samples_per_s"] = round(samples / (time.perf_counter() - start), 1)
    return rates
