"""Closed-loop rollouts of a driver over a list of scenarios, batched on the embedded simulator.

Collection and evaluation both run here: one scenario per sub-environment of a ``DrivingVectorEnv`` without
autoreset, until every route has ended; each route becomes an :class:`~autoloop.episodes.Episode`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
from numpy.typing import NDArray

from autoloop.compute import IN_PROCESS, Compute
from autoloop.config import SimConfig
from autoloop.episodes import Episode, EpisodeStore, new_episode_id
from policies.base import Policy
from policies.expert import ExpertDriver
from sim.embedded.env import DrivingVectorEnv
from sim.embedded.world import ActorKind, Event, World
from sim.metrics import Infraction, RouteRecord, score_route
from sim.scenarios import Scenario

log = logging.getLogger(__name__)

#: Correlation of the exploration noise from one step to the next (about 1 s at 20 Hz).
NOISE_CORRELATION = 0.95
#: A learner counts as standing still below this speed (m/s) ...
TAKEOVER_STILL_MPS = 0.1
#: ... while the expert would drive on: its planned speed 0.5 s ahead is above this (m/s).
TAKEOVER_GO_MPS = 1.0
#: The expert, once it took over, drives until the ego is this fast (m/s) or it would stop itself.
TAKEOVER_UNTIL_MPS = 3.0

DriverFactory = Callable[[World], Policy]


def expert_driver(world: World) -> Policy:
    return ExpertDriver(world)


class PolicyDriver:
    """A driver that needs no world (a learned one), loaded the first time a batch asks for it.

    Pickled (to drive shards on a Ray worker), it carries the loaded policy rather than the way to load it: the
    caller loads it once, and the workers need no access to where it came from.
    """

    def __init__(self, load: Callable[[], Policy]) -> None:
        self._load: Callable[[], Policy] | None = load
        self._policy: Policy | None = None

    @classmethod
    def of(cls, policy: Policy) -> PolicyDriver:
        driver = cls(lambda: policy)
        driver._policy = policy
        return driver

    def __call__(self, world: World) -> Policy:
        return self.policy()

    def policy(self) -> Policy:
        if self._policy is None:
            assert self._load is not None
            self._policy = self._load()
        return self._policy

    def __getstate__(self) -> dict[str, Any]:
        return {"_load": None, "_policy": self.policy()}


def rollout(
    scenarios: Sequence[Scenario],
    *,
    sim: SimConfig,
    driver: DriverFactory,
    policy_name: str,
    tags: dict[str, str],
    record_observations: bool = False,
    action_noise: float = 0.0,
    noise_seed: int = 0,
    start_perturbation: tuple[float, float] = (0.0, 0.0),
    takeover_s: float = 0.0,
    compute: Compute = IN_PROCESS,
) -> list[tuple[Episode, RouteRecord]]:
    """Drive every scenario once and return its episode and Leaderboard record (in scenario order).

    :param driver: builds the driver for a batch's world (the expert needs it; learned drivers ignore it).
    :param policy_name: stored with each episode (e.g. ``expert`` or a model URI).
    :param tags: stored with each episode.
    :param record_observations: store observations and expert labels for training: the expert's action
        (``label``) and intended trajectory (``label_plan_xy``, ``label_plan_speed``, see
        :attr:`policies.expert.ExpertDriver.plan_xy`).
    :param action_noise: standard deviation of correlated noise added to the executed actions.
    :param noise_seed: seed of that noise (and of the start perturbations); the ``i``-th scenario draws from its own
        generator, seeded ``(noise_seed, i)``, so what it gets does not depend on its shard or batch.
    :param start_perturbation: ``(lateral_m, yaw_rad)``: each ego starts shifted sideways and turned by amounts
        drawn uniformly from ``[-lateral_m, lateral_m]`` and ``[-yaw_rad, yaw_rad]``
        (:meth:`~sim.embedded.world.World.perturb_ego`); the episode's metadata records them.
    :param takeover_s: with a learner driving and the expert labelling (``record_observations``): once the learner
        has stood still this long while the expert would drive on, the expert drives that ego until it is under
        way (``TAKEOVER_UNTIL_MPS``), as in HG-DAgger's interventions; a learner stuck before a stop would
        otherwise add the same labelled state for minutes. The ``expert_drives`` column marks those steps and the
        metadata's ``takeovers`` counts them. 0 (the default): the expert never takes over.
    :param compute: where the shards run (:mod:`autoloop.compute`: this process, or a Ray cluster).
    """
    drive = functools.partial(_rollout_shard, scenarios=list(scenarios), sim=sim, driver=driver,
                              policy_name=policy_name, tags=tags, record_observations=record_observations,
                              action_noise=action_noise, noise_seed=noise_seed,
                              start_perturbation=start_perturbation, takeover_s=takeover_s)
    shards = compute.shards(len(scenarios), sim.batch_size)
    done: dict[int, list[tuple[Episode, RouteRecord]]] = {}
    for index, results in compute.map(drive, shards):
        done[index] = results
        log.info("rolled out %d/%d scenarios", sum(len(shard) for shard in done.values()), len(scenarios))
    return [result for index in range(len(shards)) for result in done[index]]


def _rollout_shard(shard: range, *, scenarios: list[Scenario], sim: SimConfig, driver: DriverFactory,
                   policy_name: str, tags: dict[str, str], record_observations: bool, action_noise: float,
                   noise_seed: int, start_perturbation: tuple[float, float], takeover_s: float,
                   ) -> list[tuple[Episode, RouteRecord]]:
    """The scenarios ``shard`` indexes, driven in batches of ``sim.batch_size``."""
    results: list[tuple[Episode, RouteRecord]] = []
    for start in range(shard.start, shard.stop, sim.batch_size):
        indices = range(start, min(start + sim.batch_size, shard.stop))
        rngs = [np.random.default_rng([noise_seed, index]) for index in indices]
        results += _rollout_batch([scenarios[i] for i in indices], sim=sim, driver=driver, policy_name=policy_name,
                                  tags=tags, record_observations=record_observations, action_noise=action_noise,
                                  rngs=rngs, start_perturbation=start_perturbation, takeover_s=takeover_s)
    return results


def _rollout_batch(batch: list[Scenario], *, sim: SimConfig, driver: DriverFactory, policy_name: str,
                   tags: dict[str, str], record_observations: bool, action_noise: float,
                   rngs: list[np.random.Generator], start_perturbation: tuple[float, float], takeover_s: float,
                   ) -> list[tuple[Episode, RouteRecord]]:
    env = DrivingVectorEnv(len(batch), map_name=sim.map_name, traffic_vehicles=sim.traffic_vehicles,
                           pedestrians=sim.pedestrians, autoreset=False, bev=sim.bev())
    world = env.world
    obs, _ = env.reset(options={"scenarios": batch})
    lateral_m, yaw_rad = start_perturbation
    perturbations = np.zeros((len(batch), 2))
    if lateral_m or yaw_rad:
        perturbations = np.stack([rng.uniform(-1.0, 1.0, 2) for rng in rngs]) * np.array([lateral_m, yaw_rad])
        parked = world.state.curb_until > -np.inf  # (a ParkingExit start: it already starts off its lane)
        perturbations[parked] = 0.0
        for index in np.flatnonzero(~parked):
            world.perturb_ego(int(index), float(perturbations[index, 0]), float(perturbations[index, 1]))
        obs = env.observer.observe()
    policy = driver(world)
    labeller = None
    if record_observations:
        labeller = policy if isinstance(policy, ExpertDriver) else ExpertDriver(world)
    noise = np.zeros((len(batch), 2))
    takeover = takeover_s > 0.0 and labeller is not None and labeller is not policy
    stuck_s, expert_drives = np.zeros(len(batch)), np.zeros(len(batch), dtype=bool)
    takeovers = np.zeros(len(batch), dtype=np.intp)
    history: dict[str, list[NDArray[Any]]] = {}
    running_history = []
    actor_history: list[dict[str, NDArray[Any]]] = []
    bev_shape = tuple(int(n) for n in obs["bev"].shape[1:])
    while world.running.any():
        running = world.running.copy()
        action = policy.act(obs)
        label = None
        if labeller is not None:
            label = action if labeller is policy else labeller.act(obs)
        if takeover:
            assert labeller is not None and label is not None
            speed = world.ego.speed_mps
            wants_to_go = labeller.plan_speed[:, 0] > TAKEOVER_GO_MPS
            stuck_s = np.where((speed < TAKEOVER_STILL_MPS) & wants_to_go & ~expert_drives,
                               stuck_s + world.config.dt_s, 0.0)
            starts = stuck_s >= takeover_s
            takeovers += starts
            expert_drives = (expert_drives | starts) & (speed < TAKEOVER_UNTIL_MPS) & wants_to_go
            action = np.where(expert_drives[:, None], label, action)
        if action_noise:
            innovation = np.stack([rng.standard_normal(2) for rng in rngs])
            noise = NOISE_CORRELATION * noise + action_noise * np.sqrt(1 - NOISE_CORRELATION**2) * innovation
        executed = np.clip(action + noise, -1.0, 1.0).astype(np.float32)
        columns: dict[str, NDArray[Any]] = {
            "time_s": world.time_s.astype(np.float32),
            "x_m": world.ego.x_m.copy(),
            "y_m": world.ego.y_m.copy(),
            "yaw_rad": world.ego.yaw_rad.astype(np.float32),
            "speed_mps": world.ego.speed_mps.astype(np.float32),
            "steer_rad": world.ego.steer_rad.astype(np.float32),
            "accel_mps2": world.ego_accel_mps2.astype(np.float32),
            "route_progress_m": world.progress_s.astype(np.float32),
            "action": executed,
        }
        if world.lights.shape[1]:
            columns["light_states"] = world.lights.astype(np.float32)  # the viewer draws the lights in their state
        if takeover:
            columns["expert_drives"] = expert_drives.copy()
        if labeller is not None and label is not None:
            columns["label"] = label
            # the expert's intended trajectory from here: trajectory labels for states a learner visited
            columns["label_plan_xy"] = labeller.plan_xy.reshape(len(batch), -1).astype(np.float32)
            columns["label_plan_speed"] = labeller.plan_speed.astype(np.float32)
            columns["obs_state"] = obs["state"]
            columns["obs_bev"] = np.packbits(np.asarray(obs["bev"], dtype=np.uint8).reshape(len(batch), -1), axis=1)
        for name, values in columns.items():
            history.setdefault(name, []).append(values)
        running_history.append(running)
        actor_history.append(actor_snapshot(world))
        obs, *_ = env.step(executed)
        policy.reset(~world.running)
    mask = np.stack(running_history)  # (T, n)
    stacked = {name: np.stack(values) for name, values in history.items()}
    results = []
    for env_index, scenario in enumerate(batch):
        rows = mask[:, env_index]
        steps = {name: values[rows, env_index] for name, values in stacked.items()}
        steps["step"] = np.arange(int(rows.sum()), dtype=np.int32)
        record = world.route_record(env_index)
        score = score_route(record)
        metadata = {
            "map_name": scenario.map_name,
            "scenario": scenario.model_dump(mode="json"),
            "policy": policy_name,
            "tags": tags,
            "dt_s": world.config.dt_s,
            "bev_shape": list(bev_shape),
            "record": {**asdict(record), "infractions": {k.value: v for k, v in record.infractions.items()}},
            "score": asdict(score),
        }
        if takeover:
            metadata["takeovers"] = int(takeovers[env_index])
        if lateral_m or yaw_rad:
            metadata["start_perturbation"] = {"lateral_m": float(perturbations[env_index, 0]),
                                              "yaw_rad": float(perturbations[env_index, 1])}
        # ids sort by scenario seed, so snapshots (which order episodes by id) are reproducible
        episode_id = new_episode_id(f"{tags.get('purpose', 'episode')}-{scenario.traffic_seed:08d}")
        events = [event for event in world.events if event.env == env_index and event.kind in _INFRACTIONS]
        episode = Episode(episode_id, "sim", steps, metadata, events=_events_table(events),
                          actors=actor_table(actor_history, env_index, np.flatnonzero(rows)))
        results.append((episode, record))
    return results


_INFRACTIONS = frozenset(kind.value for kind in Infraction)
_KINDS = {ActorKind.VEHICLE: "vehicle", ActorKind.PEDESTRIAN: "pedestrian", ActorKind.STATIC: "static"}


def store_file_maps(store: EpisodeStore, map_names: Sequence[str]) -> None:
    """Keep the file-based maps (``opendrive:…``, ``av2:…``) that episodes ran on in the store, so that the episodes
    read back (replay viewer, mining) where the files are not; procedural maps are rebuilt from their names."""
    from sim.maps import get_map

    for name in sorted(set(map_names)):
        if ":" in name:
            store.put_map(get_map(name))


def actor_snapshot(world: World) -> dict[str, NDArray[Any]]:
    """Every actor slot of every scenario now (copies), for :func:`actor_table`."""
    st = world.state
    return {"valid": st.act_valid.copy(), "kind": st.act_kind.copy(), "x_m": st.act_x.copy(), "y_m": st.act_y.copy(),
            "yaw_rad": st.act_yaw.copy(), "length_m": st.act_len.copy(), "width_m": st.act_wid.copy(),
            "speed_mps": st.act_v.copy()}


def actor_table(snapshots: Sequence[dict[str, NDArray[Any]]], env: int,
                frames: Sequence[int] | NDArray[np.intp]) -> dict[str, NDArray[Any]]:
    """The actors table of scenario ``env`` (the store's columns): the actors present in each of ``frames`` (indices
    into ``snapshots``), one row per (step, actor), ``step`` counting the frames from 0; actor ids are the slots
    (``a<slot>``)."""
    parts: dict[str, list[NDArray[Any]]] = {name: [] for name in (
        "step", "actor_id", "kind", "x_m", "y_m", "yaw_rad", "length_m", "width_m", "speed_mps")}
    for step, frame in enumerate(frames):
        snapshot = snapshots[int(frame)]
        present = np.flatnonzero(snapshot["valid"][env])
        parts["step"].append(np.full(len(present), step, dtype=np.int32))
        parts["actor_id"].append(np.array([f"a{n}" for n in present], dtype=object))
        parts["kind"].append(np.array([_KINDS.get(int(snapshot["kind"][env, n]), "other") for n in present],
                                      dtype=object))
        for name in ("x_m", "y_m"):
            parts[name].append(snapshot[name][env, present].astype(np.float64))
        for name in ("yaw_rad", "length_m", "width_m", "speed_mps"):
            parts[name].append(snapshot[name][env, present].astype(np.float32))
    dtypes = {"step": np.int32, "actor_id": object, "kind": object, "x_m": np.float64, "y_m": np.float64}
    table = {name: np.concatenate(values) if values else np.zeros(0, dtype=dtypes.get(name, np.float32))
             for name, values in parts.items()}
    table["observed"] = np.ones(len(table["step"]), dtype=bool)
    return table


def _events_table(events: list[Event]) -> dict[str, NDArray[Any]]:
    """The episode's infractions as its events table (the route's end is in its record)."""
    return {
        "time_s": np.array([event.time_s for event in events], dtype=np.float32),
        "kind": np.array([event.kind for event in events], dtype=object),
        "x_m": np.array([event.x_m for event in events], dtype=np.float64),
        "y_m": np.array([event.y_m for event in events], dtype=np.float64),
        # ids as in the actors table (the actor slot: a<slot>)
        "actor_id": np.array([f"a{event.actor}" if event.actor >= 0 else "" for event in events], dtype=object),
        "detail": np.array(["" for _ in events], dtype=object),
    }
