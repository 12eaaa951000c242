"""``autoloop bench scale``: an evaluation suite driven by the privileged expert in this process, then sharded over
local Ray clusters with 1, 2, ... worker processes; routes per second, what each shard costs on Ray, and whether
every route's numbers came out the same. The runs show as progress (``bench scale``), each evaluation as its own."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoloop.compute import IN_PROCESS, Compute, connect, local_cluster
from autoloop.config import EvaluateConfig, SimConfig
from autoloop.episodes import EpisodeStore
from autoloop.evaluation import EvaluationResult, checkpoint_path, run_evaluation
from autoloop.progress import Progress
from autoloop.rollout import expert_driver
from sim.scenarios.suites import Suite, build_suite


@dataclass(frozen=True)
class ScaleResult:
    """One way of running the suite.

    :param where: ``in-process`` or ``ray``.
    :param workers: Ray worker processes (0: in-process).
    :param routes_per_s: routes driven per second of wall time, the first shard's start-up included.
    :param overhead_per_shard_s: on Ray, the worker-seconds a shard costs beyond the in-process drive of its routes:
        ``(wall_s * workers - in-process wall_s) / shards`` (start-up, shipping the suite and the episodes back,
        and the cores' sharing with the caller, which writes the episodes).
    :param empty_shard_s: on Ray, the round trip of a shard that does nothing (scheduling alone), per shard.
    :param same_results: every route's numbers equal the in-process run's.
    """

    where: str
    workers: int
    routes: int
    shards: int
    wall_s: float
    routes_per_s: float
    overhead_per_shard_s: float | None
    empty_shard_s: float | None
    same_results: bool


def bench_scale(*, suite_name: str = "eval", workers: Sequence[int] = (1, 2), shard_scenarios: int | None = None,
                routes: int | None = None) -> list[ScaleResult]:
    """Drive ``suite_name`` (its first ``routes``) with the expert in-process and on a local Ray cluster of each
    size in ``workers``."""
    sim = SimConfig()
    suite = build_suite(suite_name)
    if routes is not None:
        suite = Suite(suite.name, suite.version, suite.scenarios[:routes])
    settings = EvaluateConfig(suite=suite.name, routes=None)  # (the suite is cut here)

    def shards(compute: Compute) -> int:
        return sum(len(compute.shards(len(indices), sim.batch_size)) for indices in suite.by_map().values())

    batches = shards(Compute(shard_scenarios=shard_scenarios))
    with (tempfile.TemporaryDirectory(prefix="autoloop-bench-scale-") as temporary,
          Progress("bench scale", 1 + len(workers), "runs") as progress):
        root = Path(temporary)
        started = time.perf_counter()
        reference = _evaluate(suite, sim, settings, root / "in-process", IN_PROCESS)
        base_s = time.perf_counter() - started
        results = [ScaleResult("in-process", 0, len(suite.scenarios), shards(IN_PROCESS), base_s,
                               len(suite.scenarios) / base_s, None, None, True)]
        progress.advance()
        for count in workers:
            with local_cluster(count, folder=root) as address:
                compute = Compute(ray_address=address, shard_scenarios=shard_scenarios)
                started = time.perf_counter()
                list(compute.map(_nothing, range(batches)))
                empty_s = (time.perf_counter() - started) / batches
                started = time.perf_counter()
                result = _evaluate(suite, sim, settings, root / f"ray-{count}", compute)
                wall_s = time.perf_counter() - started
                connect(address).shutdown()
            results.append(ScaleResult("ray", count, len(suite.scenarios), batches, wall_s,
                                       len(suite.scenarios) / wall_s, (wall_s * count - base_s) / batches, empty_s,
                                       _routes(result) == _routes(reference)))
            progress.advance()
    return results


def _nothing(item: Any) -> Any:
    return item


def _evaluate(suite: Suite, sim: SimConfig, settings: EvaluateConfig, root: Path, compute: Compute
              ) -> EvaluationResult:
    return run_evaluation(suite, expert_driver, policy_name="expert", identity="expert", sim=sim, settings=settings,
                          store=EpisodeStore(root / "episodes"),
                          checkpoint=checkpoint_path(root / "evaluations", identity="expert", suite=suite, sim=sim,
                                                     scorer=settings.scorer), compute=compute)


def _routes(result: EvaluationResult) -> list[dict[str, Any]]:
    return [{**route.to_json(), "episode_id": None} for route in result.routes]
