"""Run a suite closed-loop, batched on the embedded simulator, with a checkpoint that makes it resumable.

Like the CARLA Leaderboard's ``--resume``: each batch's route results are appended to a JSON-lines checkpoint
(flushed and fsynced) as soon as the batch ends, after its episodes are in the episode store. A later run with
the same checkpoint reads what is there, deletes the evaluation's episodes no checkpointed route names (a kill
between a batch's episodes and its checkpoint lines leaves them) and drives only the routes still missing, so an
evaluation killed after any batch finishes with the numbers an uninterrupted run gives, one episode per route (the
simulator is deterministic for a seed, and a route drives the same in any batch: :mod:`autoloop.rollout.runner`).
Routes whose batch crashed the simulator are driven again on resume; an agent that crashed stays crashed (it would
again).

The checkpoint's first line names what is evaluated (driver identity, suite hash, simulator settings, scorer);
a checkpoint of anything else is refused rather than mixed in.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from autoloop.compute import IN_PROCESS, Compute
from autoloop.config import AutoloopConfig, EvaluateConfig, SimConfig
from autoloop.episodes import Episode, EpisodeStore
from autoloop.evaluation.results import (
    AGENT_CRASHED,
    AGENT_SETUP_FAILED,
    ROUTE_STATUSES,
    SIMULATION_CRASHED,
    EvaluationResult,
    InfractionEvent,
    RouteResult,
    aggregate,
    record_json,
)
from autoloop.locks import exclusive
from autoloop.progress import Progress
from autoloop.rollout import DriverFactory, EpisodeRecorder, drive_shards, store_file_maps
from policies.base import Planner, Policy
from sim.metrics import RouteRecord, comfort, score_route
from sim.scenarios.suites import Suite, build_suite, eval_slice
from sim.scene.observation import Observation
from sim.scene.source import SceneSource

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "autoloop-evaluation-1"


class AgentSetupError(RuntimeError):
    """The driver could not be built for a batch's world."""


class AgentCrashError(RuntimeError):
    """The driver raised while acting."""


def evaluation_suite(config: AutoloopConfig) -> Suite:
    """The suite ``evaluate.suite`` names (its slice of ``evaluate.routes`` routes when set), else the held-out
    scenarios of the config (seeds ``evaluate.seed .. evaluate.seed + evaluate.episodes - 1`` on ``sim.map_name``)
    as an unnamed suite ``heldout``."""
    if config.evaluate.suite is not None:
        if config.evaluate.routes is not None:
            return _eval_slice(config.evaluate.routes)
        return _named_suite(config.evaluate.suite)
    first = config.evaluate.seed
    seeds = range(first, first + config.evaluate.episodes)
    return Suite("heldout", 0, tuple(config.sim.sample(seed) for seed in seeds))


@functools.cache
def _named_suite(name: str) -> Suite:
    """Suites are generated deterministically, and some take a while: once per process (the candidate's and the
    champion's evaluations share it)."""
    return build_suite(name)


@functools.cache
def _eval_slice(routes: int) -> Suite:
    return eval_slice(routes)


def checkpoint_path(folder: Path, *, identity: str, suite: Suite, sim: SimConfig, scorer: str) -> Path:
    """Where the evaluation of ``identity`` on ``suite`` keeps its checkpoint: one file per (driver, suite,
    simulator settings, scorer), so a rerun resumes it (or reuses it when complete)."""
    return folder / f"{suite.name}-{_key(identity, suite, sim, scorer)}.jsonl"


def run_evaluation(suite: Suite, driver: DriverFactory, *, policy_name: str, identity: str, sim: SimConfig,
                   settings: EvaluateConfig, store: EpisodeStore, checkpoint: Path,
                   tags: Mapping[str, str] | None = None, compute: Compute = IN_PROCESS,
                   on_batch: Callable[[int, int], None] | None = None) -> EvaluationResult:
    """Drive every route of ``suite`` not yet in ``checkpoint`` and aggregate all of them.

    :param driver: builds the driver for a batch's world.
    :param policy_name: stored with each episode and the result (e.g. ``expert`` or a model URI).
    :param identity: what makes two drivers the same for resuming (a logged model id, a file hash, ``expert``).
    :param sim: BEV and batch size (each batch runs on one map with the slots its suite needs).
    :param tags: stored with each episode, besides ``purpose=eval``, ``suite`` and ``suite_hash``.
    :param compute: where the shards run (this process, or a Ray cluster); each shard is a batch of one map's routes,
        checkpointed when it comes back.
    :param on_batch: called with ``(routes done, routes planned)`` after each shard is checkpointed.
    :raises ValueError: when ``checkpoint`` belongs to another evaluation.
    """
    header = {"format": CHECKPOINT_FORMAT, "identity": identity, "suite": suite.name,
              "suite_hash": suite.content_hash, "routes": len(suite.scenarios), "scorer": settings.scorer,
              "key": _key(identity, suite, sim, settings.scorer)}
    # one writer per checkpoint: a second evaluation of the same driver (two cycles comparing with one champion)
    # waits, then finds the routes done
    with exclusive(checkpoint.with_suffix(".lock")):
        return _run(suite, driver, header=header, policy_name=policy_name, sim=sim, settings=settings, store=store,
                    checkpoint=checkpoint, tags=tags, compute=compute, on_batch=on_batch)


