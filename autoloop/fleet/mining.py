"""Trigger mining: find the moments of an episode worth a closer look, and turn each into a log-replay scenario.

Triggers (each a :class:`Trigger` at the step where it starts; one trigger per stretch, stretches closer than
``MERGE_S`` merge):

- ``hard_brake`` — the ego, moving, decelerates harder than ``HARD_BRAKE_MPS2`` (-4 m/s²);
- ``high_jerk`` — the ego's longitudinal jerk exceeds ``JERK_MPS3`` in magnitude for ``JERK_STEPS`` steps in a
  row (nuPlan's comfort bound, which Bench2Drive uses, is 4.13 m/s³; this flags what is well beyond it);
- ``near_miss`` — time to collision with an actor in the ego's path below ``NEAR_MISS_TTC_S`` (the gap along the
  ego's heading to an actor whose box overlaps the ego's corridor, over the speed at which the ego closes in);
- ``intervention`` — the log's takeover/disengagement flag turns on;
- ``infraction`` — an infraction the simulator recorded (sim episodes' events table), at its place; ``actor_id``
  is the actor involved.

:func:`replay_scenario` exports a trigger (or any step) as a :class:`~sim.scenarios.Scenario` on the log's map:
the ego's recorded path from a little before the trigger as its route (waypoints), the ego starting at its
recorded speed, and the actors around replayed (:class:`~sim.scenarios.events.LogReplay`): reactively (from
their state at that step on, driven by the world) or, ``reactive=False``, along their recorded tracks. It runs
in the embedded simulator like any other scenario, scored the same way. Sizes of replay worlds come from
:func:`sim.scenarios.suites.scenario_slots`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from autoloop.episodes import Episode, EpisodeStore
from autoloop.rollout import RouteRecorder, drive, expert_driver
from sim.maps import LaneGraph
from sim.metrics import Infraction, RouteRecord
from sim.scenarios import Scenario
from sim.scenarios.events import LogReplay, ReplayActor
from sim.scenarios.suites import scenario_slots

HARD_BRAKE_MPS2 = -4.0
#: Braking and jerk count while the ego moves at least this fast (not the last jolt of coming to a standstill).
MOVING_MPS = 1.0
JERK_MPS3 = 8.0
JERK_STEPS = 3
NEAR_MISS_TTC_S = 1.5
#: Triggers of one kind closer than this merge into one.
MERGE_S = 2.0
#: The ego's corridor for near misses: its half width plus this.
CORRIDOR_MARGIN_M = 0.3
EGO_LENGTH_M, EGO_WIDTH_M = 4.6, 2.0
_INFRACTIONS = {kind.value for kind in Infraction}


@dataclass(frozen=True)
class Trigger:
    """A moment worth a look: what (``kind``), when (``step``, ``time_s``), where (ego position), how much
    (``value``: the deceleration, jerk or time to collision; 1 for flags) and with whom (``actor_id``, or "")."""

    kind: str
    step: int
    time_s: float
    x_m: float
    y_m: float
    value: float
    actor_id: str = ""


def mine(episode: Episode) -> list[Trigger]:
    """Every trigger of ``episode``, in time order."""
    steps = episode.steps
    time = np.asarray(steps["time_s"], dtype=np.float64)
    found: list[Trigger] = []
    accel = np.asarray(steps["accel_mps2"], dtype=np.float64)
    moving = np.asarray(steps["speed_mps"], dtype=np.float64) >= MOVING_MPS
    found += _stretches(episode, "hard_brake", (accel < HARD_BRAKE_MPS2) & moving, accel, np.argmin)
    if len(time) > 2:
        jerk = np.gradient(accel, time)
        sustained = (np.convolve(np.abs(jerk) > JERK_MPS3, np.ones(JERK_STEPS), mode="same") >= JERK_STEPS) & moving
        found += _stretches(episode, "high_jerk", sustained, np.abs(jerk), np.argmax)
    if episode.actors is not None and len(episode.actors["step"]):
        ttc, actor = time_to_collision(episode)
        found += _stretches(episode, "near_miss", ttc < NEAR_MISS_TTC_S, ttc, np.argmin, actor)
    if "intervention" in steps:
        flag = np.asarray(steps["intervention"], dtype=bool)
        found += _stretches(episode, "intervention", flag, flag.astype(np.float64), np.argmax)
    events = episode.events
    if events is not None:  # infractions the simulator recorded (the events table of sim episodes)
        for k in range(len(events["time_s"])):
            if str(events["kind"][k]) not in _INFRACTIONS:
                continue
            step = min(int(np.searchsorted(time, float(events["time_s"][k]))), len(time) - 1)
            found.append(Trigger("infraction", step, float(time[step]), float(events["x_m"][k]),
                                 float(events["y_m"][k]), 1.0, str(events["actor_id"][k])))
    return sorted(found, key=lambda t: (t.time_s, t.kind))


def time_to_collision(episode: Episode) -> tuple[NDArray[np.float64], NDArray[np.object_]]:
    """Per step: the smallest time to collision with an actor in the ego's corridor ahead (``inf``: none) and
    that actor's id."""
    steps, actors = episode.steps, episode.actors
    assert actors is not None
    n = len(steps["time_s"])
    ttc = np.full(n, np.inf)
    who = np.full(n, "", dtype=object)
    step_of = np.asarray(actors["step"], dtype=np.int64)
    x, y = np.asarray(steps["x_m"], dtype=np.float64), np.asarray(steps["y_m"], dtype=np.float64)
    yaw, speed = np.asarray(steps["yaw_rad"], dtype=np.float64), np.asarray(steps["speed_mps"], dtype=np.float64)
    heading_x, heading_y = np.cos(yaw[step_of]), np.sin(yaw[step_of])
    dx, dy = actors["x_m"] - x[step_of], actors["y_m"] - y[step_of]
    ahead = dx * heading_x + dy * heading_y
    across = -dx * heading_y + dy * heading_x
    rel = np.asarray(actors["yaw_rad"], dtype=np.float64) - yaw[step_of]
    half_across = 0.5 * (np.asarray(actors["length_m"]) * np.abs(np.sin(rel)) +
                         np.asarray(actors["width_m"]) * np.abs(np.cos(rel)))
    half_along = 0.5 * (np.asarray(actors["length_m"]) * np.abs(np.cos(rel)) +
                        np.asarray(actors["width_m"]) * np.abs(np.sin(rel)))
    in_path = (np.abs(across) < 0.5 * EGO_WIDTH_M + CORRIDOR_MARGIN_M + half_across) & (ahead > 0.0)
    gap = ahead - 0.5 * EGO_LENGTH_M - half_along
    closing = speed[step_of] - np.asarray(actors["speed_mps"], dtype=np.float64) * np.cos(rel)
    candidate = in_path & (closing > 0.5)
    value = np.where(candidate, np.maximum(gap, 0.0) / np.maximum(closing, 1e-3), np.inf)
    for k in np.flatnonzero(np.isfinite(value)):
        s = step_of[k]
        if value[k] < ttc[s]:
            ttc[s], who[s] = value[k], actors["actor_id"][k]
    return ttc, who


