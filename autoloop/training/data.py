"""Training samples for every learned driver: observations with the expert's action and trajectory targets.

Trajectory targets are the ego's future positions ``waypoint_dt_s, 2 * waypoint_dt_s, ...`` ahead in the ego frame
at the observation (x forward, y left, metres) and its speed ``waypoint_dt_s`` ahead (m/s). They come from

- the stored ego table (``x_m``, ``y_m``, ``yaw_rad``, ``speed_mps`` per step) where the episode was driven by the
  expert (collection) or by a person (fleet logs): what actually happened next; the last steps of an episode, whose
  future the log does not reach, have no trajectory target;
- the expert's intended trajectory (``label_plan_xy``, ``label_plan_speed``) where a learner drove (DAgger): the
  learner's own future is no target.

Fleet logs hold no observation: theirs are rendered from the log with the simulator's own renderer
(:mod:`autoloop.training.fleet`, cached under the store). They have no expert action, so their samples train the
trajectory alone (``has_action`` false), and the steps whose future the log does not reach are left out.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import NDArray

from autoloop.config import SimConfig
from autoloop.episodes import DatasetSnapshot, EpisodeStore
from autoloop.episodes.dataset import read_episode_columns, unpack_bev
from autoloop.training.fleet import UnreplayableLog, cached_observations
from policies.expert import ExpertParams
from sim.geometry import to_local_frame
from sim.scene.bev import BevSpec, Channel

if TYPE_CHECKING:
    from autoloop.training.balance import SampleIndex

log = logging.getLogger(__name__)

#: One episode's (or unit's) samples by name: ``bev`` (packed), ``state``, ``action``, ``waypoints``, ``speed``,
#: ``has_trajectory``, ``has_action`` (and ``weight``).
Samples = dict[str, NDArray[Any]]

COLUMNS = ("obs_bev", "obs_state", "label", "x_m", "y_m", "yaw_rad", "speed_mps", "label_plan_xy",
           "label_plan_speed")


@dataclass(frozen=True)
class TrajectoryArrays:
    """Samples: packed BEVs ``(N, bytes)``, states ``(N, S)``, expert actions ``(N, 2)``, waypoints ``(N, K, 2)``
    (ego frame, metres), target speeds ``(N,)`` (m/s), whether each sample has a trajectory target, whether
    it has an expert action (fleet logs have none), and each sample's sampling weight ``(N,)`` (its snapshot
    part's: :class:`~autoloop.episodes.SnapshotPart`; ``None``: every sample weighs 1)."""

    bev_packed: NDArray[np.uint8]
    bev_shape: tuple[int, int, int]
    state: NDArray[np.float32]
    action: NDArray[np.float32]
    waypoints: NDArray[np.float32]
    speed: NDArray[np.float32]
    has_trajectory: NDArray[np.bool_]
    has_action: NDArray[np.bool_]
    weight: NDArray[np.float32] | None = None
    episode_sizes: NDArray[np.intp] | None = None

    def __len__(self) -> int:
        return len(self.action)

    def bev(self, rows: NDArray[np.intp]) -> NDArray[np.uint8]:
        """Unpacked BEVs ``(len(rows), C, H, W)``."""
        return unpack_bev(self.bev_packed, rows, self.bev_shape)

    @property
    def state_size(self) -> int:
        return int(self.state.shape[1])

    def index(self) -> SampleIndex:
        """The samples' :class:`~autoloop.training.balance.SampleIndex`: one unit per episode
        (:attr:`episode_sizes`; one unit of every sample when unknown)."""
        from autoloop.training.balance import sample_index

        sizes = self.episode_sizes if self.episode_sizes is not None else np.array([len(self)])
        return sample_index(self.state, self.speed, self.has_trajectory, self.weight, sizes)

    def read(self, unit: int) -> Samples:
        """The samples of one unit of :meth:`index`."""
        sizes = self.episode_sizes if self.episode_sizes is not None else np.array([len(self)])
        start = int(np.sum(sizes[:unit]))
        rows = slice(start, start + int(sizes[unit]))
        return {"bev": self.bev_packed[rows], "state": self.state[rows], "action": self.action[rows],
                "waypoints": self.waypoints[rows], "speed": self.speed[rows],
                "has_trajectory": self.has_trajectory[rows], "has_action": self.has_action[rows]}


@dataclass(frozen=True)
class Batch:
    """A training batch as tensors on the training device."""

    bev: torch.Tensor
    state: torch.Tensor
    action: torch.Tensor
    waypoints: torch.Tensor
    speed: torch.Tensor
    has_trajectory: torch.Tensor
    has_action: torch.Tensor

    def __len__(self) -> int:
        return len(self.action)