def _run(suite: Suite, driver: DriverFactory, *, header: dict[str, Any], policy_name: str, sim: SimConfig,
         settings: EvaluateConfig, store: EpisodeStore, checkpoint: Path, tags: Mapping[str, str] | None,
         compute: Compute, on_batch: Callable[[int, int], None] | None) -> EvaluationResult:
    done = read_checkpoint(checkpoint, header)
    if done:
        log.info("resuming %s: %d of %d routes already evaluated", checkpoint, len(done), len(suite.scenarios))
    episode_tags = {**(tags or {}), "purpose": "eval", "suite": suite.name, "suite_hash": suite.content_hash,
                    "evaluation": header["key"]}
    _drop_unnamed_episodes(store, header["key"], done)
    missing = [index for index in range(len(suite.scenarios)) if index not in done]
    store_file_maps(store, [suite.scenarios[i].map_name for i in missing])  # episodes read back where files are not
    slots, own = suite.world_config(), sim.world_config()
    world = dataclasses.replace(own, max_vehicles=max(own.max_vehicles, slots.max_vehicles),
                                max_pedestrians=max(own.max_pedestrians, slots.max_pedestrians),
                                max_statics=max(own.max_statics, slots.max_statics),
                                track_points=max(own.track_points, slots.track_points))
    shards = drive_shards([suite.scenarios[i] for i in missing], driver=_GuardedDriver(driver),
                          recorder=EpisodeRecorder(policy_name=policy_name, tags=episode_tags), world=world,
                          batch_size=sim.batch_size, bev=sim.bev(), compute=compute, on_error=_failure)
    progress = Progress(f"evaluate {suite.name}", len(suite.scenarios), "routes", done=len(done))
    with progress:
        _checkpoint_shards(shards, missing, suite, done, store=store, checkpoint=checkpoint, scorer=settings.scorer,
                           progress=progress, on_batch=on_batch)
    return aggregate(list(done.values()), policy=policy_name, suite=suite.name, suite_hash=suite.content_hash,
                     scorer=settings.scorer, resamples=settings.bootstrap_resamples,
                     confidence=settings.confidence, seed=settings.bootstrap_seed, checkpoint=str(checkpoint),
                     episode_tags=episode_tags)


def _checkpoint_shards(shards: Iterator[tuple[list[int], list[Any]]], missing: list[int], suite: Suite,
                       done: dict[int, RouteResult], *, store: EpisodeStore, checkpoint: Path, scorer: str,
                       progress: Progress, on_batch: Callable[[int, int], None] | None) -> None:
    """Store each shard's episodes, then checkpoint its routes, as it finishes."""
    for positions, results in shards:
        indices = [missing[position] for position in positions]
        fresh = []
        for index, result in zip(indices, results, strict=True):
            if isinstance(result, _Failure):
                log.warning("route %d: %s: %s", index, result.status, result.error)
                fresh.append(_failed(suite, index, result.status, result.error))
            else:
                episode, record = result
                fresh.append(_route_result(suite, index, episode, record, scorer))
        # episodes first: a route in the checkpoint always has its episode (a kill in between leaves an
        # episode that no result names: the resume deletes it, and the route runs again)
        store.write_many([result[0] for result in results if not isinstance(result, _Failure)])
        append_routes(checkpoint, fresh)
        done.update({result.index: result for result in fresh})
        progress.update(len(done))
        if on_batch is not None:
            on_batch(len(done), len(suite.scenarios))


def _drop_unnamed_episodes(store: EpisodeStore, key: str, done: Mapping[int, RouteResult]) -> None:
    """Delete this evaluation's episodes that no checkpointed route names: a batch killed between writing its
    episodes and checkpointing its routes left them, and those routes run again (one episode per route)."""
    named = {result.episode_id for result in done.values()}
    for episode_id, metadata in store.metadata("sim").items():
        if (metadata.get("tags") or {}).get("evaluation") == key and episode_id not in named:
            log.info("deleting episode %s: its route was not checkpointed and runs again", episode_id)
            store.delete(episode_id)


@dataclass(frozen=True)
class _Failure:
    """A batch that did not finish: the status of each of its routes and why."""

    status: str
    error: str


def _failure(error: Exception) -> _Failure:
    """The driver's failures (building it, acting) told apart from the simulator's (anything else it raised)."""
    if isinstance(error, AgentSetupError):
        return _Failure(AGENT_SETUP_FAILED, repr(error.__cause__ or error))
    if isinstance(error, AgentCrashError):
        return _Failure(AGENT_CRASHED, repr(error.__cause__ or error))
    return _Failure(SIMULATION_CRASHED, repr(error))