def _stretches(episode: Episode, kind: str, mask: NDArray[np.bool_], value: NDArray[np.float64], pick: object,
               actor: NDArray[np.object_] | None = None) -> list[Trigger]:
    """One trigger per stretch of ``mask`` (stretches closer than ``MERGE_S`` merge), at its start, valued at its
    extreme (``pick``: ``np.argmin`` or ``np.argmax``)."""
    steps = episode.steps
    time = np.asarray(steps["time_s"], dtype=np.float64)
    found: list[Trigger] = []
    on = np.flatnonzero(mask)
    if not len(on):
        return found
    groups: list[list[int]] = [[int(on[0])]]
    for k in on[1:]:
        if time[k] - time[groups[-1][-1]] <= MERGE_S:
            groups[-1].append(int(k))
        else:
            groups.append([int(k)])
    for group in groups:
        first = group[0]
        extreme = group[int(pick(value[group]))]  # type: ignore[operator]
        found.append(Trigger(kind, first, float(time[first]), float(steps["x_m"][first]), float(steps["y_m"][first]),
                             float(value[extreme]), str(actor[extreme]) if actor is not None else ""))
    return found


def trigger_events(triggers: Sequence[Trigger]) -> dict[str, NDArray[np.generic]]:
    """Triggers as rows of an episode's ``events`` table (kind ``trigger:<kind>``)."""
    return {
        "time_s": np.array([t.time_s for t in triggers], dtype=np.float32),
        "kind": np.array([f"trigger:{t.kind}" for t in triggers], dtype=object),
        "x_m": np.array([t.x_m for t in triggers], dtype=np.float64),
        "y_m": np.array([t.y_m for t in triggers], dtype=np.float64),
        "actor_id": np.array([t.actor_id for t in triggers], dtype=object),
        "detail": np.array([f'{{"value": {t.value:.3f}}}' for t in triggers], dtype=object),
    }