class SnapshotSamples:
    """The samples of a snapshot's episodes, one episode at a time: those of episodes that hold observations, and
    those of fleet logs with observations rendered at ``bev`` (default: the size of the stored observations, at
    :class:`~autoloop.config.SimConfig`'s default resolution; cached under the store). Every read checks the
    episode's manifest against the snapshot and its ego file against the manifest."""

    def __init__(self, store: EpisodeStore, snapshot: DatasetSnapshot, *, waypoints: int = 4,
                 waypoint_dt_s: float = 0.5, bev: BevSpec | None = None) -> None:
        plan = ExpertParams()
        if waypoints > plan.plan_steps or not np.isclose(plan.plan_dt_s, waypoint_dt_s):
            raise ValueError(f"trajectory targets of {waypoints} waypoints {waypoint_dt_s} s apart do not match "
                             f"the expert's plan ({plan.plan_steps} points {plan.plan_dt_s} s apart)")
        self.store, self.snapshot, self.waypoints, self.waypoint_dt_s = store, snapshot, waypoints, waypoint_dt_s
        manifests = [store.manifest(episode_id) for episode_id in snapshot.episode_ids]
        shapes = {tuple(int(n) for n in m["metadata"]["bev_shape"]) for m in manifests
                  if "observation_format" in m and "bev_shape" in m["metadata"]}
        if len(shapes) > 1:
            raise ValueError(f"episodes of snapshot {snapshot.digest[:12]} have different BEV shapes "
                             f"{sorted(shapes)}")
        stored = shapes.pop() if shapes else None
        self.bev = bev if bev is not None else SimConfig(bev_size_px=stored[1]).bev() if stored else SimConfig().bev()
        self.bev_shape = (stored[0], stored[1], stored[2]) if stored else (len(Channel), self.bev.size_px,
                                                                           self.bev.size_px)
        self.sources = [m["source"] for m in manifests]
        self.weights = snapshot.weights()

    def episode(self, position: int, *, light: bool = False) -> Samples | None:
        """The samples of the snapshot's ``position``-th episode (None: it has none), weighted by its part;
        ``light``: without the BEVs of episodes that store them (what an index needs)."""
        episode_id = self.snapshot.episode_ids[position]
        wanted = [name for name in COLUMNS if not (light and name == "obs_bev")]
        metadata, columns = read_episode_columns(self.store, self.snapshot, position, wanted)
        part: Samples | None
        if "obs_state" in columns:
            part = _episode_samples(metadata, columns, self.waypoints, self.waypoint_dt_s)
        elif self.sources[position] == "fleet":
            if self.bev_shape != (len(Channel), self.bev.size_px, self.bev.size_px):
                raise ValueError(f"fleet episode {episode_id}: rendered BEVs {self.bev} do not match the stored "
                                 f"{self.bev_shape}")
            part = _fleet_samples(self.store, episode_id, metadata, columns, self.bev, self.waypoints,
                                  self.waypoint_dt_s)
        else:
            part = None
        if part is not None:
            part["weight"] = np.full(len(part["speed"]), self.weights[episode_id], dtype=np.float32)
        return part


def load_trajectory_arrays(store: EpisodeStore, snapshot: DatasetSnapshot, *, waypoints: int = 4,
                           waypoint_dt_s: float = 0.5, bev: BevSpec | None = None) -> TrajectoryArrays:
    """Samples of every episode of ``snapshot`` in memory (:class:`SnapshotSamples`, which says which); each sample
    weighs what its episode does (:meth:`~autoloop.episodes.DatasetSnapshot.weights`). Training streams them
    instead (:class:`autoloop.training.stream.StreamedSnapshot`) when a snapshot is larger than memory."""
    samples = SnapshotSamples(store, snapshot, waypoints=waypoints, waypoint_dt_s=waypoint_dt_s, bev=bev)
    with ThreadPoolExecutor(max_workers=4) as pool:  # (hashing and Parquet decoding release the GIL)
        read = list(pool.map(samples.episode, range(len(snapshot.episode_ids))))
    parts = [part for part in read if part is not None]
    if not parts:
        raise ValueError(f"dataset snapshot {snapshot.digest[:12]} has no episode with observations")
    if len(parts) < len(read):
        log.info("left out %d episodes without observations", len(read) - len(parts))
    fleet = sum(len(part["speed"]) for part, source in zip(read, samples.sources, strict=True)
                if part is not None and source == "fleet")
    if fleet:
        log.info("%d samples from fleet logs (observations rendered)", fleet)
    return TrajectoryArrays(
        bev_packed=np.concatenate([p["bev"] for p in parts]),
        bev_shape=samples.bev_shape,
        state=np.concatenate([p["state"] for p in parts]).astype(np.float32, copy=False),
        action=np.concatenate([p["action"] for p in parts]).astype(np.float32, copy=False),
        waypoints=np.concatenate([p["waypoints"] for p in parts]).astype(np.float32, copy=False),
        speed=np.concatenate([p["speed"] for p in parts]).astype(np.float32, copy=False),
        has_trajectory=np.concatenate([p["has_trajectory"] for p in parts]),
        has_action=np.concatenate([p["has_action"] for p in parts]),
        weight=np.concatenate([p["weight"] for p in parts]),
        episode_sizes=np.array([len(p["speed"]) for p in parts], dtype=np.intp),
    )


