"""Rollouts sharded over a real local Ray cluster (a head on 127.0.0.1 and a worker node, started here) give the
numbers of the in-process run, bit for bit, also when a worker process is killed in the middle of a shard."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autoloop.compute import IN_PROCESS, Compute, local_cluster
from autoloop.config import AutoloopConfig, load_config
from autoloop.episodes import EpisodeStore
from autoloop.evaluation import EvaluationResult, checkpoint_path, run_evaluation
from autoloop.network import Unreachable
from autoloop.rollout import RolloutOptions, expert_driver, rollout
from sim.scenarios import sample_scenario
from sim.scenarios.suites import build_suite
from tests.servers import free_port


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A head on 127.0.0.1 and a worker node with two worker processes."""
    import ray

    with local_cluster(2, folder=tmp_path_factory.mktemp("ray")) as address:
        yield address
        ray.shutdown()


@pytest.fixture(scope="module")
def config() -> AutoloopConfig:
    return load_config(profile="quick", overrides={"evaluate": {"suite": "smoke"}})


def evaluate(config: AutoloopConfig, root: Path, compute: Compute) -> EvaluationResult:
    suite = build_suite("smoke")
    return run_evaluation(suite, expert_driver, policy_name="expert", identity="expert", sim=config.sim,
                          settings=config.evaluate, store=EpisodeStore(root / "episodes"),
                          checkpoint=checkpoint_path(root / "evaluations", identity="expert", suite=suite,
                                                     sim=config.sim, scorer=config.evaluate.scorer),
                          compute=compute)


def routes(result: EvaluationResult) -> list[dict[str, Any]]:
    """Every per-route number and record, without the (random) episode ids."""
    return [{**route.to_json(), "episode_id": None} for route in result.routes]


@pytest.fixture(scope="module")
def in_process(config: AutoloopConfig, tmp_path_factory: pytest.TempPathFactory) -> EvaluationResult:
    return evaluate(config, tmp_path_factory.mktemp("in-process"), IN_PROCESS)


def test_an_evaluation_on_ray_equals_the_in_process_one(cluster: str, config: AutoloopConfig,
                                                        in_process: EvaluationResult, tmp_path: Path) -> None:
    # shards of 2 routes over two worker processes, where in-process drove all 5 as one batch
    on_ray = evaluate(config, tmp_path, Compute(ray_address=cluster, shard_scenarios=2))
    assert routes(on_ray) == routes(in_process)
    assert on_ray.metrics() == in_process.metrics()
    assert len(EpisodeStore(tmp_path / "episodes").episode_ids()) == len(on_ray.routes)


def test_a_worker_killed_mid_shard_loses_nothing(cluster: str, config: AutoloopConfig,
                                                 in_process: EvaluationResult, tmp_path: Path) -> None:
    killed: list[int] = []

    def kill_the_first_shard() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
            for line in listing.splitlines():
                pid, _, title = line.strip().partition(" ")
                if title.startswith("ray::autoloop-shard-"):
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_first_shard)
    killer.start()
    on_ray = evaluate(config, tmp_path, Compute(ray_address=cluster, shard_scenarios=2))
    killer.join()
    assert killed, "no shard was seen running"
    assert routes(on_ray) == routes(in_process)
    assert all(route.status == "Completed" or route.episode_id for route in on_ray.routes)


def test_collection_rollouts_on_ray_equal_the_in_process_ones(cluster: str) -> None:
    from autoloop.config import SimConfig

    scenarios = [sample_scenario(seed, traffic_vehicles=4) for seed in (3, 7, 12)]
    sim = SimConfig(traffic_vehicles=4, batch_size=3)
    kwargs: dict[str, Any] = {"sim": sim, "driver": expert_driver, "policy_name": "expert",
                              "tags": {"purpose": "collect"},
                              "options": RolloutOptions(labels=True, action_noise=0.2, noise_seed=5,
                                                        start_perturbation=(0.5, 0.1))}
    here = rollout(scenarios, **kwargs)
    there = rollout(scenarios, **kwargs, compute=Compute(ray_address=cluster, shard_scenarios=1))
    for (a, record_a), (b, record_b) in zip(here, there, strict=True):
        assert record_a == record_b and a.metadata["start_perturbation"] == b.metadata["start_perturbation"]
        for name in a.steps:
            np.testing.assert_array_equal(a.steps[name], b.steps[name])


def test_a_ray_address_that_does_not_answer_is_an_error_within_seconds() -> None:
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(Unreachable, match=f"Ray cluster .* at {address} does not answer"):
        Compute(ray_address=address).check()
    with pytest.raises(Unreachable, match=address):
        list(Compute(ray_address=address).map(str, [1]))