def replay_scenario(episode: Episode, *, map_name: str, start_step: int = 0, horizon_s: float = 15.0,
                    radius_m: float = 60.0, waypoint_spacing_m: float = 5.0, reactive: bool = True) -> Scenario:
    """The episode from ``start_step`` on, for ``horizon_s`` seconds, as a log-replay scenario on ``map_name``
    (the log's map, registered: e.g. ``sim.maps.register_map(autoloop.fleet.av2.read_map(log_dir))``).

    Reactive (the default): the actors within ``radius_m`` of the ego at ``start_step`` start from their recorded
    state and the world drives them on. Non-reactive (``reactive=False``): every actor within ``radius_m`` of the
    ego at any step of the window replays its recorded track (see :func:`recorded_tracks`).

    :raises ValueError: when the ego drives less than a metre from ``start_step`` on (nothing to replay), or
        ``start_step`` is out of range.
    """
    steps = episode.steps
    count = len(steps["time_s"])
    if not 0 <= start_step < count:
        raise ValueError(f"episode {episode.episode_id}: start step {start_step} out of range (0..{count - 1})")
    time = np.asarray(steps["time_s"], dtype=np.float64)
    last = int(np.searchsorted(time, time[start_step] + horizon_s, side="right"))
    xy = np.stack([steps["x_m"][start_step:last], steps["y_m"][start_step:last]], axis=-1).astype(np.float64)
    travelled = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])
    if travelled[-1] < 1.0:
        raise ValueError(f"episode {episode.episode_id}: the ego drives {travelled[-1]:.2f} m from step "
                         f"{start_step} on; a replay needs a route of at least 1 m")
    marks = np.arange(0.0, travelled[-1], waypoint_spacing_m)
    points = [xy[int(np.searchsorted(travelled, m))] for m in marks] + [xy[-1]]
    waypoints = tuple((round(float(p[0]), 3), round(float(p[1]), 3)) for p in points)
    actors: list[ReplayActor] = []
    if not reactive:
        actors = recorded_tracks(episode, start_step, last, radius_m)
    elif episode.actors is not None:
        table = episode.actors
        here = np.flatnonzero(np.asarray(table["step"]) == start_step)
        ego = xy[0]
        for k in here:
            if np.hypot(table["x_m"][k] - ego[0], table["y_m"][k] - ego[1]) > radius_m:
                continue
            actors.append(ReplayActor(
                actor_id=str(table["actor_id"][k]), kind=str(table["kind"][k]),
                x_m=round(float(table["x_m"][k]), 3), y_m=round(float(table["y_m"][k]), 3),
                yaw_rad=round(float(table["yaw_rad"][k]), 4), speed_mps=round(float(table["speed_mps"][k]), 3),
                length_m=round(float(table["length_m"][k]), 3), width_m=round(float(table["width_m"][k]), 3)))
    duration = float(time[last - 1] - time[start_step])
    replay = LogReplay(trigger_s_m=0.0, name=f"{episode.episode_id}@{start_step}", reactive=reactive,
                       ego_speed_mps=round(float(steps["speed_mps"][start_step]), 3), actors=tuple(actors))
    # (the route, start and end come from the waypoints: Scenario lays them on the map)
    return Scenario.model_validate({
        "map_name": map_name, "waypoints": waypoints, "traffic_vehicles": 0, "pedestrians": 0, "traffic_seed": 0,
        "timeout_s": round(2.0 * duration + 20.0, 1), "events": (replay,)})


#: An actor unseen for longer than this is two tracks (it left the scene and came back).
TRACK_GAP_S = 0.5