def _route_result(suite: Suite, index: int, episode: Episode, record: RouteRecord, scorer: str) -> RouteResult:
    score = score_route(record, scorer=scorer)
    events = episode.events or {}
    infractions = tuple(
        InfractionEvent(kind=str(kind), time_s=round(float(t), 3), x_m=round(float(x), 2), y_m=round(float(y), 2))
        for kind, t, x, y in zip(events.get("kind", ()), events.get("time_s", ()), events.get("x_m", ()),
                                 events.get("y_m", ()), strict=True))
    speed, yaw = episode.steps["speed_mps"], episode.steps["yaw_rad"]
    smooth = comfort(speed, yaw, float(episode.metadata["dt_s"])) if len(speed) >= 3 else 1.0
    scenario = suite.scenarios[index]
    return RouteResult(
        index=index, scenario_seed=scenario.traffic_seed, scenario_type=suite.event_type(index),
        town=scenario.map_name, episode_id=episode.episode_id, status=ROUTE_STATUSES[record.status],
        driving_score=score.driving_score, route_completion=score.route_completion,
        infraction_penalty=score.infraction_penalty, driven_m=round(record.driven_m, 3),
        route_length_m=round(record.route_length_m, 3), comfort=round(smooth, 4), infractions=infractions,
        record=record_json(record))


def _failed(suite: Suite, index: int, status: str, error: str) -> RouteResult:
    scenario = suite.scenarios[index]
    return RouteResult(index=index, scenario_seed=scenario.traffic_seed, scenario_type=suite.event_type(index),
                       town=scenario.map_name, episode_id=None, status=status, driving_score=0.0,
                       route_completion=0.0, infraction_penalty=0.0, error=error)


class _GuardedPolicy:
    """A policy whose failures are told apart from the simulator's."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    def act(self, observation: Observation) -> NDArray[np.float32]:
        try:
            return self._policy.act(observation)
        except Exception as error:
            raise AgentCrashError(f"the driver raised {error!r}") from error

    def reset(self, done: NDArray[np.bool_]) -> None:
        try:
            self._policy.reset(done)
        except Exception as error:
            raise AgentCrashError(f"the driver's reset raised {error!r}") from error


class _GuardedPlanner(_GuardedPolicy):
    """A guarded :class:`~policies.base.Planner`: its plan is recorded with each step."""

    def __init__(self, policy: Policy, planner: Planner) -> None:
        super().__init__(policy)
        self._planner = planner

    @property
    def plan_xy(self) -> NDArray[np.float64]:
        return self._planner.plan_xy


class _GuardedDriver:
    """A driver factory whose failures, and its drivers', are told apart from the simulator's."""

    def __init__(self, driver: DriverFactory) -> None:
        self._driver = driver

    def __call__(self, world: SceneSource) -> Policy:
        try:
            policy = self._driver(world)
        except Exception as error:
            raise AgentSetupError(f"building the driver raised {error!r}") from error
        return _GuardedPlanner(policy, policy) if isinstance(policy, Planner) else _GuardedPolicy(policy)


def _key(identity: str, suite: Suite, sim: SimConfig, scorer: str) -> str:
    payload = json.dumps({"identity": identity, "suite": suite.content_hash, "sim": sim.model_dump(mode="json"),
                          "scorer": scorer}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def read_checkpoint(path: Path, header: dict[str, Any]) -> dict[int, RouteResult]:
    """The routes already evaluated (simulator crashes left out: they run again); writes the header to a new
    file. A last line cut short by a kill is dropped."""
    if not path.exists() or path.stat().st_size == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_lines(path, [header], mode="w")
        return {}
    lines = path.read_bytes().split(b"\n")
    good = []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            good.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines) - 1 and any(rest.strip() for rest in lines[number + 1:]):
                raise ValueError(f"evaluation checkpoint {path}: line {number + 1} is not JSON; delete the file "
                                 "to evaluate from scratch") from None
            log.warning("%s: dropping a last line cut short", path)
            _write_lines(path, good, mode="w")
    found = good[0] if good else {}
    if found != header:
        raise ValueError(f"evaluation checkpoint {path} belongs to another evaluation (its header {found} is not "
                         f"{header}); delete it or use another home")
    routes = [RouteResult.from_json(line["route"]) for line in good[1:]]
    return {route.index: route for route in routes if route.status != SIMULATION_CRASHED}


def append_routes(path: Path, routes: Sequence[RouteResult]) -> None:
    """Append route results to a checkpoint :func:`read_checkpoint` opened (fsynced)."""
    _write_lines(path, [{"route": route.to_json()} for route in routes], mode="a")


def _write_lines(path: Path, lines: Sequence[Mapping[str, Any]], *, mode: str) -> None:
    with path.open(mode) as file:
        for line in lines:
            file.write(json.dumps(line, sort_keys=True) + "\n")
        file.flush()
        os.fsync(file.fileno())