def future_waypoints(x_m: NDArray[np.floating], y_m: NDArray[np.floating], yaw_rad: NDArray[np.floating],
                     speed_mps: NDArray[np.floating], *, dt_s: float, waypoints: int, waypoint_dt_s: float,
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Trajectory targets from one episode's logged poses ``(T,)``: waypoints ``(T, K, 2)`` in the ego frame of
    each step, the speed ``waypoint_dt_s`` ahead ``(T,)``, and whether the log reaches the last waypoint."""
    steps = len(x_m)
    offsets = np.rint(np.arange(1, waypoints + 1) * waypoint_dt_s / dt_s).astype(np.intp)
    index = np.minimum(np.arange(steps)[:, None] + offsets[None, :], steps - 1)
    xy = np.stack([x_m, y_m], axis=-1).astype(np.float64)
    local = to_local_frame(xy[index], xy[:, None, :], np.asarray(yaw_rad, dtype=np.float64)[:, None])
    valid: NDArray[np.bool_] = np.arange(steps) + offsets[-1] < steps
    return local, np.asarray(speed_mps, dtype=np.float64)[index[:, 0]], valid


def _episode_samples(metadata: dict[str, Any], columns: dict[str, NDArray[Any]], waypoints: int,
                     waypoint_dt_s: float) -> dict[str, NDArray[Any]]:
    steps = len(columns["label"])
    if metadata.get("policy") != "expert" and "label_plan_xy" in columns:
        plan = np.asarray(columns["label_plan_xy"]).reshape(steps, -1, 2)[:, :waypoints]
        speed = np.asarray(columns["label_plan_speed"])[:, 0]
        valid = np.ones(steps, dtype=bool)
    else:
        plan, speed, valid = future_waypoints(columns["x_m"], columns["y_m"], columns["yaw_rad"],
                                              columns["speed_mps"], dt_s=float(metadata["dt_s"]),
                                              waypoints=waypoints, waypoint_dt_s=waypoint_dt_s)
    samples = {"state": columns["obs_state"], "action": columns["label"], "waypoints": plan, "speed": speed,
               "has_trajectory": valid, "has_action": np.ones(steps, dtype=bool)}
    if "obs_bev" in columns:
        samples["bev"] = columns["obs_bev"]
    return samples


def _fleet_samples(store: EpisodeStore, episode_id: str, metadata: dict[str, Any], columns: dict[str, NDArray[Any]],
                   bev: BevSpec, waypoints: int, waypoint_dt_s: float) -> dict[str, NDArray[Any]] | None:
    """Samples of a fleet log (observations rendered, no action), or None when the log cannot be replayed."""
    plan, speed, valid = future_waypoints(columns["x_m"], columns["y_m"], columns["yaw_rad"], columns["speed_mps"],
                                          dt_s=float(metadata["dt_s"]), waypoints=waypoints,
                                          waypoint_dt_s=waypoint_dt_s)
    if not valid.any():
        return None
    try:
        packed, state = cached_observations(store, episode_id, bev=bev)
    except UnreplayableLog as error:  # (a log whose ego stands still has no route to replay)
        log.warning("left out fleet episode %s: %s", episode_id, error)
        return None
    rows = np.flatnonzero(valid)
    return {"bev": packed[rows], "state": state[rows], "action": np.zeros((len(rows), 2), dtype=np.float32),
            "waypoints": plan[rows], "speed": speed[rows], "has_trajectory": np.ones(len(rows), dtype=bool),
            "has_action": np.zeros(len(rows), dtype=bool)}