def recorded_tracks(episode: Episode, start_step: int, stop_step: int, radius_m: float) -> list[ReplayActor]:
    """The recorded tracks of the actors seen within ``radius_m`` of the ego at some step of
    ``start_step <= step < stop_step``, as :class:`ReplayActor` s with times from ``start_step``'s: each actor's
    observed samples of the window (not only those near the ego), split where it goes unseen for more than
    ``TRACK_GAP_S``. Pose and box are its first sample's."""
    table = episode.actors
    if table is None:
        return []
    steps = episode.steps
    step = np.asarray(table["step"])
    window = (step >= start_step) & (step < stop_step)
    if "observed" in table:
        window &= np.asarray(table["observed"], dtype=bool)
    rows = np.flatnonzero(window)
    if len(rows) == 0:
        return []
    at = step[rows]
    time = np.asarray(steps["time_s"], dtype=np.float64)
    x, y = np.asarray(table["x_m"], dtype=np.float64)[rows], np.asarray(table["y_m"], dtype=np.float64)[rows]
    near = np.hypot(x - np.asarray(steps["x_m"], dtype=np.float64)[at],
                    y - np.asarray(steps["y_m"], dtype=np.float64)[at]) <= radius_m
    ids = np.asarray(table["actor_id"], dtype=object)[rows]
    wanted = set(ids[near])
    yaw = np.asarray(table["yaw_rad"], dtype=np.float64)[rows]
    speed = np.asarray(table["speed_mps"], dtype=np.float64)[rows]
    kinds = np.asarray(table["kind"], dtype=object)[rows]
    length, width = np.asarray(table["length_m"])[rows], np.asarray(table["width_m"])[rows]
    t = time[at] - time[start_step]
    actors: list[ReplayActor] = []
    order = np.lexsort((t, ids.astype(str)))
    bounds = np.flatnonzero(np.concatenate([[True], ids[order][1:] != ids[order][:-1], [True]]))
    for first, stop in itertools.pairwise(bounds):
        own = order[first:stop]
        actor_id = str(ids[own[0]])
        if actor_id not in wanted:
            continue
        own = own[np.concatenate([[True], np.diff(t[own]) > 0.0])]  # one sample per time
        cuts = np.flatnonzero(np.diff(t[own]) > TRACK_GAP_S) + 1
        for part, piece in enumerate(np.split(own, cuts)):
            k = piece[0]
            track = tuple((round(float(t[j]), 3), round(float(x[j]), 3), round(float(y[j]), 3),
                           round(float(yaw[j]), 4), round(max(float(speed[j]), 0.0), 3)) for j in piece)
            actors.append(ReplayActor(
                actor_id=actor_id if part == 0 else f"{actor_id}#{part}", kind=str(kinds[k]),
                x_m=track[0][1], y_m=track[0][2], yaw_rad=track[0][3], speed_mps=track[0][4],
                length_m=round(float(length[k]), 3), width_m=round(float(width[k]), 3), track=track))
    return actors


def drive_replay(scenario: Scenario) -> RouteRecord:
    """Drive a log-replay scenario with the privileged expert on its map (registered, e.g. by :func:`stored_map`);
    its Leaderboard record."""
    [route] = drive([scenario], driver=expert_driver, recorder=RouteRecorder(),
                    world=scenario_slots([scenario]), batch_size=1)
    return route.record


def stored_map(store: EpisodeStore, map_id: str) -> LaneGraph:
    """The lane graph ``map_id`` as this process knows it: the one registered under that name, else the store's,
    registered (so that scenarios naming it run)."""
    from sim.maps import get_map, register_map

    try:
        return get_map(map_id)
    except (ValueError, OSError):
        return register_map(store.get_map(map_id))


def save_triggers(store: EpisodeStore, episode_id: str, triggers: Sequence[Trigger],
                  replays: Sequence[str] = ()) -> Path:
    """Tag a stored episode with its mined triggers: ``<store>/triggers/<episode_id>.parquet`` (the ``triggers``
    view of :meth:`EpisodeStore.query`), replacing an earlier mining of it. Episodes themselves stay as written
    (their snapshots' hashes hold); ``replays`` gives the exported replay scenario of each trigger ("" for none)."""
    import os
    import uuid

    import pyarrow as pa
    import pyarrow.parquet as pq

    store.manifest(episode_id)  # (a KeyError for an episode the store does not hold)
    table = pa.table({
        "episode_id": pa.array([episode_id] * len(triggers), pa.string()),
        "kind": pa.array([t.kind for t in triggers], pa.string()),
        "step": pa.array([t.step for t in triggers], pa.int32()),
        "time_s": pa.array([t.time_s for t in triggers], pa.float32()),
        "x_m": pa.array([t.x_m for t in triggers], pa.float64()),
        "y_m": pa.array([t.y_m for t in triggers], pa.float64()),
        "value": pa.array([t.value for t in triggers], pa.float64()),
        "actor_id": pa.array([t.actor_id for t in triggers], pa.string()),
        "replay": pa.array(list(replays) if replays else [""] * len(triggers), pa.string()),
    })
    folder = store.root / "triggers"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{episode_id}.parquet"
    temporary = folder / f".{episode_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        pq.write_table(table, temporary, compression="zstd")
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    return final
