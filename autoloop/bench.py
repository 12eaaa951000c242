"""Benchmarks that print JSON: how fast the embedded simulator steps and renders.

``autoloop bench sim`` steps batches of scenarios (by default on the procedural town ``town-1`` with 30 vehicles and
10 pedestrians each) with constant actions (the world alone) and with observations (world + BEV + state vector),
and reports env-steps/s, vehicle-steps/s (env-steps x background vehicles on the map) and BEV observations/s per
batch size, with the peak memory that setting up and one step allocated (tracemalloc, numpy included; tracing is off
while timing). The first configuration also
pays for compiling the kernels unless numba's cache already holds them: a warm-up step runs before timing.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autoloop.progress import counted
from autoloop.rollout import DrivenRoute, DriverFactory, RouteRecorder, drive
from sim.embedded.config import WorldConfig
from sim.embedded.world import World
from sim.maps import get_map
from sim.metrics import score_suite
from sim.scenarios import sample_scenario
from sim.scenarios.suites import Suite, build_suite
from sim.scene.bev import BevSpec
from sim.scene.observation import Observer


@dataclass(frozen=True)
class SimBenchResult:
    """One measured configuration."""

    batch_size: int
    map_name: str
    vehicles_per_scenario: int
    pedestrians_per_scenario: int
    bev: bool
    bev_size_px: int
    steps: int
    seconds: float
    env_steps_per_s: float
    vehicle_steps_per_s: float
    observations_per_s: float
    peak_memory_mb: float


def bench_sim(*, batch_sizes: Sequence[int] = (1, 64, 1024), vehicles: int = 30, pedestrians: int = 10,
              map_name: str = "town-1", bev_size_px: int = 128, min_seconds: float = 2.0,
              max_steps: int = 2000) -> list[SimBenchResult]:
    """Measure the embedded world with and without observations for each batch size.

    Each configuration steps for ``min_seconds`` (after one warm-up step) or ``max_steps`` steps, whichever comes
    first. Vehicle-steps count the background vehicles actually on the map at each step.
    """
    results = []
    for batch_size, bev in counted([(size, bev) for size in batch_sizes for bev in (False, True)], "bench sim",
                                   "configurations"):
        spec = BevSpec(size_px=bev_size_px, ego_row=3 * bev_size_px // 4) if bev else None
        results.append(_measure(batch_size, vehicles, pedestrians, map_name, spec, min_seconds, max_steps))
    return results


def _measure(batch_size: int, vehicles: int, pedestrians: int, map_name: str, bev: BevSpec | None,
             min_seconds: float, max_steps: int) -> SimBenchResult:
    tracemalloc.start()
    config = WorldConfig(max_vehicles=vehicles, max_pedestrians=pedestrians, blocked_s=float("inf"))
    world = World(get_map(map_name), batch_size, config)
    # the ego waits at its start while traffic flows around it; no route ends during the measurement
    world.reset([sample_scenario(seed, map_name=map_name, traffic_vehicles=vehicles, pedestrians=pedestrians)
                 .model_copy(update={"timeout_s": 1e9}) for seed in range(batch_size)])
    observer = Observer(world, bev) if bev is not None else None
    actions = np.zeros((batch_size, 2))
    world.step(actions)  # warm-up; memory peaks here (state, map raster, one batch of observations)
    if observer is not None:
        observer.observe()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()  # tracing every allocation would slow the timed loop down
    steps, vehicle_steps, start = 0, 0, time.perf_counter()
    while steps < max_steps and (time.perf_counter() - start) < min_seconds:
        world.step(actions)
        if observer is not None:
            observer.observe()
        steps += 1
        vehicle_steps += int(world.npc_valid[world.running].sum())
    seconds = time.perf_counter() - start
    env_steps = steps * batch_size / seconds
    return SimBenchResult(
        batch_size=batch_size,
        map_name=map_name,
        vehicles_per_scenario=vehicles,
        pedestrians_per_scenario=pedestrians,
        bev=bev is not None,
        bev_size_px=bev.size_px if bev is not None else 0,
        steps=steps,
        seconds=round(seconds, 3),
        env_steps_per_s=round(env_steps, 1),
        vehicle_steps_per_s=round(vehicle_steps / seconds, 1),
        observations_per_s=round(env_steps, 1) if bev is not None else 0.0,
        peak_memory_mb=round(peak / 2**20, 1),
    )


def as_json(results: Sequence[Any]) -> list[dict[str, object]]:
    return [asdict(result) for result in results]


@dataclass(frozen=True)
class SuiteTypeResult:
    """Scores of one scenario type (``"all"``: the whole suite) of a suite run."""

    scenario_type: str
    routes: int
    driving_score: float
    driving_score_bench2drive: float  # the same routes under Bench2Drive's scorer (no minimum-speed penalty)
    route_completion: float
    success_rate: float
    infractions_per_km: float
    collisions_per_km: float
    comfort: float
    infractions: dict[str, int]


def drive_suite(suite: Suite, driver: DriverFactory, *, bev: BevSpec = BevSpec()) -> list[DrivenRoute]:
    """Drive every scenario of ``suite`` with the driver ``driver(world)`` builds, a batch per map: each route's
    record and comfort, in suite order. Learned drivers see ``bev`` rasters."""
    return drive(suite.scenarios, driver=driver, recorder=RouteRecorder(), world=suite.world_config(),
                 batch_size=len(suite.scenarios), bev=bev)


def bench_expert(*, suite_name: str = "eval", per_type: int = 6) -> tuple[Suite, list[SuiteTypeResult]]:
    """Drive a suite with the privileged expert: per scenario type and overall, DS (Leaderboard 2.0's scorer, and
    Bench2Drive's, which leaves minimum speed out), RC, success rate, infractions and collisions per km, comfort."""
    from policies.expert import ExpertDriver

    suite = build_suite(suite_name, per_type=per_type)
    return suite, bench_driver(suite, ExpertDriver)


def bench_driver(suite: Suite, driver: DriverFactory, *, bev: BevSpec = BevSpec()) -> list[SuiteTypeResult]:
    """Drive ``suite`` with ``driver(world)`` and score it per scenario type and overall (see :func:`bench_expert`)."""
    routes = drive_suite(suite, driver, bev=bev)
    records, comforts = [route.record for route in routes], [route.comfort for route in routes]
    types: dict[str, list[int]] = {}
    for index in range(len(suite.scenarios)):
        types.setdefault(suite.event_type(index), []).append(index)
    rows = []
    for name, indices in [*sorted(types.items()), ("all", list(range(len(records))))]:
        score = score_suite([records[i] for i in indices])
        b2d = score_suite([records[i] for i in indices], scorer="bench2drive")
        per_km = sum(score.infractions_per_km().values())
        rows.append(SuiteTypeResult(
            scenario_type=name, routes=len(indices), driving_score=round(score.driving_score, 2),
            driving_score_bench2drive=round(b2d.driving_score, 2),
            route_completion=round(score.route_completion, 2), success_rate=round(score.success_rate, 1),
            infractions_per_km=round(per_km, 3), collisions_per_km=round(score.collisions_per_km, 3),
            comfort=round(float(np.mean([comforts[i] for i in indices])), 3),
            infractions={kind.value: count for kind, count in sorted(score.infractions.items())}))
    return rows


@dataclass(frozen=True)
class StoreBenchResult:
    """Episode-store throughput (``autoloop bench store``)."""

    episodes: int
    steps_per_episode: int
    ego_steps: int
    state_size: int
    bev_shape: tuple[int, int, int]
    bev_bytes_per_step: int
    store_mb: float
    write_seconds: float
    write_steps_per_s: float
    read_seconds: float
    read_steps_per_s: float
    query_seconds: float
    query: str


def bench_store(root: Path, *, episodes: int = 100, steps: int = 1000, bev_size_px: int = 64,
                seed: int = 0) -> StoreBenchResult:
    """Write ``episodes`` real-format sim episodes of ``steps`` steps (every column a labelled rollout records: the
    ``STATE_SIZE``-float state, the bit-packed ``9 x bev_size_px x bev_size_px`` BEV, the expert's labels and
    planned waypoints: :func:`autoloop.bench_data.real_format_episode`) into a store under ``root``, snapshot them,
    read them back into training arrays as training does (:func:`~autoloop.episodes.load_training_arrays`, hashes
    checked), and time one DuckDB aggregate per episode over the ``ego`` view. Episodes are generated before the
    clock starts, and one episode is written and read before it (in a store of its own) so that the rates leave out
    one-time costs."""
    from autoloop.bench_data import bev_shape as stored_shape
    from autoloop.bench_data import real_format_episode
    from autoloop.episodes import EpisodeStore, create_snapshot, load_training_arrays
    from sim.scene.observation import STATE_SIZE

    rng = np.random.default_rng(seed)
    bev_shape = stored_shape(bev_size_px)
    bev_bytes = -(-int(np.prod(bev_shape)) // 8)
    store = EpisodeStore(root / "episodes")
    batch = []
    for index in counted(range(episodes), "bench store", "episodes"):
        batch.append(real_format_episode(f"bench-{index:06d}", steps, bev_shape, rng))
    # warm-up: one episode through a store of its own pays the one-time costs (lazy imports, first allocations)
    warmup = EpisodeStore(root / "warmup")
    warmup.write(batch[0])
    load_training_arrays(warmup, create_snapshot(warmup, root / "warmup-datasets", [batch[0].episode_id], {}))
    start = time.perf_counter()
    store.write_many(batch)
    write_seconds = time.perf_counter() - start
    del batch
    snapshot = create_snapshot(store, root / "datasets", store.episode_ids(), {"purpose": "bench"})
    start = time.perf_counter()
    arrays = load_training_arrays(store, snapshot)
    read_seconds = time.perf_counter() - start
    assert len(arrays) == episodes * steps
    sql = "SELECT episode_id, count(*) AS steps, avg(speed_mps) AS mean_speed_mps FROM ego GROUP BY episode_id"
    start = time.perf_counter()
    assert store.query(sql).num_rows == episodes
    query_seconds = time.perf_counter() - start
    size = sum(path.stat().st_size for path in store.root.rglob("*") if path.is_file())
    total = episodes * steps
    return StoreBenchResult(
        episodes=episodes, steps_per_episode=steps, ego_steps=total, state_size=STATE_SIZE, bev_shape=bev_shape,
        bev_bytes_per_step=bev_bytes, store_mb=round(size / 2**20, 1), write_seconds=round(write_seconds, 3),
        write_steps_per_s=round(total / write_seconds), read_seconds=round(read_seconds, 3),
        read_steps_per_s=round(total / read_seconds), query_seconds=round(query_seconds, 3), query=sql)


@dataclass(frozen=True)
class TrainBenchResult:
    """Training throughput (``autoloop bench train``)."""

    device: str
    threads: int
    bev_shape: tuple[int, int, int]
    samples: int
    bc_samples_per_s: dict[str, float]
    ppo_num_envs: int
    ppo_timesteps: int
    ppo_env_steps_per_s_native: float
    ppo_env_steps_per_s_sync_vector: float
    sac_num_envs: int
    sac_timesteps: int
    sac_env_steps_per_s_native: float


def bench_train(*, samples: int = 2048, batch_size: int = 128, bev_size_px: int = 64, threads: int = 1,
                ppo_envs: int = 8, ppo_timesteps: int = 512, sac_envs: int = 8, sac_timesteps: int = 512,
                seed: int = 0) -> TrainBenchResult:
    """Measure imitation training (samples/s over one epoch of random data, after a warm-up epoch, for the
    ``waypoints`` and ``bc`` networks; on the GPU when there is one), PPO (environment steps/s of the same PPO
    on the native batched env through :class:`sim.embedded.sb3.Sb3VecEnv`, and on a
    ``gymnasium.vector.SyncVectorEnv`` of single :class:`sim.embedded.env.DrivingEnv`) and SAC (environment
    steps/s on the native env, one gradient step of 128 transitions per vector step, after the replay buffer's
    warm-up)."""
    import torch
    from gymnasium.vector import SyncVectorEnv

    from autoloop.config import PpoConfig, SacConfig, SimConfig, TrainConfig
    from autoloop.training.bc import train_bc
    from autoloop.training.data import TrajectoryArrays
    from autoloop.training.distributed import process_group
    from autoloop.training.ppo import GymVectorVecEnv, make_ppo
    from autoloop.training.rl import make_vec_env
    from autoloop.training.sac import make_sac
    from sim.embedded.env import DrivingEnv
    from sim.scene.bev import Channel
    from sim.scene.observation import STATE_SIZE

    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    shape = (len(Channel), bev_size_px, bev_size_px)
    data = TrajectoryArrays(
        bev_packed=rng.integers(0, 256, (samples, int(np.prod(shape)) // 8), dtype=np.uint8), bev_shape=shape,
        state=rng.standard_normal((samples, STATE_SIZE)).astype(np.float32),
        action=rng.uniform(-1, 1, (samples, 2)).astype(np.float32),
        waypoints=rng.standard_normal((samples, 4, 2)).astype(np.float32),
        speed=rng.uniform(0, 10, samples).astype(np.float32), has_trajectory=np.ones(samples, dtype=bool),
        has_action=np.ones(samples, dtype=bool))
    rates = {}
    with process_group() as topology:
        for kind in ("waypoints", "bc"):
            config = TrainConfig(policy=kind, epochs=1, batch_size=batch_size, threads=threads, seed=seed)
            train_bc(data, config, topology=topology)  # warm-up (and compilation on a GPU)
            start = time.perf_counter()
            train_bc(data, config.model_copy(update={"epochs": 1}), topology=topology)
            if topology.device.type == "cuda":
                torch.cuda.synchronize()
            rates[kind] = round(samples * (1 - 0.1) / (time.perf_counter() - start), 1)  # (10 % validation)
        device = str(topology.device)
    sim = SimConfig()
    ppo = PpoConfig(timesteps=ppo_timesteps, num_envs=ppo_envs, n_steps=ppo_timesteps // ppo_envs // 2,
                    batch_size=128, n_epochs=1)
    warmup = ppo.n_steps * ppo.num_envs
    native = _rl_rate(make_vec_env(sim, ppo_envs), lambda env: make_ppo(env, ppo, width=16, hidden=128), warmup,
                      ppo_timesteps, "bench train: ppo native")
    single = [lambda: DrivingEnv(map_name=sim.map_name, traffic_vehicles=sim.traffic_vehicles, bev=sim.bev())
              for _ in range(ppo_envs)]
    sync = _rl_rate(GymVectorVecEnv(SyncVectorEnv(single, autoreset_mode="SameStep")),
                    lambda env: make_ppo(env, ppo, width=16, hidden=128), warmup, ppo_timesteps,
                    "bench train: ppo sync vector")
    # SAC: the warm-up fills the replay buffer past learning_starts, so every timed step has its gradient step
    sac = SacConfig(timesteps=sac_timesteps, num_envs=sac_envs, learning_starts=sac_envs, batch_size=128)
    sac_native = _rl_rate(make_vec_env(sim, sac_envs), lambda env: make_sac(env, sac, width=16, hidden=128),
                          4 * sac_envs, sac_timesteps, "bench train: sac native")
    return TrainBenchResult(device=device, threads=threads, bev_shape=shape, samples=samples,
                            bc_samples_per_s=rates, ppo_num_envs=ppo_envs, ppo_timesteps=ppo_timesteps,
                            ppo_env_steps_per_s_native=native, ppo_env_steps_per_s_sync_vector=sync,
                            sac_num_envs=sac_envs, sac_timesteps=sac_timesteps, sac_env_steps_per_s_native=sac_native)


def _rl_rate(env: Any, make: Callable[[Any], Any], warmup: int, timesteps: int, what: str) -> float:
    """Environment steps/s of ``make(env)`` learning ``timesteps`` steps, after ``warmup`` steps (both shown as
    progress: ``what``)."""
    from autoloop.training.rl import learn_steps

    env.seed(0)
    model = make(env)
    learn_steps(model, warmup, what=what)
    start = time.perf_counter()
    learn_steps(model, timesteps, what=what, reset_num_timesteps=False)
    rate = round(float(timesteps) / (time.perf_counter() - start), 1)
    env.close()
    return rate
