"""Benchmarks that print JSON: how fast the embedded simulator steps and renders.

``autoloop bench sim`` steps batches of scenarios with constant actions (the world alone) and with observations
(world + BEV + state vector), and reports env-steps/s, vehicle-steps/s (env-steps x background vehicles) and BEV
observations/s per batch size, with the peak memory the run allocated (tracemalloc, numpy included).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from sim.embedded.observation import Observer
from sim.embedded.world import World, WorldConfig
from sim.maps import get_map
from sim.scenario import sample_scenario


@dataclass(frozen=True)
class SimBenchResult:
    """One measured configuration."""

    batch_size: int
    vehicles_per_scenario: int
    bev: bool
    steps: int
    seconds: float
    env_steps_per_s: float
    vehicle_steps_per_s: float
    observations_per_s: float
    peak_memory_mb: float


def bench_sim(*, batch_sizes: Sequence[int] = (1, 64, 1024), vehicles: int = 8, map_name: str = "junction4-60",
              min_seconds: float = 2.0, max_steps: int = 2000) -> list[SimBenchResult]:
    """Measure the embedded world with and without observations for each batch size.

    Each configuration steps for ``min_seconds`` (after one warm-up step) or ``max_steps`` steps, whichever comes
    first. Vehicle-steps count the background vehicles actually on the map at each step.
    """
    results = []
    for batch_size in batch_sizes:
        for bev in (False, True):
            results.append(_measure(batch_size, vehicles, map_name, bev, min_seconds, max_steps))
    return results


def _measure(batch_size: int, vehicles: int, map_name: str, bev: bool, min_seconds: float,
             max_steps: int) -> SimBenchResult:
    tracemalloc.start()
    world = World(get_map(map_name), batch_size, WorldConfig(max_vehicles=vehicles))
    world.reset([sample_scenario(seed, map_name=map_name, traffic_vehicles=vehicles) for seed in range(batch_size)])
    observer = Observer(world) if bev else None
    if observer is not None:
        observer.reset()
    actions = np.tile(np.array([0.0, 0.3]), (batch_size, 1))
    world.step(actions)  # warm-up
    steps, vehicle_steps, start = 0, 0, time.perf_counter()
    while steps < max_steps and (time.perf_counter() - start) < min_seconds:
        world.step(actions)
        if observer is not None:
            observer.observe()
        steps += 1
        vehicle_steps += int(world.npc_valid.sum())
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    env_steps = steps * batch_size / seconds
    return SimBenchResult(
        batch_size=batch_size,
        vehicles_per_scenario=vehicles,
        bev=bev,
        steps=steps,
        seconds=round(seconds, 3),
        env_steps_per_s=round(env_steps, 1),
        vehicle_steps_per_s=round(vehicle_steps / seconds, 1),
        observations_per_s=round(env_steps, 1) if bev else 0.0,
        peak_memory_mb=round(peak / 2**20, 1),
    )


def as_json(results: Sequence[SimBenchResult]) -> list[dict[str, object]]:
    return [asdict(result) for result in results]
