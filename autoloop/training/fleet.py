"""Observations for fleet logs: the BEV and state vector the simulator would have given, rendered from a log.

Fleet episodes (e.g. Argoverse 2 logs, :mod:`autoloop.fleet.av2`) store the ego's poses and the actors around it but
no observation. :func:`render_observations` replays the log non-reactively in the embedded simulator on the log's
map (:func:`autoloop.fleet.mining.replay_scenario`: every actor on its recorded track, the route along the ego's
recorded path), puts the ego at its recorded pose and speed at every step and asks the environment's own
:class:`~sim.scene.observation.Observer` for the observation, so a rendered observation has exactly the layout
(and renderer) of a simulated one.

:func:`cached_observations` keeps the rendering of a stored episode on disk, keyed by the episode id, the SHA-256 of
its manifest (which holds the hash of each of its files), the BEV spec and the observation format (so a rendering
of another format is rendered again).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os

import numpy as np
from numpy.typing import NDArray

from autoloop.episodes import Episode, EpisodeStore
from autoloop.episodes.store import MANIFEST
from autoloop.fleet.mining import replay_scenario, stored_map
from sim.embedded.world import World
from sim.maps import LaneGraph
from sim.scenarios.suites import scenario_slots
from sim.scene.bev import BevSpec
from sim.scene.observation import OBSERVATION_FORMAT, Observer

log = logging.getLogger(__name__)

#: Rendered fleet observations, under the episode store.
CACHE_FOLDER = "rendered"


class UnreplayableLog(ValueError):
    """A fleet log that cannot be replayed (its ego drives less than a metre: no route to lay)."""


def render_observations(episode: Episode, lane_graph: LaneGraph, *, bev: BevSpec | None = None,
                        ) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """Observations of every step of a fleet episode: BEVs ``(T, C, H, W)`` uint8 and states ``(T, STATE_SIZE)``
    float32, as :class:`sim.embedded.env.DrivingVectorEnv` gives them.

    :param episode: a log with an ego table (``time_s``, ``x_m``, ``y_m``, ``yaw_rad``, ``speed_mps``, optionally
        ``accel_mps2``; map frame, metres, radians, m/s) and an actors table.
    :param lane_graph: the log's map, registered under ``episode.metadata["map_name"]`` (or its own name).
    :param bev: BEV raster size (default :class:`BevSpec`).
    :raises UnreplayableLog: when the ego drives less than a metre over the whole log (no route to lay).
    """
    spec = bev or BevSpec()
    steps = episode.steps
    time = np.asarray(steps["time_s"], dtype=np.float64)
    x, y = np.asarray(steps["x_m"], dtype=np.float64), np.asarray(steps["y_m"], dtype=np.float64)
    yaw = np.unwrap(np.asarray(steps["yaw_rad"], dtype=np.float64))
    speed = np.asarray(steps["speed_mps"], dtype=np.float64)
    count = len(time)
    try:
        scenario = replay_scenario(episode, map_name=lane_graph.name, start_step=0,
                                   horizon_s=float(time[-1] - time[0]) + 1.0, reactive=False)
    except ValueError as error:
        raise UnreplayableLog(str(error)) from error
    dt_s = float(np.median(np.diff(time))) if count > 1 else 0.1
    config = dataclasses.replace(scenario_slots([scenario]), dt_s=dt_s)
    world = World(lane_graph, 1, config)
    world.reset([scenario])
    observer = Observer(world, spec)
    sc = world.scene
    running = sc.outcome.status.copy()
    accel = (np.asarray(steps["accel_mps2"], dtype=np.float64) if "accel_mps2" in steps
             else _rate(speed, time))
    yaw_rate = _rate(yaw, time)
    bicycle = config.bicycle
    steer = np.clip(np.arctan(bicycle.wheelbase_m * yaw_rate / np.maximum(speed, 1.0)),
                    -bicycle.max_steer_rad, bicycle.max_steer_rad)
    states = []
    frames = []
    for k in range(count):
        if k:
            # the world steps to the log's time k (tracks replay by time) from the ego's recorded pose at k - 1,
            # so that route progress and the ego's view are worked out near its pose at k
            sc.time_s[0] = time[k] - time[0] - dt_s
            world.step(np.zeros((1, 2)))
            sc.outcome.status[:] = running  # (the ego is not driving: nothing it "does" ends the replay)
        sc.ego.x_m[0], sc.ego.y_m[0], sc.ego.yaw_rad[0], sc.ego.speed_mps[0] = x[k], y[k], yaw[k], speed[k]
        sc.ego.steer_rad[0], sc.ego.accel_mps2[0] = steer[k], accel[k]
        observation = observer.observe()
        frames.append(observation["bev"][0])
        states.append(observation["state"][0])
    return np.stack(frames).astype(np.uint8, copy=False), np.stack(states).astype(np.float32, copy=False)


def _rate(values: NDArray[np.float64], time_s: NDArray[np.float64]) -> NDArray[np.float64]:
    """Time derivative of a per-step quantity (zero for a one-step log)."""
    if len(values) < 2:
        return np.zeros_like(values)
    rate: NDArray[np.float64] = np.gradient(values, time_s)
    return rate


def cached_observations(store: EpisodeStore, episode_id: str, *, bev: BevSpec,
                        ) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """:func:`render_observations` of a stored fleet episode (on its stored map), as packed BEVs ``(T, bytes)``
    and states, read from ``<store>/rendered/`` when this episode, unchanged, was rendered with ``bev`` before."""
    folder = store.folder(episode_id)
    digest = hashlib.sha256((folder / MANIFEST).read_bytes()).hexdigest()
    key = f"{digest[:16]}-{bev.size_px}-{bev.resolution_m:g}-{bev.ego_row}-f{OBSERVATION_FORMAT}"
    path = store.root / CACHE_FOLDER / f"{episode_id}-{key}.npz"
    if path.exists():
        with np.load(path) as cached:
            return cached["bev_packed"], cached["state"]
    for name, entry in store.manifest(episode_id)["tables"].items():
        if hashlib.sha256((folder / entry["file"]).read_bytes()).hexdigest() != entry["sha256"]:
            raise ValueError(f"episode {episode_id}: its {name} table changed since it was written")
    episode = store.read(episode_id)
    lane_graph = stored_map(store, str(episode.metadata["map_name"]))
    frames, states = render_observations(episode, lane_graph, bev=bev)
    packed = np.packbits(frames.reshape(len(frames), -1), axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.stem}.{os.getpid()}.tmp.npz"
    np.savez(temporary, bev_packed=packed, state=states)
    os.replace(temporary, path)
    log.info("rendered observations of fleet episode %s (%d steps)", episode_id, len(states))
    return packed, states
