"""Shadow mode on fleet logs: the champion driver predicts its trajectory at every step of a log, open loop, and
each prediction is scored against what the human drove and what was around.

At every step ``t`` the driver sees the observation rendered from the log (:mod:`autoloop.training.fleet`: the BEV
and state the simulator would give) and predicts ``K`` waypoints ``waypoint_dt_s`` apart (ego frame at ``t``: x
forward, y left, metres; the ego's box centre at ``t + k * waypoint_dt_s``, ``k = 1..K``). Nothing is driven: the
log goes on as the human drove it. Each predicted trajectory gets

- **displacement errors** against the human's future positions (:func:`autoloop.training.data.future_waypoints`):
  ADE (mean over the ``K`` waypoints) and FDE (the last one), metres; only at steps whose recorded future covers the
  whole horizon (``has_future``), NaN elsewhere;
- **collision** — the ego's box (``EGO_LENGTH_M`` x ``EGO_WIDTH_M``, centred on the waypoint, heading along the
  predicted path) overlaps the recorded box of an observed actor at the same time (the actor's row at step
  ``t + round(k * waypoint_dt_s / dt_s)``; waypoints past the log's end are not checked);
- **off road** — a waypoint lies farther than half a lane's width plus ``off_road_margin_m`` from the centreline of
  every lane of the map;
- **red light** — a predicted segment crosses, in the lane's direction, the stop line of a lane (its last
  centreline point, across its width) whose light is red at the segment's end time. Only logs that record light
  states (the ``light_states`` column: simulated and synthetic episodes) are checked; for the others (AV2) the
  check is *not available* (``red_light_checked`` false), not passed.

The per-step **score** is PDM-like, in [0, 1]: the hard checks multiply (0 on a collision, off road or a red
light), times ``exp(-FDE / fde_scale_m)`` for closeness to the human; NaN where there is no full future.

How it differs from NAVSIM's PDM score: nothing is simulated. NAVSIM drives the predicted trajectory through a
short non-reactive simulation (an LQR tracker, a kinematic model) and scores the resulting motion against the
recorded actors *and* a constant-velocity forecast where the log lacks them, with at-fault collision rules,
drivable-area polygons, ego progress against a PDM-Closed planner, time to collision and comfort. Here the
predicted waypoints are checked as they are, against recorded actors only (an actor the log did not record is
never hit, and every overlap counts, at fault or not), the drivable area is the lanes, and progress, TTC and
comfort are replaced by the displacement from the human's own future.

:func:`shadow_triggers` turns the worst moments into :class:`~autoloop.fleet.mining.Trigger` s (``shadow_collision``,
``shadow_off_road``, ``shadow_red_light``, ``shadow_displacement``), one per stretch as mining merges them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from autoloop.episodes import Episode
from autoloop.episodes.dataset import unpack_bev
from autoloop.fleet.mining import EGO_LENGTH_M, EGO_WIDTH_M, Trigger, _stretches
from autoloop.training.data import future_waypoints
from autoloop.training.fleet import render_observations
from policies.base import Policy
from policies.bc import torch_inputs
from policies.waypoints import WaypointPolicy
from sim.embedded.traffic import LightState
from sim.maps import LaneGraph
from sim.scene.bev import BevSpec, Channel
from sim.scene.observation import Observation

#: Closeness to the human: the score's factor is ``exp(-FDE / FDE_SCALE_M)``.
FDE_SCALE_M = 2.0
#: A waypoint is off road beyond half a lane's width plus this from every lane's centreline.
OFF_ROAD_MARGIN_M = 0.5
#: ``shadow_displacement`` triggers where the final displacement error exceeds this.
FDE_TRIGGER_M = 4.0
#: A predicted step shorter than this keeps the heading of the one before (a standing ego has no direction).
_HEADING_MIN_STEP_M = 0.1
#: Observations per call of the predictor.
_PREDICT_BATCH = 256
#: Off-road check: at most this many (waypoint, lane segment) distances at once.
_PAIRS_PER_CHUNK = 2_000_000

#: Observations ``{"bev": uint8 (N, C, H, W), "state": float32 (N, S)}`` -> waypoints ``(N, K, 2)`` (ego frame, m).
Predictor = Callable[[Observation], NDArray[np.float32]]


@dataclass(frozen=True)
class ShadowScores:
    """Open-loop scores of one fleet episode, per step (arrays of length ``T``; see the module docstring).

    :param episode_id: the episode scored.
    :param time_s: the step's time (s since the episode's start).
    :param has_future: whether the human's recorded future covers the whole predicted horizon.
    :param ade_m: mean displacement from the human's future positions (m); NaN where no future.
    :param fde_m: displacement at the last waypoint (m); NaN where no future.
    :param collision: the predicted trajectory overlaps a recorded actor's box at the same time.
    :param collision_actor: the id of the first actor hit ("" for none).
    :param off_road: a predicted waypoint lies off every lane.
    :param red_light: the predicted trajectory crosses a stop line at red (false where not checked).
    :param red_light_checked: whether the log records light states (else the red-light check is not available).
    :param score: PDM-like score in [0, 1]; NaN where no future.
    """

    episode_id: str
    time_s: NDArray[np.float64]
    has_future: NDArray[np.bool_]
    ade_m: NDArray[np.float64]
    fde_m: NDArray[np.float64]
    collision: NDArray[np.bool_]
    collision_actor: NDArray[np.object_]
    off_road: NDArray[np.bool_]
    red_light: NDArray[np.bool_]
    red_light_checked: bool
    score: NDArray[np.float64]

    def summary(self) -> dict[str, float]:
        """Plain floats to log as metrics, over the steps with a full future (``steps`` of them): mean ``ade_m``,
        ``fde_m`` and ``score``, the worst (``fde_max_m``, ``score_min``) and the rates of collisions, off-road
        and (only where checked) red-light steps. Means and extremes are NaN when no step has a full future."""
        scored = self.has_future
        count = int(scored.sum())

        def mean(values: NDArray[Any]) -> float:
            return float(np.mean(values[scored])) if count else float("nan")

        summary = {
            "steps": float(count),
            "ade_m": mean(self.ade_m),
            "fde_m": mean(self.fde_m),
            "fde_max_m": float(np.max(self.fde_m[scored])) if count else float("nan"),
            "collision_rate": mean(self.collision.astype(np.float64)),
            "off_road_rate": mean(self.off_road.astype(np.float64)),
            "score": mean(self.score),
            "score_min": float(np.min(self.score[scored])) if count else float("nan"),
        }
        if self.red_light_checked:
            summary["red_light_rate"] = mean(self.red_light.astype(np.float64))
        return summary


def policy_predictor(policy: Policy) -> Predictor:
    """The predicted waypoints of a trajectory driver (kind ``waypoints``, :class:`policies.waypoints.WaypointPolicy`):
    its network's ``waypoints`` output, ``(N, K, 2)`` metres in the ego frame.

    :raises ValueError: for a driver that predicts no trajectory (``bc``, ``ppo``, ``sac``, the expert), naming its
        kind.
    """
    if not isinstance(policy, WaypointPolicy):
        kind = getattr(policy, "kind", type(policy).__name__)
        raise ValueError(f"shadow mode needs a driver that predicts its trajectory (kind 'waypoints'); a {kind!r} "
                         f"driver gives only actions")
    net = policy.net

    def predict(observation: Observation) -> NDArray[np.float32]:
        with torch.inference_mode():
            waypoints: NDArray[np.float32] = net(*torch_inputs(net, observation)).waypoints.float().cpu().numpy()
        return waypoints

    return predict


def shadow_scores(predict: Predictor, episode: Episode, lane_graph: LaneGraph, *, bev: BevSpec, waypoints: int,
                  waypoint_dt_s: float = 0.5,
                  observations: tuple[NDArray[np.uint8], NDArray[np.float32]] | None = None) -> ShadowScores:
    """Shadow-mode scores of ``predict`` on every step of a fleet episode.

    :param predict: observations -> predicted waypoints (e.g. :func:`policy_predictor`).
    :param episode: the fleet log (ego table in the map frame, actors table).
    :param lane_graph: its map (registered, as :func:`autoloop.training.fleet.render_observations` needs).
    :param bev: the BEV the driver sees.
    :param waypoints: ``K``, the waypoints the driver predicts.
    :param waypoint_dt_s: time between them (s; the first is this far ahead).
    :param observations: the episode's observations when already at hand: BEVs ``(T, C, H, W)`` uint8 or packed
        ``(T, bytes)`` as :func:`~autoloop.training.fleet.cached_observations` gives them, and states ``(T, S)``;
        rendered from the log when not given.
    :raises ValueError: when the predictions are not ``(T, waypoints, 2)``, or the observations not one per step.
    :raises autoloop.training.fleet.UnreplayableLog: rendering a log whose ego drives less than a metre.
    """
    frames, states = observations if observations is not None else render_observations(episode, lane_graph, bev=bev)
    count = len(episode.steps["time_s"])
    if len(frames) != count or len(states) != count:
        raise ValueError(f"episode {episode.episode_id}: {len(frames)} observations for {count} steps")
    shape = (len(Channel), bev.size_px, bev.size_px)
    parts = []
    for start in range(0, count, _PREDICT_BATCH):
        rows = np.arange(start, min(start + _PREDICT_BATCH, count))
        batch = unpack_bev(frames, rows, shape) if frames.ndim == 2 else frames[rows]
        parts.append(np.asarray(predict({"bev": batch, "state": states[rows]}), dtype=np.float64))
    predicted = np.concatenate(parts) if parts else np.zeros((0, waypoints, 2))
    if predicted.shape != (count, waypoints, 2):
        raise ValueError(f"episode {episode.episode_id}: the driver predicted waypoints of shape "
                         f"{predicted.shape[1:]}, expected ({waypoints}, 2)")
    return score_trajectories(predicted, episode, lane_graph, waypoint_dt_s=waypoint_dt_s)


def score_trajectories(predicted: NDArray[np.floating], episode: Episode, lane_graph: LaneGraph, *,
                       waypoint_dt_s: float = 0.5, fde_scale_m: float = FDE_SCALE_M,
                       off_road_margin_m: float = OFF_ROAD_MARGIN_M) -> ShadowScores:
    """Score predicted trajectories ``(T, K, 2)`` (one per step of ``episode``; waypoint ``k`` is the ego's box
    centre ``(k + 1) * waypoint_dt_s`` ahead, ego frame at that step, metres) against the log and ``lane_graph``.

    :param fde_scale_m: the score's closeness factor is ``exp(-FDE / fde_scale_m)``.
    :param off_road_margin_m: a waypoint is off road beyond half a lane's width plus this from every centreline.
    :raises ValueError: when ``predicted`` is not one ``(K, 2)`` trajectory per step of the episode.
    """
    steps = episode.steps
    predicted = np.asarray(predicted, dtype=np.float64)
    count = len(steps["time_s"])
    if predicted.ndim != 3 or predicted.shape[0] != count or predicted.shape[2] != 2 or not predicted.shape[1]:
        raise ValueError(f"episode {episode.episode_id}: predicted trajectories of shape {predicted.shape}, "
                         f"expected ({count}, K, 2)")
    horizon = predicted.shape[1]
    time = np.asarray(steps["time_s"], dtype=np.float64)
    x, y = np.asarray(steps["x_m"], dtype=np.float64), np.asarray(steps["y_m"], dtype=np.float64)
    yaw = np.asarray(steps["yaw_rad"], dtype=np.float64)
    dt_s = float(episode.metadata["dt_s"]) if "dt_s" in episode.metadata else float(np.median(np.diff(time)))
    human, _, has_future = future_waypoints(x, y, yaw, steps["speed_mps"], dt_s=dt_s, waypoints=horizon,
                                            waypoint_dt_s=waypoint_dt_s)
    error = np.linalg.norm(predicted - human, axis=-1)
    ade = np.where(has_future, error.mean(axis=1), np.nan)
    fde = np.where(has_future, error[:, -1], np.nan)
    # the predicted path in the map frame, from the ego's recorded pose: points (T, K + 1, 2), headings (T, K)
    path_local = np.concatenate([np.zeros((count, 1, 2)), predicted], axis=1)
    cos, sin = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    path = np.stack([x[:, None] + cos * path_local[..., 0] - sin * path_local[..., 1],
                     y[:, None] + sin * path_local[..., 0] + cos * path_local[..., 1]], axis=-1)
    heading = yaw[:, None] + _path_headings(path_local)
    # the step at each waypoint's time, as the human's future is taken
    at_step = np.arange(count)[:, None] + np.rint(np.arange(1, horizon + 1) * waypoint_dt_s / dt_s).astype(np.intp)
    collision, actor = _collisions(path[:, 1:], heading, at_step, episode)
    off_lanes = _off_lanes(path[:, 1:].reshape(-1, 2), lane_graph, off_road_margin_m)
    off_road = np.asarray(off_lanes.reshape(count, horizon).any(axis=1), dtype=bool)
    checked = "light_states" in steps
    red_light = (_red_lights(path, at_step, np.asarray(steps["light_states"]), lane_graph) if checked
                 else np.zeros(count, dtype=bool))
    hard = ~(collision | off_road | red_light)
    score = np.where(has_future, hard * np.exp(-np.nan_to_num(fde) / fde_scale_m), np.nan)
    return ShadowScores(episode_id=episode.episode_id, time_s=time, has_future=has_future, ade_m=ade, fde_m=fde,
                        collision=collision, collision_actor=actor, off_road=off_road, red_light=red_light,
                        red_light_checked=checked, score=score)


def shadow_triggers(scores: ShadowScores, episode: Episode, *, fde_threshold_m: float = FDE_TRIGGER_M,
                    ) -> list[Trigger]:
    """The worst moments of a shadow-mode run as triggers, in time order: ``shadow_collision`` (with the actor
    hit), ``shadow_off_road``, ``shadow_red_light`` (value 1) and ``shadow_displacement`` (FDE above
    ``fde_threshold_m``, valued at the stretch's largest FDE, metres); one per stretch, stretches of a kind closer
    than :data:`~autoloop.fleet.mining.MERGE_S` merged (as :func:`~autoloop.fleet.mining.mine` does)."""
    found: list[Trigger] = []
    for kind, flag in (("collision", scores.collision), ("off_road", scores.off_road),
                       ("red_light", scores.red_light)):
        actor = scores.collision_actor if kind == "collision" else None
        found += _stretches(episode, f"shadow_{kind}", flag, flag.astype(np.float64), np.argmax, actor)
    far = scores.has_future & (np.nan_to_num(scores.fde_m) > fde_threshold_m)
    found += _stretches(episode, "shadow_displacement", far, scores.fde_m, np.argmax)
    return sorted(found, key=lambda t: (t.time_s, t.kind))


def _path_headings(path_local: NDArray[np.float64]) -> NDArray[np.float64]:
    """Heading ``(T, K)`` (rad, ego frame) of each predicted step ``path[k] -> path[k + 1]`` of paths ``(T, K + 1,
    2)`` that start at the ego (heading 0); a step shorter than ``_HEADING_MIN_STEP_M`` keeps the one before."""
    delta = np.diff(path_local, axis=1)
    angle = np.arctan2(delta[..., 1], delta[..., 0])
    moved = np.linalg.norm(delta, axis=-1) >= _HEADING_MIN_STEP_M
    # the index of the last step that moved, at or before each (-1: none yet, the ego's own heading)
    last = np.maximum.accumulate(np.where(moved, np.arange(delta.shape[1]), -1), axis=1)
    heading: NDArray[np.float64] = np.where(last >= 0, np.take_along_axis(angle, np.maximum(last, 0), axis=1), 0.0)
    return heading


def _collisions(xy: NDArray[np.float64], heading: NDArray[np.float64], at_step: NDArray[np.intp],
                episode: Episode) -> tuple[NDArray[np.bool_], NDArray[np.object_]]:
    """Per step: whether the ego's box at a predicted waypoint ``xy (T, K, 2)`` (map frame, heading ``(T, K)``)
    overlaps an observed actor's box recorded at that waypoint's step ``at_step (T, K)``, and the id of the actor
    hit first ("" for none)."""
    count, horizon = at_step.shape
    collision = np.zeros(count, dtype=bool)
    who = np.full(count, "", dtype=object)
    actors = episode.actors
    if actors is None or not len(actors["step"]):
        return collision, who
    rows = (np.flatnonzero(np.asarray(actors["observed"], dtype=bool)) if "observed" in actors
            else np.arange(len(actors["step"])))
    rows = rows[np.argsort(np.asarray(actors["step"])[rows], kind="stable")]
    per_step = np.bincount(np.asarray(actors["step"])[rows], minlength=count)[:count]
    first = np.concatenate([[0], np.cumsum(per_step)[:-1]])
    # every (waypoint, actor recorded at its time) pair, waypoints in the log
    query = np.flatnonzero(at_step.ravel() < count)
    step = at_step.ravel()[query]
    many = per_step[step]
    pair_query = np.repeat(query, many)
    within = np.arange(int(many.sum())) - np.repeat(np.cumsum(many) - many, many)
    pair_row = rows[np.repeat(first[step], many) + within]
    ego_xy = xy.reshape(-1, 2)[pair_query]
    hit = _boxes_overlap(ego_xy[:, 0], ego_xy[:, 1], heading.ravel()[pair_query], EGO_LENGTH_M, EGO_WIDTH_M,
                         np.asarray(actors["x_m"], dtype=np.float64)[pair_row],
                         np.asarray(actors["y_m"], dtype=np.float64)[pair_row],
                         np.asarray(actors["yaw_rad"], dtype=np.float64)[pair_row],
                         np.asarray(actors["length_m"], dtype=np.float64)[pair_row],
                         np.asarray(actors["width_m"], dtype=np.float64)[pair_row])
    # pair_query runs over (step, waypoint) in order: the first hit of each step is its earliest waypoint's
    hit_step = pair_query[hit] // horizon
    hit_steps, first_hit = np.unique(hit_step, return_index=True)
    collision[hit_steps] = True
    who[hit_steps] = np.asarray(actors["actor_id"], dtype=object)[pair_row[hit][first_hit]]
    return collision, who


def _boxes_overlap(ax: NDArray[np.float64], ay: NDArray[np.float64], ayaw: NDArray[np.float64],
                   al: float | NDArray[np.float64], aw: float | NDArray[np.float64],
                   bx: NDArray[np.float64], by: NDArray[np.float64], byaw: NDArray[np.float64],
                   bl: NDArray[np.float64], bw: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Whether oriented boxes (centre, yaw, length, width; metres, radians) overlap, pairwise (separating axes, as
    :func:`sim.scene.kernels.geometry.boxes_touch` for arrays)."""
    dx, dy = bx - ax, by - ay
    ca, sa, cb, sb = np.cos(ayaw), np.sin(ayaw), np.cos(byaw), np.sin(byaw)
    overlap = np.ones(len(dx), dtype=bool)
    for ux, uy in ((ca, sa), (-sa, ca), (cb, sb), (-sb, cb)):
        ra = 0.5 * al * np.abs(ca * ux + sa * uy) + 0.5 * aw * np.abs(-sa * ux + ca * uy)
        rb = 0.5 * bl * np.abs(cb * ux + sb * uy) + 0.5 * bw * np.abs(-sb * ux + cb * uy)
        overlap &= np.abs(dx * ux + dy * uy) <= ra + rb
    return overlap


def _off_lanes(xy: NDArray[np.float64], lane_graph: LaneGraph, margin_m: float) -> NDArray[np.bool_]:
    """Whether each point ``(M, 2)`` (map frame) is farther than half a lane's width plus ``margin_m`` from the
    centreline of every lane."""
    starts = np.concatenate([lane.centerline[:-1] for lane in lane_graph.lanes])
    ends = np.concatenate([lane.centerline[1:] for lane in lane_graph.lanes])
    reach = np.concatenate([np.full(len(lane.centerline) - 1, 0.5 * lane.width_m + margin_m)
                            for lane in lane_graph.lanes])
    segment = ends - starts
    length2 = np.maximum(np.sum(segment**2, axis=-1), 1e-12)
    off = np.ones(len(xy), dtype=bool)
    chunk = max(1, _PAIRS_PER_CHUNK // max(len(starts), 1))
    for begin in range(0, len(xy), chunk):
        relative = xy[begin:begin + chunk, None, :] - starts[None]
        t = np.clip(np.sum(relative * segment, axis=-1) / length2, 0.0, 1.0)
        distance2 = np.sum((relative - t[..., None] * segment) ** 2, axis=-1)
        off[begin:begin + chunk] = ~(distance2 <= reach**2).any(axis=1)
    return off


def _red_lights(path: NDArray[np.float64], at_step: NDArray[np.intp], light_states: NDArray[Any],
                lane_graph: LaneGraph) -> NDArray[np.bool_]:
    """Per step: whether a segment ``path[k] -> path[k + 1]`` of the predicted paths ``(T, K + 1, 2)`` (map frame)
    crosses, in the lane's direction, the stop line of a light-controlled lane whose light is red at the segment's
    end (``light_states[at_step[:, k]]``; segments ending past the log are not checked)."""
    count = len(path)
    lines = [(lane, lane.centerline[-1], lane.centerline[-1] - lane.centerline[-2]) for lane in lane_graph.lanes
             if lane.light_group is not None]
    if not lines or not count:
        return np.zeros(count, dtype=bool)
    center = np.array([c for _, c, _ in lines])
    direction = np.array([d / max(float(np.linalg.norm(d)), 1e-9) for _, _, d in lines])
    half = np.array([0.5 * lane.width_m for lane, _, _ in lines])
    group = np.array([lane.light_group for lane, _, _ in lines], dtype=np.intp)
    across = np.stack([-direction[:, 1], direction[:, 0]], axis=-1)
    start, end = path[:, :-1, None, :], path[:, 1:, None, :]  # (T, K, 1, 2) against the lines (L, 2)
    # signed distances of the segment's ends along the lane from the line: one behind (<= 0), the other past (> 0)
    before = np.sum((start - center) * direction, axis=-1)
    after = np.sum((end - center) * direction, axis=-1)
    crossing = (before <= 0.0) & (after > 0.0)
    fraction = before / np.where(crossing, before - after, 1.0)
    where = start + (end - start) * fraction[..., None]
    crossing &= np.abs(np.sum((where - center) * across, axis=-1)) <= half
    known = at_step < len(light_states)
    states = np.asarray(light_states)[np.minimum(at_step, len(light_states) - 1)][:, :, group]  # (T, K, L)
    red: NDArray[np.bool_] = (crossing & known[..., None] & (np.rint(states) == LightState.RED)).any(axis=(1, 2))
    return red
