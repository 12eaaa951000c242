"""Rollouts kept as episodes of the store: :class:`EpisodeRecorder`, and :func:`rollout`, the runner on a
:class:`~autoloop.config.SimConfig`'s settings with it (collection, DAgger, evaluation).

Each route becomes an :class:`~autoloop.episodes.Episode`: per step the ego's state and the executed action (with
labels: the expert's action and intended trajectory, and the observation), every actor around, the infractions as
its events, and the route's Leaderboard record and score in its metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from autoloop.compute import IN_PROCESS, Compute
from autoloop.config import SimConfig
from autoloop.episodes import Episode, EpisodeStore, new_episode_id
from autoloop.rollout.drivers import DriverFactory
from autoloop.rollout.runner import PLAIN, Batch, RolloutOptions, Step, drive
from sim.embedded.config import WorldConfig
from sim.geometry import to_map_frame
from sim.metrics import Infraction, RouteRecord, score_route
from sim.scenarios import Scenario
from sim.scene.observation import observation_space
from sim.scene.outcome import Event
from sim.scene.records import ActorKind, Scene


def rollout(scenarios: Sequence[Scenario], *, sim: SimConfig, driver: DriverFactory, policy_name: str,
            tags: dict[str, str], options: RolloutOptions = PLAIN, compute: Compute = IN_PROCESS,
            world: WorldConfig | None = None) -> list[tuple[Episode, RouteRecord]]:
    """Drive every scenario once on ``sim``'s world (or ``world``'s slots), batch size and BEV: each one's episode
    and Leaderboard record, in scenario order (see :class:`EpisodeRecorder` and :func:`autoloop.rollout.drive`)."""
    return drive(scenarios, driver=driver, recorder=EpisodeRecorder(policy_name=policy_name, tags=tags),
                 world=world or sim.world_config(), batch_size=sim.batch_size, bev=sim.bev(), options=options,
                 compute=compute)


@dataclass(frozen=True)
class EpisodeRecorder:
    """Keeps each route as an episode and its record: ``(Episode, RouteRecord)`` per scenario.

    :param policy_name: stored with each episode (e.g. ``expert`` or a model URI).
    :param tags: stored with each episode; ``tags["purpose"]`` starts its id (``<purpose>-<scenario seed>-...``).

    Columns: ``time_s``, the ego's ``x_m``, ``y_m``, ``yaw_rad``, ``speed_mps``, ``steer_rad``, ``accel_mps2``,
    ``route_progress_m`` and the executed ``action``; ``light_states`` on maps with lights; with labels ``label``,
    ``label_plan_xy``, ``label_plan_speed`` (see :attr:`policies.expert.ExpertDriver.plan_xy`), ``obs_state`` and
    ``obs_bev`` (bits packed); with takeovers ``expert_drives`` (and ``takeovers`` in the metadata); for a driver
    that plans (``Step.plan``), its waypoints ``plan_xy`` (map frame).
    """

    policy_name: str
    tags: dict[str, str]

    def begin(self, batch: Batch) -> _EpisodeRecording:
        return _EpisodeRecording(self, batch)


class _EpisodeRecording:
    def __init__(self, recorder: EpisodeRecorder, batch: Batch) -> None:
        self.recorder, self.batch = recorder, batch
        self.columns: dict[str, list[NDArray[Any]]] = {}
        self.running: list[NDArray[np.bool_]] = []
        self.actors: list[dict[str, NDArray[Any]]] = []
        self.takeovers: NDArray[np.intp] | None = None

    def before_step(self, step: Step) -> None:
        world = self.batch.world
        n = world.batch_size
        columns = {**scene_columns(world.scene), "action": step.action}
        if step.plan is not None:
            ego = world.scene.ego
            origin = np.stack([ego.x_m, ego.y_m], axis=-1)[:, None]
            columns["plan_xy"] = to_map_frame(step.plan, origin, ego.yaw_rad[:, None]).reshape(n, -1).astype(
                np.float32)
        if step.expert_drives is not None:
            columns["expert_drives"] = step.expert_drives
            self.takeovers = step.takeovers
        if step.label is not None and step.labeller is not None and step.observation is not None:
            columns["label"] = step.label
            # the expert's intended trajectory from here: trajectory labels for states a learner visited
            columns["label_plan_xy"] = step.labeller.plan_xy.reshape(n, -1).astype(np.float32)
            columns["label_plan_speed"] = step.labeller.plan_speed.astype(np.float32)
            columns["obs_state"] = step.observation["state"]
            columns["obs_bev"] = np.packbits(np.asarray(step.observation["bev"], dtype=np.uint8).reshape(n, -1),
                                             axis=1)
        for name, values in columns.items():
            self.columns.setdefault(name, []).append(values)
        self.running.append(step.running)
        self.actors.append(actor_snapshot(world.scene))

    def after_step(self, step: Step) -> None:
        pass

    def finish(self) -> list[tuple[Episode, RouteRecord]]:
        world, batch, tags = self.batch.world, self.batch, self.recorder.tags
        mask = np.stack(self.running)  # (T, n)
        stacked = {name: np.stack(values) for name, values in self.columns.items()}
        bev_shape = [int(n) for n in observation_space(batch.bev)["bev"].shape or ()]
        results = []
        for slot, scenario in enumerate(batch.scenarios):
            rows = mask[:, slot]
            steps = {name: values[rows, slot] for name, values in stacked.items()}
            steps["step"] = np.arange(int(rows.sum()), dtype=np.int32)
            record = world.route_record(slot)
            metadata = {
                "map_name": scenario.map_name,
                "scenario": scenario.model_dump(mode="json"),
                "policy": self.recorder.policy_name,
                "tags": tags,
                "dt_s": world.config.dt_s,
                "bev_shape": bev_shape,
                "bev_resolution_m": batch.bev.resolution_m,
                "bev_ego_row": batch.bev.ego_row,
                "record": {**asdict(record), "infractions": {k.value: v for k, v in record.infractions.items()}},
                "score": asdict(score_route(record)),
            }
            if self.takeovers is not None:
                metadata["takeovers"] = int(self.takeovers[slot])
            if batch.perturbation is not None:
                metadata["start_perturbation"] = {"lateral_m": float(batch.perturbation[slot, 0]),
                                                  "yaw_rad": float(batch.perturbation[slot, 1])}
            # ids sort by scenario seed, so snapshots (which order episodes by id) are reproducible
            episode_id = new_episode_id(f"{tags.get('purpose', 'episode')}-{scenario.traffic_seed:08d}")
            events = [event for event in world.events if event.env == slot and event.kind in _INFRACTIONS]
            episode = Episode(episode_id, "sim", steps, metadata, events=events_table(events),
                              actors=actor_table(self.actors, slot, np.flatnonzero(rows)))
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


def scene_columns(scene: Scene) -> dict[str, NDArray[Any]]:
    """The ego table's columns of every scenario now (copies): time, the ego's state, its route progress, and the
    lights' states on maps with lights (the viewer draws the lights in their state)."""
    ego = scene.ego
    columns: dict[str, NDArray[Any]] = {
        "time_s": scene.time_s.astype(np.float32),
        "x_m": ego.x_m.copy(),
        "y_m": ego.y_m.copy(),
        "yaw_rad": ego.yaw_rad.astype(np.float32),
        "speed_mps": ego.speed_mps.astype(np.float32),
        "steer_rad": ego.steer_rad.astype(np.float32),
        "accel_mps2": ego.accel_mps2.astype(np.float32),
        "route_progress_m": scene.route.progress_m.astype(np.float32),
    }
    if scene.lights.shape[1]:
        columns["light_states"] = scene.lights.astype(np.float32)
    return columns


def actor_snapshot(scene: Scene) -> dict[str, NDArray[Any]]:
    """Every actor slot of every scenario now (copies), for :func:`actor_table`."""
    actors = scene.actors
    return {"valid": actors.valid.copy(), "kind": actors.kind.copy(), "x_m": actors.x_m.copy(),
            "y_m": actors.y_m.copy(), "yaw_rad": actors.yaw_rad.copy(), "length_m": actors.length_m.copy(),
            "width_m": actors.width_m.copy(), "speed_mps": actors.speed_mps.copy()}


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


def events_table(events: list[Event]) -> dict[str, NDArray[Any]]:
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
