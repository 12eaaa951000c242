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
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from autoloop.config import SimConfig
from autoloop.episodes import DatasetSnapshot, EpisodeStore, read_snapshot_columns
from autoloop.episodes.dataset import unpack_bev
from autoloop.training.fleet import UnreplayableLog, cached_observations
from policies.expert import ExpertParams
from sim.geometry import to_local_frame
from sim.scene.bev import BevSpec, Channel

log = logging.getLogger(__name__)

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

    def __len__(self) -> int:
        return len(self.action)

    def bev(self, rows: NDArray[np.intp]) -> NDArray[np.uint8]:
        """Unpacked BEVs ``(len(rows), C, H, W)``."""
        return unpack_bev(self.bev_packed, rows, self.bev_shape)


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


def load_trajectory_arrays(store: EpisodeStore, snapshot: DatasetSnapshot, *, waypoints: int = 4,
                           waypoint_dt_s: float = 0.5, bev: BevSpec | None = None) -> TrajectoryArrays:
    """Samples of every episode of ``snapshot`` (hashes checked as the snapshot reads): those of episodes that hold
    observations, and those of fleet logs with observations rendered at ``bev`` (default: the size of the stored
    observations, at :class:`~autoloop.config.SimConfig`'s default resolution); each sample weighs what its
    episode does (:meth:`~autoloop.episodes.DatasetSnapshot.weights`)."""
    plan = ExpertParams()
    if waypoints > plan.plan_steps or not np.isclose(plan.plan_dt_s, waypoint_dt_s):
        raise ValueError(f"trajectory targets of {waypoints} waypoints {waypoint_dt_s} s apart do not match the "
                         f"expert's plan ({plan.plan_steps} points {plan.plan_dt_s} s apart)")
    episodes = read_snapshot_columns(store, snapshot, COLUMNS)
    shapes = {tuple(int(n) for n in metadata["bev_shape"]) for metadata, columns in episodes if "obs_bev" in columns}
    if len(shapes) > 1:
        raise ValueError(f"episodes of snapshot {snapshot.digest[:12]} have different BEV shapes {sorted(shapes)}")
    stored = shapes.pop() if shapes else None
    if bev is None:
        bev = SimConfig(bev_size_px=stored[1]).bev() if stored else SimConfig().bev()
    shape = (stored[0], stored[1], stored[2]) if stored else (len(Channel), bev.size_px, bev.size_px)
    parts = []
    weights = snapshot.weights()
    skipped = fleet = 0
    for episode_id, (metadata, columns) in zip(snapshot.episode_ids, episodes, strict=True):
        part: dict[str, NDArray[Any]] | None
        if "obs_bev" in columns:
            part = _episode_samples(metadata, columns, waypoints, waypoint_dt_s)
        elif store.manifest(episode_id)["source"] == "fleet":
            if shape != (len(Channel), bev.size_px, bev.size_px):
                raise ValueError(f"fleet episode {episode_id}: rendered BEVs {bev} do not match the stored {shape}")
            part = _fleet_samples(store, episode_id, metadata, columns, bev, waypoints, waypoint_dt_s)
            fleet += len(part["speed"]) if part is not None else 0
        else:
            part = None
        if part is None:
            skipped += 1
            continue
        part["weight"] = np.full(len(part["speed"]), weights[episode_id], dtype=np.float32)
        parts.append(part)
    if not parts:
        raise ValueError(f"dataset snapshot {snapshot.digest[:12]} has no episode with observations")
    if skipped:
        log.info("left out %d episodes without observations", skipped)
    if fleet:
        log.info("%d samples from fleet logs (observations rendered)", fleet)
    return TrajectoryArrays(
        bev_packed=np.concatenate([p["bev"] for p in parts]),
        bev_shape=shape,
        state=np.concatenate([p["state"] for p in parts]).astype(np.float32, copy=False),
        action=np.concatenate([p["action"] for p in parts]).astype(np.float32, copy=False),
        waypoints=np.concatenate([p["waypoints"] for p in parts]).astype(np.float32, copy=False),
        speed=np.concatenate([p["speed"] for p in parts]).astype(np.float32, copy=False),
        has_trajectory=np.concatenate([p["has_trajectory"] for p in parts]),
        has_action=np.concatenate([p["has_action"] for p in parts]),
        weight=np.concatenate([p["weight"] for p in parts]),
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
    return {"bev": columns["obs_bev"], "state": columns["obs_state"], "action": columns["label"],
            "waypoints": plan, "speed": speed, "has_trajectory": valid, "has_action": np.ones(steps, dtype=bool)}


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


def batches(data: TrajectoryArrays, row_batches: Sequence[NDArray[np.intp]], device: torch.device,
            ) -> Iterator[Batch]:
    """The batches of ``row_batches`` in order, each unpacked (and copied to ``device``) on a background thread
    while the previous one trains, so the device does not wait for the BEV unpacking."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = [pool.submit(_batch, data, rows, device) for rows in row_batches[:2]]
        for index in range(len(row_batches)):
            batch = pending.pop(0).result()
            if index + 2 < len(row_batches):
                pending.append(pool.submit(_batch, data, row_batches[index + 2], device))
            yield batch


def _batch(data: TrajectoryArrays, rows: NDArray[np.intp], device: torch.device) -> Batch:
    pin = device.type == "cuda"

    def tensor(array: NDArray[Any]) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(array))
        return t.pin_memory().to(device, non_blocking=True) if pin else t

    return Batch(bev=tensor(data.bev(rows)), state=tensor(data.state[rows]), action=tensor(data.action[rows]),
                 waypoints=tensor(data.waypoints[rows]), speed=tensor(data.speed[rows]),
                 has_trajectory=tensor(data.has_trajectory[rows]), has_action=tensor(data.has_action[rows]))
