"""Numba kernels of the embedded world: a loop over a range of scenarios (the world runs disjoint ranges on
threads; the kernels release the GIL), plain loops over each scenario's actors inside.

The kernels never allocate, so they are compiled without numba's reference-counting runtime (``_nrt=False``):
with it, taking an array out of the state tuple or slicing it increments and decrements a shared counter
atomically, and those calls took over 80 % of the step (about 8x slower, and worse with more threads). An
allocation added to a kernel fails to compile instead of silently bringing the runtime back. Small helpers are
inlined; the larger parts of a step are functions of their own (inlining them too ran about 20 % faster but took
2.5 times as long to compile). Every scenario's update reads and
writes only its own rows, in the same order whatever the batch size, so a scenario's trajectory does not depend
on the batch it runs in. Random draws during the run (route choices, respawns) come from a counter-based hash of
the scenario seed, the actor slot and a per-actor counter.

Actor slots per scenario: ``[0, V)`` vehicles, ``[V, V + P)`` pedestrians, ``[V + P, N)`` static obstacles.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from sim.embedded.compiled import MAX_QUERY_REACH_M, MapArrays
from sim.geometry import FloatArray

# actor kinds
NONE, VEHICLE, PEDESTRIAN, STATIC = 0, 1, 2, 3
# light states (sim.embedded.traffic.LightState)
GREEN, YELLOW, RED = 0, 1, 2
# next-control kinds for the ego
LINE_NONE, LINE_LIGHT, LINE_STOP = 0, 1, 2
# infraction indices (sim.embedded.world.INFRACTIONS order)
INF_PEDESTRIAN, INF_VEHICLE, INF_STATIC, INF_RED, INF_STOP, INF_EMERGENCY, INF_MISSED_STOP = 0, 1, 2, 3, 4, 6, 12
# route status codes (sim.embedded.world.STATUSES order; -1 running)
RUNNING, COMPLETED, DEVIATION, BLOCKED, TIMEOUT = -1, 0, 1, 2, 3
#: Events a scenario may record in one step.
MAX_EVENTS = 8
#: Collision locations remembered per scenario.
MAX_REGISTERED = 8
#: Lanes one located point may occupy.
MAX_LOCATED = 4
#: Checkpoints of the minimum-speed test along a route (Leaderboard 2.0 route scenarios use 4).
MIN_SPEED_SECTIONS = 4
#: Vehicles yield to anyone who goes on (no stop sign, no red light) and reaches a conflicting junction lane first,
#: within this time.
APPROACH_S = 3.0
#: The ego also yields to a vehicle that ignores lights or priority and reaches a conflicting junction lane up to
#: this long after the ego would.
RUDE_MARGIN_S = 3.0
#: Moving pedestrians on the road also occupy where they will be this much later.
PED_LOOKAHEAD_S = 2.0
#: The ego looks for obstacles (static, parked) to pass this far ahead on its route ...
NUDGE_LOOKAHEAD_M = 35.0
#: ... passes them with this lateral clearance ...
NUDGE_CLEARANCE_M = 0.6
#: ... moving sideways this far per metre driven, keeping this much more room to the obstacles while it does.
NUDGE_RATE = 0.35
NUDGE_SLACK_M = 4.0
# scripted-vehicle flags (State.veh_flags)
HIDDEN, IGNORE_LIGHTS, IGNORE_PRIORITY, FOLLOW_ROUTE, CUT_IN, EMERGENCY, KEEP_OFFSET, NO_CURB_YIELD = \
    1, 2, 4, 8, 16, 32, 64, 128
#: Sideways speed of a vehicle pulling out of a parking place into its lane.
CUT_IN_LATERAL_MPS = 1.0
#: An emergency vehicle passes the ego on the left with this offset from its lane's centre, moving sideways at
#: this speed, when the ego has pulled over (its left side at least this far right of the emergency vehicle's).
EMERGENCY_OFFSET_M = 2.0
EMERGENCY_LATERAL_MPS = 1.5
EMERGENCY_ROOM_M = 0.4
#: The ego yields to an emergency vehicle this close behind it by pulling over this far to the right ...
EMERGENCY_NOTICE_M = 45.0
PULL_OVER_M = 0.8
#: ... and fails to yield when the emergency vehicle stays within this distance behind it this long.
EMERGENCY_CLOSE_M = 15.0
EMERGENCY_PATIENCE_S = 6.0
#: A curbside stop is served by standing (below this speed) its dwell time within its tolerance ...
CURBSIDE_STILL_MPS = 0.3
#: ... and missed once the ego is this far past its tolerance without having served it.
CURBSIDE_MISSED_M = 3.0
#: The ego pulls towards the curb for a curbside stop this far before it.
CURBSIDE_APPROACH_M = 40.0
#: Off its lane at the curb, the ego waits to merge while a vehicle coming along its lane is this close in time ...
MERGE_GAP_S = 4.5
#: ... or in distance.
MERGE_GAP_M = 12.0
#: The ego keeps this much room to oncoming vehicles that invade its lane, moving right (within its lane) for them.
INVADER_CLEARANCE_M = 0.3
INF = np.inf


class Params(NamedTuple):
    """Scalar parameters of a world (see :class:`sim.embedded.world.WorldConfig`)."""

    dt: float
    ego_length: float
    ego_width: float
    wheelbase: float
    rear_to_center: float
    max_steer: float
    max_steer_rate: float
    max_accel: float
    max_brake: float
    max_speed: float
    idm_accel: float
    idm_comfort: float
    idm_max_decel: float
    idm_gap: float
    idm_headway: float
    idm_delta: float
    route_deviation: float
    blocked_s: float
    completion_tol: float
    green_s: float
    yellow_s: float
    all_red_s: float
    horizon: float
    collision_time_s: float
    collision_area_m: float
    collision_forget_m: float
    stop_speed: float
    stop_distance: float
    min_speed_radius: float


# ---------------------------------------------------------------------------------------------------- helpers
@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(_nrt=False, cache=True)
def uniform(seed: int, slot: int, counter: int) -> float:
    """A uniform draw in [0, 1) from (seed, slot, counter)."""
    z = _mix(np.uint64(seed) ^ _mix(np.uint64(slot) * np.uint64(0x100000001B3) + np.uint64(counter)))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(_nrt=False, cache=True)
def lane_pose(m: MapArrays, lane: int, s: float) -> tuple[float, float, float]:
    """Point and heading at arc length ``s`` on ``lane`` (clamped to the lane)."""
    k0 = m.lane_offset[lane]
    count = m.lane_offset[lane + 1] - k0
    ds = m.lane_ds[lane]
    t = s / ds if ds > 0 else 0.0
    i = math.floor(t)
    if i < 0:
        i = 0
    if i > count - 2:
        i = count - 2
    frac = min(max(t - i, 0.0), 1.0)
    k = k0 + i
    x = m.pts_x[k] + frac * (m.pts_x[k + 1] - m.pts_x[k])
    y = m.pts_y[k] + frac * (m.pts_y[k + 1] - m.pts_y[k])
    return x, y, m.pts_heading[k]


@njit(_nrt=False, cache=True)
def locate(m: MapArrays, x: float, y: float, reach: float, out_lane: Any, out_s: Any, out_lat: Any,
           out_heading: Any, best: Any) -> int:
    """Lanes whose extent covers ``(x, y)`` within half their width plus ``reach``: their ids, the arc length and
    signed lateral offset there, and the lane heading; returns how many (at most ``len(out_lane)``), nearest kept
    per lane. Points beyond a lane's start or end are not on it."""
    meta = m.grid_meta
    cx = math.floor((x - meta[0]) / meta[2])
    cy = math.floor((y - meta[1]) / meta[2])
    nx, ny = int(meta[3]), int(meta[4])
    if cx < 0 or cy < 0 or cx >= nx or cy >= ny:
        return 0
    cell = cy * nx + cx
    found = 0
    for item in range(m.grid_offset[cell], m.grid_offset[cell + 1]):
        k = m.grid_items[item]
        lane = m.seg_lane[k]
        ax, ay = m.pts_x[k], m.pts_y[k]
        dx, dy = m.pts_x[k + 1] - ax, m.pts_y[k + 1] - ay
        len2 = dx * dx + dy * dy
        if len2 < 1e-12:
            continue
        rx, ry = x - ax, y - ay
        t = (rx * dx + ry * dy) / len2
        first = k == m.lane_offset[lane]
        last = k + 2 == m.lane_offset[lane + 1]
        if (t < 0.0 and first) or (t > 1.0 and last):
            continue
        t = min(max(t, 0.0), 1.0)
        px, py = rx - t * dx, ry - t * dy
        dist = math.sqrt(px * px + py * py)
        if dist > 0.5 * m.lane_width[lane] + reach:
            continue
        cross = dx * ry - dy * rx
        s = (k - m.lane_offset[lane] + t) * m.lane_ds[lane]
        slot = -1
        for j in range(found):
            if out_lane[j] == lane:
                slot = j
                break
        if slot < 0:
            if found == len(out_lane):
                worst = 0
                for j in range(found):
                    if best[j] > best[worst]:
                        worst = j
                if best[worst] <= dist:
                    continue
                slot = worst
            else:
                slot = found
                found += 1
        elif best[slot] <= dist:
            continue
        best[slot] = dist
        out_lane[slot] = lane
        out_s[slot] = s
        out_lat[slot] = dist if cross >= 0 else -dist
        out_heading[slot] = m.pts_heading[k]
    return found


@njit(_nrt=False, cache=True)
def wrap(angle: float) -> float:
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


@njit(_nrt=False, cache=True)
def idm(p: Params, v: float, desired: float, gap: float, leader_v: float) -> float:
    closing = v - leader_v
    want = p.idm_gap + max(0.0, v * p.idm_headway + v * closing / (2.0 * math.sqrt(p.idm_accel * p.idm_comfort)))
    free = 1.0 - (v / max(desired, 0.1)) ** p.idm_delta
    interaction = 0.0 if gap == INF else (want / max(gap, 0.1)) ** 2
    return min(max(p.idm_accel * (free - interaction), -p.idm_max_decel), p.idm_accel)


@njit(_nrt=False, cache=True)
def boxes_touch(ax: float, ay: float, ayaw: float, al: float, aw: float,
                bx: float, by: float, byaw: float, bl: float, bw: float) -> bool:
    """Whether two oriented boxes overlap (separating axis test)."""
    dx, dy = bx - ax, by - ay
    if dx * dx + dy * dy > 0.25 * (al + aw + bl + bw) ** 2:
        return False
    ca, sa, cb, sb = math.cos(ayaw), math.sin(ayaw), math.cos(byaw), math.sin(byaw)
    axes = ((ca, sa), (-sa, ca), (cb, sb), (-sb, cb))
    for ux, uy in axes:
        ra = 0.5 * al * abs(ca * ux + sa * uy) + 0.5 * aw * abs(-sa * ux + ca * uy)
        rb = 0.5 * bl * abs(cb * ux + sb * uy) + 0.5 * bw * abs(-sb * ux + cb * uy)
        if abs(dx * ux + dy * uy) > ra + rb:
            return False
    return True


# ---------------------------------------------------------------------------------------------------- the step
@njit(_nrt=False, cache=True, nogil=True)
def step(m: MapArrays, w: Any, p: Params, actions: FloatArray, active: Any, first: int, stop: int) -> None:
    """Advance the active scenarios ``first <= b < stop`` by one ``dt`` (``w``: :class:`sim.embedded.world.State`).

    Releases the GIL: the world runs disjoint ranges of scenarios on several threads."""
    for b in range(first, stop):
        _step_one(m, w, p, actions[b, 0], actions[b, 1], active[b], b)


@njit(_nrt=False, cache=True, nogil=True)
def refresh(m: MapArrays, w: Any, p: Params, envs: Any) -> None:
    """Recompute poses, lights, occupancy and the ego's view of the given scenarios (after a reset)."""
    for i in range(len(envs)):
        _refresh_one(m, w, p, envs[i])


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _step_one(m: MapArrays, w: Any, p: Params, steer: float, accel: float, active: bool, b: int) -> None:
    w.ev_n[b] = 0
    if not active:
        return
    _ego_dynamics(w, p, b, steer, accel)
    w.time[b] += p.dt
    _triggers(m, w, b)
    _lights(m, w, p, b)
    _vehicles(m, w, p, b)
    _pedestrians(m, w, p, b)
    _tracks(w, b)
    _respawn(m, w, p, b)
    _project_ego(w, b)
    _occupancy(m, w, p, b)
    _ego_nudge(m, w, p, b)
    _ego_view(m, w, p, b)
    _approaching(m, w, b)
    _detect(m, w, p, b)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _refresh_one(m: MapArrays, w: Any, p: Params, b: int) -> None:
    _lights(m, w, p, b)
    for v in range(w.veh_lane.shape[1]):
        if w.act_valid[b, v]:
            _vehicle_pose(m, w, b, v)
    for q in range(w.ped_walk.shape[1]):
        if w.act_valid[b, w.veh_lane.shape[1] + q]:
            _pedestrian_pose(m, w, b, q)
    _tracks(w, b)
    _project_ego(w, b)
    _occupancy(m, w, p, b)
    _ego_nudge(m, w, p, b)
    _ego_view(m, w, p, b)
    _approaching(m, w, b)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _ego_dynamics(w: Any, p: Params, b: int, steer_cmd: float, accel_cmd: float) -> None:
    steer_cmd = min(max(steer_cmd, -1.0), 1.0)
    accel_cmd = min(max(accel_cmd, -1.0), 1.0)
    max_delta = p.max_steer_rate * p.dt
    steer = w.ego_steer[b] + min(max(steer_cmd * p.max_steer - w.ego_steer[b], -max_delta), max_delta)
    accel = accel_cmd * p.max_accel if accel_cmd >= 0.0 else accel_cmd * p.max_brake
    v0 = w.ego_v[b]
    v1 = min(max(v0 + accel * p.dt, 0.0), p.max_speed)
    mean_v = 0.5 * (v0 + v1)
    slip = math.atan(p.rear_to_center / p.wheelbase * math.tan(steer))
    yaw_rate = mean_v * math.sin(slip) / p.rear_to_center
    yaw_mid = w.ego_yaw[b] + 0.5 * yaw_rate * p.dt
    w.ego_x[b] += mean_v * math.cos(yaw_mid + slip) * p.dt
    w.ego_y[b] += mean_v * math.sin(yaw_mid + slip) * p.dt
    w.ego_yaw[b] += yaw_rate * p.dt
    w.ego_v[b] = v1
    w.ego_steer[b] = steer
    w.ego_accel[b] = (v1 - v0) / p.dt


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _lights(m: MapArrays, w: Any, p: Params, b: int) -> None:
    phase_s = p.green_s + p.yellow_s + p.all_red_s
    forced = w.time[b] < w.force_until[b]
    for g in range(w.lights.shape[1]):
        if forced and w.light_force[b, g] >= 0:  # a scenario event sets this junction's lights
            w.lights[b, g] = w.light_force[b, g]
            continue
        j = m.light_junction[g]
        cycle = phase_s * m.junction_phases[j]
        t = (w.time[b] + w.light_offset[b, j]) % cycle - phase_s * m.light_phase[g]
        if 0.0 <= t < p.green_s:
            w.lights[b, g] = GREEN
        elif p.green_s <= t < p.green_s + p.yellow_s:
            w.lights[b, g] = YELLOW
        else:
            w.lights[b, g] = RED


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _triggers(m: MapArrays, w: Any, b: int) -> None:
    """Set off the events armed for actors once the ego's route progress reaches their trigger: reveal a hidden
    vehicle where, at its speed, it meets the ego (at the ego's present speed) at the planned point (when that
    is before the start of its lanes, it appears there once it would have got there); start a hard brake; start
    a pedestrian so that it gets to the planned point when the ego does; hold a junction's lights."""
    progress = w.progress[b]
    for v in range(w.veh_lane.shape[1]):
        if progress >= w.veh_expire[b, v]:  # an event's actor leaves once its part is over
            w.act_valid[b, v] = w.veh_pending[b, v] = False
            w.veh_expire[b, v] = w.veh_reveal_at[b, v] = INF
        if w.time[b] >= w.veh_reveal_at[b, v]:
            w.veh_reveal_at[b, v] = INF
            w.act_valid[b, v] = True
            _vehicle_pose(m, w, b, v)
        if not w.veh_pending[b, v] or progress < w.veh_trigger[b, v]:
            continue
        w.veh_pending[b, v] = False
        if w.veh_flags[b, v] & CUT_IN:
            w.veh_parked[b, v] = False
        if w.veh_flags[b, v] & HIDDEN:
            early = 0.0
            if w.veh_meet_s[b, v] >= 0.0:
                arrival = max(w.veh_meet_route[b, v] - progress, 0.0) / max(w.ego_v[b], 1.0)
                s = w.veh_meet_s[b, v] - w.act_v[b, v] * arrival
                early = max(-s, 0.0) / max(w.act_v[b, v], 0.1)
                s = max(s, 0.0)
                while s > m.lane_length[w.veh_lane[b, v, 0]] and w.veh_lane[b, v, 1] >= 0:
                    s -= m.lane_length[w.veh_lane[b, v, 0]]
                    w.veh_lane[b, v, 0], w.veh_lane[b, v, 1] = w.veh_lane[b, v, 1], w.veh_lane[b, v, 2]
                    w.veh_lane[b, v, 2] = _choose_successor(m, w, b, v, w.veh_lane[b, v, 1])
                w.veh_s[b, v] = s
            if early > 0.0:
                w.veh_reveal_at[b, v] = w.time[b] + early
            else:
                w.act_valid[b, v] = True
                _vehicle_pose(m, w, b, v)
        if w.veh_brake_decel[b, v] > 0.0:
            w.veh_brake_until[b, v] = w.time[b] + w.act_v[b, v] / w.veh_brake_decel[b, v] + w.veh_brake_hold[b, v]
    for q in range(w.ped_walk.shape[1]):
        if not w.ped_pending[b, q] or progress < w.ped_trigger[b, q]:
            continue
        w.ped_pending[b, q] = False
        arrival = max(w.ped_meet_route[b, q] - progress, 0.0) / max(w.ego_v[b], 1.0)
        w.ped_start[b, q] = w.time[b] + max(arrival - w.ped_meet_walk[b, q] / w.ped_speed[b, q], 0.0)
    if w.force_pending[b] and progress >= w.force_trigger[b]:
        w.force_pending[b] = False
        w.force_until[b] = w.time[b] + w.force_hold[b]


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _vehicle_pose(m: MapArrays, w: Any, b: int, v: int) -> None:
    x, y, heading = lane_pose(m, w.veh_lane[b, v, 0], w.veh_s[b, v])
    offset = w.veh_offset[b, v]
    w.act_x[b, v] = x - offset * math.sin(heading)
    w.act_y[b, v] = y + offset * math.cos(heading)
    w.act_yaw[b, v] = heading


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _choose_successor(m: MapArrays, w: Any, b: int, v: int, lane: int) -> int:
    if lane < 0:
        return -1
    first, last = m.succ_offset[lane], m.succ_offset[lane + 1]
    if first == last:
        return -1
    if w.veh_flags[b, v] & FOLLOW_ROUTE:
        for r in range(w.piece_n[b] - 1):
            if w.piece_lane[b, r] == lane:
                for k in range(first, last):
                    if m.succ[k] == w.piece_lane[b, r + 1]:
                        return m.succ[k]
    draw = uniform(w.seed[b], v, w.veh_draws[b, v])
    w.veh_draws[b, v] += 1
    return m.succ[first + min(int(draw * (last - first)), last - first - 1)]


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _junction_busy(m: MapArrays, w: Any, b: int, lane: int, self_actor: int) -> bool:
    """Whether a vehicle (or the ego) occupies a junction lane that conflicts with ``lane``."""
    for k in range(w.occ_n[b]):
        if w.occ_actor[b, k] == self_actor or w.occ_kind[b, k] != VEHICLE:
            continue
        if m.conflict[lane, w.occ_lane[b, k]]:
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _earlier_waiter(m: MapArrays, w: Any, b: int, lane: int, self_actor: int, arrival: float) -> bool:
    """Whether someone stopped at a stop sign earlier waits to enter a junction lane conflicting with ``lane``."""
    for v in range(w.veh_lane.shape[1]):
        if v == self_actor or not w.act_valid[b, v] or w.veh_served[b, v] < 0:
            continue
        if w.veh_lane[b, v, 0] != w.veh_served[b, v] or w.veh_lane[b, v, 1] < 0:
            continue
        nxt = w.veh_lane[b, v, 1]
        if not (m.conflict[lane, nxt] or nxt == lane):
            continue
        if w.veh_arrival[b, v] < arrival or (w.veh_arrival[b, v] == arrival and v < self_actor):
            return True
    if self_actor >= 0 and w.ego_served[b] and w.ego_wait_lane[b] >= 0:
        nxt = w.ego_wait_lane[b]
        if (m.conflict[lane, nxt] or nxt == lane) and w.ego_arrival[b] <= arrival:
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _box_blocked(m: MapArrays, p: Params, junction_lane: int, leader_from_entry: float, leader_speed: float,
                 length: float) -> bool:
    """Don't block the junction: a standing leader less than the junction lane plus a car length past the entry
    leaves no room to clear it."""
    return leader_speed < 1.0 and leader_from_entry < m.lane_length[junction_lane] + length + p.idm_gap


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _goes_on(m: MapArrays, w: Any, b: int, approach: int) -> bool:
    """Whether traffic on ``approach`` enters its junction without stopping: no stop sign and no red light."""
    if m.lane_stop[approach]:
        return False
    group = m.lane_light[approach]
    return group < 0 or w.lights[b, group] != RED


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _must_yield(m: MapArrays, w: Any, b: int, approach: int, junction_lane: int, actor: int, arrival: float,
                time_to_entry: float) -> bool:
    """Whether an actor about to enter ``junction_lane`` from ``approach`` (``time_to_entry`` seconds away) must
    wait: a conflicting junction lane is occupied; or, at a stop sign, someone who stopped earlier waits for a
    conflicting lane; or someone who goes on (no stop sign, no red light) reaches a conflicting lane within
    ``APPROACH_S`` and before this actor (before it at all, if this actor has a stop sign)."""
    if _junction_busy(m, w, b, junction_lane, actor):
        return True
    if m.lane_stop[approach] and _earlier_waiter(m, w, b, junction_lane, actor, arrival):
        return True
    yielding = bool(m.lane_stop[approach])
    for k in range(w.appr_n[b]):
        other = w.appr_actor[b, k]
        if other == actor or not m.conflict[junction_lane, w.appr_lane[b, k]]:
            continue
        theirs = w.appr_tte[b, k]
        if yielding or theirs < time_to_entry or (theirs == time_to_entry and other < actor):
            return True
        if actor < 0 and w.appr_rude[b, k] and theirs < time_to_entry + RUDE_MARGIN_S:
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _approaching(m: MapArrays, w: Any, b: int) -> None:
    """Who is about to enter a junction without stopping (no stop sign, no red light, moving, within
    ``APPROACH_S``): their junction lane and time to entry, for :func:`_must_yield`."""
    count = 0
    for v in range(w.veh_lane.shape[1]):
        if not w.act_valid[b, v] or w.veh_parked[b, v]:
            continue
        here, nxt = w.veh_lane[b, v, 0], w.veh_lane[b, v, 1]
        speed = w.act_v[b, v]
        if nxt < 0 or speed < 1.0 or m.lane_junction[here] >= 0 or m.lane_junction[nxt] < 0:
            continue
        tte = (m.lane_length[here] - w.veh_s[b, v] - 0.5 * w.act_len[b, v]) / speed
        rude = (w.veh_flags[b, v] & (IGNORE_LIGHTS | IGNORE_PRIORITY)) != 0
        # (a front already in the junction counts until the vehicle occupies its junction lane: no gap between
        # approaching and occupying in which it goes unseen)
        if tte < APPROACH_S and (rude or _goes_on(m, w, b, here)):
            w.appr_actor[b, count], w.appr_lane[b, count], w.appr_tte[b, count] = v, nxt, tte
            w.appr_rude[b, count] = rude
            count += 1
    lane = w.ego_jlane[b]
    if lane >= 0 and w.ego_v[b] >= 1.0 and _goes_on(m, w, b, w.ego_japproach[b]):
        tte = w.ego_jdist[b] / w.ego_v[b]
        if -0.5 <= tte < APPROACH_S:
            w.appr_actor[b, count], w.appr_lane[b, count], w.appr_tte[b, count] = -1, lane, tte
            w.appr_rude[b, count] = False
            count += 1
    w.appr_n[b] = count


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _vehicles(m: MapArrays, w: Any, p: Params, b: int) -> None:
    for v in range(w.veh_lane.shape[1]):
        if not w.act_valid[b, v] or w.veh_parked[b, v]:
            continue
        l0, l1, l2 = w.veh_lane[b, v, 0], w.veh_lane[b, v, 1], w.veh_lane[b, v, 2]
        s, speed, half = w.veh_s[b, v], w.act_v[b, v], 0.5 * w.act_len[b, v]
        gap, lead_v, lead_kind, lead = INF, 0.0, NONE, -1
        len0 = m.lane_length[l0]
        len1 = m.lane_length[l1] if l1 >= 0 else 0.0
        flags = w.veh_flags[b, v]
        # an emergency vehicle squeezes past an ego that has pulled over to the right
        passes_ego = False
        if flags & EMERGENCY:  # (the ego's box reaches this far left of the route, at its angle to it)
            rel = w.ego_yaw[b] - w.act_yaw[b, v]
            reach = w.lateral[b] + 0.5 * p.ego_length * abs(math.sin(rel)) + 0.5 * p.ego_width * abs(math.cos(rel))
            passes_ego = reach < w.veh_offset[b, v] - 0.5 * w.act_wid[b, v] - EMERGENCY_ROOM_M
        # a vehicle with the right of way along the ego's route does not brake for the ego pulling out of the curb
        ignores_ego = passes_ego or ((flags & NO_CURB_YIELD) != 0 and w.lateral[b] < -1.0)
        for k in range(w.occ_n[b]):
            if ignores_ego and w.occ_actor[b, k] == -1:
                continue
            lane = w.occ_lane[b, k]
            if lane == l0:
                d = w.occ_s[b, k] - s
            elif lane == l1 and l1 >= 0:
                d = len0 - s + w.occ_s[b, k]
            elif lane == l2 and l2 >= 0:
                d = len0 - s + len1 + w.occ_s[b, k]
            else:
                continue
            if w.occ_actor[b, k] == v or d <= half or d > p.horizon:  # centres beside the front half are passed
                continue
            bumper = d - half - w.occ_half[b, k]
            if bumper < gap:
                gap, lead_v, lead_kind, lead = bumper, w.occ_speed[b, k], w.occ_kind[b, k], w.occ_actor[b, k]
        # in contact with the ego (a crash), a vehicle stands until the ego has left it, and stays on the map: it
        # does not drive on inside the ego's box (where the Leaderboard's collision rules would count the one crash
        # again every few seconds); one the ego ran into from behind (the ego's centre behind its rear bumper)
        # drives on
        behind = (w.ego_x[b] - w.act_x[b, v]) * math.cos(w.act_yaw[b, v]) + \
            (w.ego_y[b] - w.act_y[b, v]) * math.sin(w.act_yaw[b, v]) < -half
        crashed = not passes_ego and not behind and boxes_touch(
            w.ego_x[b], w.ego_y[b], w.ego_yaw[b], p.ego_length, p.ego_width, w.act_x[b, v], w.act_y[b, v],
            w.act_yaw[b, v], w.act_len[b, v], w.act_wid[b, v])
        if gap < 8.0 and speed < 0.5 and w.veh_respawn[b, v] and not crashed:
            blocked = lead >= 0 and (w.act_kind[b, lead] == STATIC
                                     or (lead < w.veh_lane.shape[1] and w.veh_parked[b, lead]))
            head_on = lead == -1 and math.cos(w.ego_yaw[b] - w.act_yaw[b, v]) < -0.5
            if blocked or head_on:  # background traffic leaves a lane that an obstacle, or the ego passing one,
                w.act_valid[b, v] = False  # blocks (and comes back elsewhere)
                continue
        if crashed:
            gap, lead_v, lead_kind, lead = 0.0, 0.0, VEHICLE, -1
        lawful, polite = (flags & IGNORE_LIGHTS) == 0, (flags & IGNORE_PRIORITY) == 0
        stop = INF
        offset = 0.0
        for k in range(2):
            here = w.veh_lane[b, v, k]
            nxt = w.veh_lane[b, v, k + 1]
            if here < 0 or nxt < 0:
                break
            end_d = offset + m.lane_length[here] - s - half
            offset += m.lane_length[here]
            if end_d > p.horizon or end_d < -0.5:
                break
            if m.lane_junction[here] >= 0 or m.lane_junction[nxt] < 0:
                continue
            must = False
            group = m.lane_light[here]
            if group >= 0 and lawful:
                state = w.lights[b, group]
                if state == RED or (state == YELLOW and end_d > speed * speed / (2.0 * p.idm_comfort)):
                    must = True
            if not must and polite and m.lane_stop[here] and w.veh_served[b, v] != here:
                must = True
                if end_d < p.idm_gap + 1.5 and speed < 0.3 and k == 0:
                    w.veh_served[b, v] = here
                    w.veh_arrival[b, v] = w.time[b]
            near = end_d < max(speed * speed / (2.0 * p.idm_comfort) + 6.0, 8.0)
            entry_s = max(end_d, 0.0) / max(speed, 0.1)
            if not must and polite and near and _must_yield(m, w, b, here, nxt, v, w.veh_arrival[b, v], entry_s):
                must = True
            if not must and polite and near and lead_kind == VEHICLE and _box_blocked(m, p, nxt, gap - end_d, lead_v,
                                                                             2.0 * half):
                must = True
            if must:
                stop = max(end_d, 0.0)
            break
        desired = w.veh_desired[b, v] * m.lane_speed[l0] if not flags & EMERGENCY else w.veh_desired[b, v]
        if lawful and polite:  # slow down for curves (a scripted rule-breaker keeps its timed speed)
            desired = min(desired, m.lane_curve_speed[l0])
            if l1 >= 0 and len0 - s < speed * speed / (2.0 * p.idm_comfort) + 5.0:
                desired = min(desired, m.lane_curve_speed[l1])
        if stop < gap:
            accel = idm(p, speed, desired, stop + p.idm_gap * 0.4, 0.0)
        else:
            accel = idm(p, speed, desired, gap, lead_v)
        if w.time[b] < w.veh_brake_until[b, v]:
            accel = -w.veh_brake_decel[b, v]
        new_speed = max(speed + accel * p.dt, 0.0)
        s += 0.5 * (speed + new_speed) * p.dt
        w.act_v[b, v] = new_speed
        while s > m.lane_length[l0]:
            s -= m.lane_length[l0]
            if l1 < 0:
                w.act_valid[b, v] = False
                break
            l0, l1 = l1, l2
            l2 = _choose_successor(m, w, b, v, l1)
            w.veh_served[b, v] = -1
        w.veh_lane[b, v, 0], w.veh_lane[b, v, 1], w.veh_lane[b, v, 2] = l0, l1, l2
        w.veh_s[b, v] = s
        offset = w.veh_offset[b, v]
        sideways = 0.0
        if flags & EMERGENCY:  # beside or just behind the ego: move left to pass it
            dx, dy = w.ego_x[b] - w.act_x[b, v], w.ego_y[b] - w.act_y[b, v]
            ahead = dx * math.cos(w.act_yaw[b, v]) + dy * math.sin(w.act_yaw[b, v])
            target = EMERGENCY_OFFSET_M if -p.ego_length < ahead < 25.0 and dx * dx + dy * dy < 30.0**2 else 0.0
            sideways = min(max(target - offset, -EMERGENCY_LATERAL_MPS * p.dt), EMERGENCY_LATERAL_MPS * p.dt)
            w.veh_offset[b, v] = offset + sideways
        elif flags & KEEP_OFFSET:  # once past the ego, a vehicle that kept off its lane's centre goes back to it
            dx, dy = w.ego_x[b] - w.act_x[b, v], w.ego_y[b] - w.act_y[b, v]
            if dx * math.cos(w.act_yaw[b, v]) + dy * math.sin(w.act_yaw[b, v]) < -10.0:
                flags &= ~KEEP_OFFSET
                w.veh_flags[b, v] = flags
        if not flags & (EMERGENCY | KEEP_OFFSET) and offset != 0.0 and new_speed > 0.1:  # pulling into the lane
            sideways = -min(abs(offset), CUT_IN_LATERAL_MPS * p.dt) * (1.0 if offset > 0.0 else -1.0)
            w.veh_offset[b, v] = offset + sideways
        if w.act_valid[b, v]:
            _vehicle_pose(m, w, b, v)
            if sideways != 0.0:
                w.act_yaw[b, v] += math.atan2(sideways / p.dt, max(new_speed, 0.5))


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _respawn(m: MapArrays, w: Any, p: Params, b: int) -> None:
    """Bring back one vehicle that left the map (if its slot takes part in traffic) far from the ego."""
    for v in range(w.veh_lane.shape[1]):
        if w.act_valid[b, v] or not w.veh_respawn[b, v]:
            continue
        lane = m.spawn_lanes[min(int(uniform(w.seed[b], v, w.veh_draws[b, v]) * len(m.spawn_lanes)),
                                 len(m.spawn_lanes) - 1)]
        s = uniform(w.seed[b], v, w.veh_draws[b, v] + 1) * max(m.lane_length[lane] - 15.0, 0.0)
        w.veh_draws[b, v] += 2
        x, y, _ = lane_pose(m, lane, s)
        if (x - w.ego_x[b]) ** 2 + (y - w.ego_y[b]) ** 2 < 30.0**2:
            return
        for n in range(w.act_valid.shape[1]):
            if w.act_valid[b, n] and (x - w.act_x[b, n]) ** 2 + (y - w.act_y[b, n]) ** 2 < 12.0**2:
                return
        w.veh_lane[b, v, 0] = lane
        w.veh_lane[b, v, 1] = _choose_successor(m, w, b, v, lane)
        w.veh_lane[b, v, 2] = _choose_successor(m, w, b, v, w.veh_lane[b, v, 1])
        w.veh_s[b, v] = s
        w.act_v[b, v] = 0.5 * w.veh_desired[b, v] * m.lane_speed[lane]
        w.veh_served[b, v] = -1
        w.act_valid[b, v] = True
        _vehicle_pose(m, w, b, v)
        return


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _pedestrian_pose(m: MapArrays, w: Any, b: int, q: int) -> None:
    n = w.veh_lane.shape[1] + q
    walk = w.ped_walk[b, q]
    s = w.ped_s[b, q]
    if walk >= 0:
        first, last = m.walk_offset[walk], m.walk_offset[walk + 1]
        xs, ys = m.walk_x[first:last], m.walk_y[first:last]
        ss = m.walk_s[first:last]
    else:
        count = w.ped_path_n[b, q]
        xs, ys = w.ped_path_x[b, q, :count], w.ped_path_y[b, q, :count]
        ss = w.ped_path_s[b, q, :count]
    i = 0
    while i < len(ss) - 2 and ss[i + 1] < s:
        i += 1
    seg = ss[i + 1] - ss[i]
    frac = min(max((s - ss[i]) / seg, 0.0), 1.0) if seg > 1e-9 else 0.0
    w.act_x[b, n] = xs[i] + frac * (xs[i + 1] - xs[i])
    w.act_y[b, n] = ys[i] + frac * (ys[i + 1] - ys[i])
    w.act_yaw[b, n] = math.atan2(ys[i + 1] - ys[i], xs[i + 1] - xs[i])


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _crossing_clear(m: MapArrays, w: Any, b: int, walk: int) -> bool:
    first, last = m.walk_offset[walk], m.walk_offset[walk + 1]
    cx = 0.5 * (m.walk_x[first] + m.walk_x[last - 1])
    cy = 0.5 * (m.walk_y[first] + m.walk_y[last - 1])
    if w.ego_v[b] > 0.5 and (w.ego_x[b] - cx) ** 2 + (w.ego_y[b] - cy) ** 2 < 15.0**2:
        return False
    for v in range(w.veh_lane.shape[1]):
        moving = w.act_valid[b, v] and w.act_v[b, v] > 0.5
        if moving and (w.act_x[b, v] - cx) ** 2 + (w.act_y[b, v] - cy) ** 2 < 15.0**2:
            return False
    return True


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _inside(x: float, y: float, cx: float, cy: float, yaw: float, half_length: float, half_width: float) -> bool:
    dx, dy = x - cx, y - cy
    c, s = math.cos(yaw), math.sin(yaw)
    return abs(dx * c + dy * s) <= half_length and abs(-dx * s + dy * c) <= half_width


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _in_the_way(w: Any, p: Params, b: int, n: int) -> bool:
    """Whether pedestrian ``n``'s next metre runs into a moving vehicle's (or the ego's) body. Standing vehicles
    are walked around (passed through: a vehicle may well be standing because it waits for this pedestrian)."""
    x = w.act_x[b, n] + math.cos(w.act_yaw[b, n])
    y = w.act_y[b, n] + math.sin(w.act_yaw[b, n])
    if w.ego_v[b] > p.stop_speed and _inside(x, y, w.ego_x[b], w.ego_y[b], w.ego_yaw[b], 0.5 * p.ego_length + 0.2,
                                             0.5 * p.ego_width + 0.2):
        return True
    for v in range(w.veh_lane.shape[1]):
        if not w.act_valid[b, v] or w.act_v[b, v] <= p.stop_speed:
            continue
        reach = 0.5 * (w.act_len[b, v] + w.act_wid[b, v]) + 0.4
        if (x - w.act_x[b, v]) ** 2 + (y - w.act_y[b, v]) ** 2 < reach * reach and _inside(
                x, y, w.act_x[b, v], w.act_y[b, v], w.act_yaw[b, v], 0.5 * w.act_len[b, v] + 0.2,
                0.5 * w.act_wid[b, v] + 0.2):
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _pedestrians(m: MapArrays, w: Any, p: Params, b: int) -> None:
    first_slot = w.veh_lane.shape[1]
    for q in range(w.ped_walk.shape[1]):
        n = first_slot + q
        if not w.act_valid[b, n]:
            continue
        if w.time[b] < w.ped_start[b, q]:
            w.act_v[b, n] = 0.0
            continue
        walk = w.ped_walk[b, q]
        if walk >= 0 and w.ped_next[b, q] >= 0:  # waiting to cross
            if not _crossing_clear(m, w, b, w.ped_next[b, q]):
                w.act_v[b, n] = 0.0
                continue
            w.ped_walk[b, q] = walk = w.ped_next[b, q]
            w.ped_next[b, q] = -1
            w.ped_s[b, q] = 0.0
        on_road = walk < 0 or m.walk_crossing[walk]  # sidewalks are off the road: nobody drives there
        if on_road and not w.ped_careless[b, q] and _in_the_way(w, p, b, n):
            w.act_v[b, n] = 0.0
            continue
        speed = w.ped_speed[b, q]
        s = w.ped_s[b, q] + speed * p.dt
        if walk >= 0:
            length = m.walk_s[m.walk_offset[walk + 1] - 1]
            while s >= length:
                first, last = m.walk_succ_offset[walk], m.walk_succ_offset[walk + 1]
                draw = uniform(w.seed[b], n, w.ped_draws[b, q])
                w.ped_draws[b, q] += 1
                nxt = m.walk_succ[first + min(int(draw * (last - first)), last - first - 1)]
                if m.walk_crossing[nxt] and not _crossing_clear(m, w, b, nxt):
                    w.ped_next[b, q] = nxt
                    s = length
                    speed = 0.0
                    break
                s -= length
                walk = nxt
                length = m.walk_s[m.walk_offset[walk + 1] - 1]
            w.ped_walk[b, q] = walk
        else:
            end = w.ped_path_s[b, q, w.ped_path_n[b, q] - 1]
            if s >= end:
                s, speed = end, 0.0
        w.ped_s[b, q] = s
        w.act_v[b, n] = speed
        _pedestrian_pose(m, w, b, q)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _tracks(w: Any, b: int) -> None:
    """Static slots with a recorded track (a non-reactive log replay) take the track's pose at this time,
    interpolated between samples; before its first sample and after its last the actor is not there. Tracks go
    on whatever the ego does."""
    first = w.act_valid.shape[1] - w.trk_n.shape[1]
    t = w.time[b]
    for j in range(w.trk_n.shape[1]):
        count = w.trk_n[b, j]
        if count == 0:
            continue
        n = first + j
        times = w.trk_t[b, j]
        if t < times[0] - 1e-9 or t > times[count - 1] + 1e-9:
            w.act_valid[b, n] = False
            w.act_v[b, n] = 0.0
            continue
        k = min(w.trk_i[b, j], count - 1)
        while k > 0 and times[k] > t:
            k -= 1
        while k + 1 < count and times[k + 1] <= t:
            k += 1
        w.trk_i[b, j] = k
        k1 = min(k + 1, count - 1)
        span = times[k1] - times[k]
        u = min(max((t - times[k]) / span, 0.0), 1.0) if span > 1e-9 else 0.0
        w.act_valid[b, n] = True
        w.act_x[b, n] = w.trk_x[b, j, k] + u * (w.trk_x[b, j, k1] - w.trk_x[b, j, k])
        w.act_y[b, n] = w.trk_y[b, j, k] + u * (w.trk_y[b, j, k1] - w.trk_y[b, j, k])
        w.act_yaw[b, n] = wrap(w.trk_yaw[b, j, k] + u * wrap(w.trk_yaw[b, j, k1] - w.trk_yaw[b, j, k]))
        w.act_v[b, n] = w.trk_v[b, j, k] + u * (w.trk_v[b, j, k1] - w.trk_v[b, j, k])


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _project_ego(w: Any, b: int) -> None:
    """Progress along the route: the nearest route point in a window around the last progress (never back)."""
    s, lateral, _, _ = _route_frame(w, b, w.ego_x[b], w.ego_y[b], w.progress[b] - 5.0, w.progress[b] + 15.0)
    w.progress[b] = max(w.progress[b], min(s, w.end_s[b]))
    w.lateral[b] = lateral


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _add_located(m: MapArrays, w: Any, b: int, x: float, y: float, reach: float, half: float, speed: float,
                 actor: int, kind: int) -> None:
    lanes = w.loc_lane[b]
    count = locate(m, x, y, min(reach, MAX_QUERY_REACH_M), lanes, w.loc_s[b], w.loc_lat[b], w.loc_heading[b],
                   w.loc_dist[b])
    for j in range(count):
        _add_entry(w, b, lanes[j], w.loc_s[b, j], half, speed, actor, kind)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _add_moving(m: MapArrays, w: Any, b: int, n: int, reach: float) -> None:
    """Actor ``n`` (a vehicle that is not on lanes of its own) on every lane it covers, with its speed along each:
    followed as traffic, not passed as an obstacle."""
    lanes = w.loc_lane[b]
    count = locate(m, w.act_x[b, n], w.act_y[b, n], min(reach, MAX_QUERY_REACH_M), lanes, w.loc_s[b], w.loc_lat[b],
                   w.loc_heading[b], w.loc_dist[b])
    for j in range(count):
        along = w.act_v[b, n] * math.cos(w.act_yaw[b, n] - w.loc_heading[b, j])
        _add_entry(w, b, lanes[j], w.loc_s[b, j], 0.5 * w.act_len[b, n], max(along, 0.0), n, VEHICLE)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _add_entry(w: Any, b: int, lane: int, s: float, half: float, speed: float, actor: int, kind: int) -> None:
    k = w.occ_n[b]
    if k >= w.occ_lane.shape[1]:
        return
    w.occ_lane[b, k] = lane
    w.occ_s[b, k] = s
    w.occ_half[b, k] = half
    w.occ_speed[b, k] = speed
    w.occ_actor[b, k] = actor
    w.occ_kind[b, k] = kind
    w.occ_n[b] = k + 1


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _occupancy(m: MapArrays, w: Any, p: Params, b: int) -> None:
    """Which lanes each actor occupies, and where: driving vehicles by their lane, everything else located."""
    w.occ_n[b] = 0
    vehicles = w.veh_lane.shape[1]
    for v in range(vehicles):
        if not w.act_valid[b, v]:
            continue
        if w.veh_parked[b, v]:
            _add_located(m, w, b, w.act_x[b, v], w.act_y[b, v], 0.5 * w.act_wid[b, v] - 0.3, 0.5 * w.act_len[b, v],
                         0.0, v, VEHICLE)
            continue
        _add_entry(w, b, w.veh_lane[b, v, 0], w.veh_s[b, v], 0.5 * w.act_len[b, v], w.act_v[b, v], v, VEHICLE)
    _add_located(m, w, b, w.ego_x[b], w.ego_y[b], 0.5 * p.ego_width - 0.3, 0.5 * p.ego_length, w.ego_v[b], -1,
                 VEHICLE)
    pedestrians = w.ped_walk.shape[1]
    for n in range(vehicles, w.act_valid.shape[1]):
        if n < vehicles + pedestrians:  # pedestrians on sidewalks are off the road: only crossings are located
            walk = w.ped_walk[b, n - vehicles]
            if walk >= 0 and not m.walk_crossing[walk]:
                continue
        if w.act_valid[b, n]:
            reach = 0.5 * w.act_wid[b, n] + (0.8 if w.act_kind[b, n] == PEDESTRIAN else 0.0)
            if w.act_kind[b, n] == VEHICLE:  # a recorded vehicle (non-reactive replay): moving traffic
                _add_moving(m, w, b, n, 0.5 * w.act_wid[b, n] - 0.3)
                continue
            _add_located(m, w, b, w.act_x[b, n], w.act_y[b, n], reach, 0.5 * w.act_len[b, n], 0.0, n,
                         int(w.act_kind[b, n]))
            ahead = w.act_v[b, n] * PED_LOOKAHEAD_S
            if w.act_kind[b, n] == PEDESTRIAN and ahead > 0.0:  # where a walking pedestrian is about to be
                _add_located(m, w, b, w.act_x[b, n] + ahead * math.cos(w.act_yaw[b, n]),
                             w.act_y[b, n] + ahead * math.sin(w.act_yaw[b, n]), reach, 0.5 * w.act_len[b, n],
                             0.0, n, PEDESTRIAN)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _ego_view(m: MapArrays, w: Any, p: Params, b: int) -> None:
    """What the privileged expert (and the state vector) needs: leader on the route, the next control line."""
    progress = w.progress[b]
    half = 0.5 * p.ego_length
    gap, lead_v, lead_kind = INF, 0.0, NONE
    # obstacles to pass (see _obstacle_need)
    passing = w.ego_nudge[b] != 0.0 and abs(w.ego_offset[b] - w.ego_nudge[b]) < 0.3
    for k in range(w.occ_n[b]):
        actor = w.occ_actor[b, k]
        if actor == -1:
            continue
        need = w.act_pass_need[b, actor]
        if passing and 0.0 < need <= w.ego_nudge[b] + 0.05:
            continue
        run_up = 0.0
        if need > 0.0:
            run_up = max(need - w.ego_offset[b], 0.0) / NUDGE_RATE
            if w.ego_nudge[b] >= need - 0.05:
                run_up -= NUDGE_SLACK_M  # under way: keep rolling while moving sideways
        lane, s = w.occ_lane[b, k], w.occ_s[b, k]
        for r in range(w.piece_n[b]):  # the first place past the ego where the route drives that point
            if w.piece_lane[b, r] != lane or not w.piece_start[b, r] - 1e-6 <= s <= w.piece_end[b, r] + 1e-6:
                continue
            d = w.piece_offset[b, r] + s - w.piece_start[b, r] - progress
            if half < d <= p.horizon:  # centres beside the front half are passed, not followed
                bumper = d - half - w.occ_half[b, k] - run_up
                if bumper < gap:
                    gap, lead_v, lead_kind = bumper, w.occ_speed[b, k], w.occ_kind[b, k]
    if w.ego_side_gap[b] < gap:
        gap, lead_v, lead_kind = w.ego_side_gap[b], w.ego_side_speed[b], VEHICLE
    w.ego_leader_gap[b], w.ego_leader_speed[b] = gap, lead_v
    # speed limit: the route piece under the ego
    for r in range(w.piece_n[b]):
        if w.piece_offset[b, r] <= progress <= w.piece_offset[b, r] + w.piece_end[b, r] - w.piece_start[b, r]:
            w.ego_speed_limit[b] = m.lane_speed[w.piece_lane[b, r]]
            break
    # the next junction entry on the route
    w.ego_jlane[b], w.ego_japproach[b], w.ego_jdist[b] = -1, -1, INF
    for r in range(1, w.piece_n[b]):
        lane, before = w.piece_lane[b, r], w.piece_lane[b, r - 1]
        if m.lane_junction[lane] < 0 or m.lane_junction[before] >= 0:
            continue
        front = w.piece_offset[b, r] - progress - half
        if front > -0.5:
            w.ego_jlane[b], w.ego_japproach[b], w.ego_jdist[b] = lane, before, front
            break
    # the next control line: its state, and whether to stop there
    i = w.line_next[b]
    must = False
    w.ego_stop_dist[b] = INF
    if i < w.line_n[b]:
        lane = w.line_lane[b, i]
        dist = w.line_s[b, i] - progress
        w.ego_line_dist[b] = dist
        front = dist - half
        group = m.lane_light[lane]
        if group >= 0:
            state = w.lights[b, group]
            w.ego_line_kind[b], w.ego_line_state[b] = LINE_LIGHT, state
            # a yellow light is for stopping while the ego can stop before its centre (what a red-light run
            # counts) crosses the line: also when it already stands with its front past the line
            if state == RED or (state == YELLOW and dist > w.ego_v[b] ** 2 / (2.0 * p.idm_comfort)):
                must = True
        elif m.lane_stop[lane]:
            w.ego_line_kind[b], w.ego_line_state[b] = LINE_STOP, -1
            must = not w.ego_served[b]
        else:
            w.ego_line_kind[b], w.ego_line_state[b] = LINE_NONE, -1
        if must:
            w.ego_stop_dist[b] = dist
    else:
        w.ego_line_kind[b], w.ego_line_state[b], w.ego_line_dist[b] = LINE_NONE, -1, INF
    # yield at the junction entry
    front = w.ego_jdist[b]
    near = front < max(w.ego_v[b] ** 2 / (2.0 * p.idm_comfort) + 6.0, 8.0)
    give_way = False
    if not must and w.ego_jlane[b] >= 0 and near:
        entry_s = max(front, 0.0) / max(w.ego_v[b], 0.1)
        if _must_yield(m, w, b, w.ego_japproach[b], w.ego_jlane[b], -1, w.ego_arrival[b], entry_s) or \
                (lead_kind == VEHICLE and _box_blocked(m, p, w.ego_jlane[b], gap - front, lead_v, p.ego_length)):
            must = give_way = True
            w.ego_stop_dist[b] = front + half
    w.ego_must_stop[b] = must
    w.ego_give_way[b] = give_way


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _route_frame(w: Any, b: int, x: float, y: float, lo_s: float, hi_s: float) -> tuple[float, float, float, float]:
    """A point in the route's frame: arc length, lateral offset (left +), distance from the route and the route's
    heading there, searching the route between ``lo_s`` and ``hi_s``."""
    ds = w.route_ds[b]
    lo = max(int(lo_s / ds), 0)
    hi = min(int(hi_s / ds) + 1, w.route_n[b] - 1)
    best, best_s, best_lat, heading = INF, 0.0, 0.0, 0.0
    for k in range(lo, hi):
        ax, ay = w.route_x[b, k], w.route_y[b, k]
        dx, dy = w.route_x[b, k + 1] - ax, w.route_y[b, k + 1] - ay
        len2 = dx * dx + dy * dy
        rx, ry = x - ax, y - ay
        t = min(max((rx * dx + ry * dy) / len2, 0.0), 1.0) if len2 > 1e-12 else 0.0
        px, py = rx - t * dx, ry - t * dy
        dist2 = px * px + py * py
        if dist2 < best:
            best, best_s = dist2, (k + t) * ds
            best_lat = math.sqrt(dist2) if dx * ry - dy * rx >= 0 else -math.sqrt(dist2)
            heading = math.atan2(dy, dx)
    return best_s, best_lat, math.sqrt(best), heading


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _extent(w: Any, b: int, n: int, heading: float) -> tuple[float, float]:
    """Half extents of actor ``n``'s box across and along a direction ``heading``."""
    rel = w.act_yaw[b, n] - heading
    c, s = abs(math.cos(rel)), abs(math.sin(rel))
    return 0.5 * w.act_len[b, n] * s + 0.5 * w.act_wid[b, n] * c, 0.5 * w.act_len[b, n] * c + 0.5 * w.act_wid[b, n] * s


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _obstacle_need(w: Any, p: Params, b: int, n: int, progress: float) -> tuple[float, float, float]:
    """For an obstacle (static actor, parked vehicle) on the ego's path ahead: the leftward offset of the path
    that clears it and the route stretch it covers; 0 (and an empty stretch) for any other actor. Obstacles are
    followed as if nearer by the run-up their sideways move still takes, and passed once the path clears them."""
    if not w.act_valid[b, n] or not (w.act_kind[b, n] == STATIC
                                     or (n < w.veh_lane.shape[1] and w.veh_parked[b, n])):
        return 0.0, INF, -INF
    x, y = w.act_x[b, n], w.act_y[b, n]
    if (x - w.ego_x[b]) ** 2 + (y - w.ego_y[b]) ** 2 > (NUDGE_LOOKAHEAD_M + 10.0) ** 2:
        return 0.0, INF, -INF
    s, lat, dist, heading = _route_frame(w, b, x, y, progress - 2.0, progress + NUDGE_LOOKAHEAD_M + 5.0)
    across, along = _extent(w, b, n, heading)
    if s + along < progress or s - along - progress > NUDGE_LOOKAHEAD_M or dist > 8.0:
        return 0.0, INF, -INF
    reach = 0.5 * p.ego_width + NUDGE_CLEARANCE_M
    if lat - across > reach or lat + across < -reach:  # beside the path
        return 0.0, INF, -INF
    return lat + across + reach, s - along, s + along


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _corridor_clear(m: MapArrays, w: Any, p: Params, b: int, shift: float, first: float, last: float) -> bool:
    """Whether the ego may take its path ``shift`` to the left past obstacles between ``first`` and ``last``:
    the road is there, and no vehicle uses that corridor (oncoming ones: before the ego is past)."""
    progress = w.progress[b]
    ego_half = 0.5 * p.ego_width
    mid = 0.5 * (first + last)
    k = min(max(int(mid / w.route_ds[b]), 0), w.route_n[b] - 2)
    hx, hy = w.route_x[b, k + 1] - w.route_x[b, k], w.route_y[b, k + 1] - w.route_y[b, k]
    norm = math.sqrt(hx * hx + hy * hy) + 1e-9
    px, py = w.route_x[b, k] - hy / norm * shift, w.route_y[b, k] + hx / norm * shift
    if locate(m, px, py, 0.0, w.loc_lane[b], w.loc_s[b], w.loc_lat[b], w.loc_heading[b], w.loc_dist[b]) == 0:
        return False
    pass_s = (last + p.ego_length + 5.0 - progress) / max(w.ego_v[b], 3.0)
    for v in range(w.veh_lane.shape[1]):
        if not w.act_valid[b, v] or w.veh_parked[b, v]:
            continue
        x, y = w.act_x[b, v], w.act_y[b, v]
        if (x - w.ego_x[b]) ** 2 + (y - w.ego_y[b]) ** 2 > 100.0**2:
            continue
        s, lat, dist, heading = _route_frame(w, b, x, y, progress - 30.0, last + 100.0)
        if dist > shift + 6.0 or abs(lat - shift) > 0.5 * w.act_wid[b, v] + ego_half + 1.0:
            continue
        if math.cos(w.act_yaw[b, v] - heading) < 0.0:  # oncoming
            if s > progress - 5.0 and s - w.act_v[b, v] * pass_s < last + 10.0:
                return False
        elif progress - 15.0 < s < last + 10.0 and not (s < progress and abs(lat) < 1.0):
            return False  # (someone behind the ego in its own lane does not take the corridor)
    return True


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _path_offset(w: Any, b: int, s: float) -> float:
    """The ego's path offset (left +) when it gets to route ``s``: moving ``NUDGE_RATE`` sideways per metre from
    where it is towards the nudge until the pass ends, then back towards its lane."""
    progress, offset = w.progress[b], w.ego_offset[b]
    end = max(w.ego_nudge_end[b], progress) if w.ego_nudge[b] != 0.0 else progress
    shift = NUDGE_RATE * (min(s, end) - progress)
    offset += min(max(w.ego_nudge[b] - offset, -shift), shift) if shift > 0.0 else 0.0
    shift = NUDGE_RATE * (s - end)
    return offset - min(max(offset, -shift), shift) if shift > 0.0 else offset


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _keep_right(w: Any, p: Params, b: int) -> float:
    """How far right (negative: left +) the ego keeps within its lane: pulled over for an emergency vehicle coming
    from behind (``ego_yield_emg``), or clear of oncoming vehicles that invade its lane ahead; 0: neither."""
    progress = w.progress[b]
    ego_half = 0.5 * p.ego_width
    right = 0.0
    w.ego_yield_emg[b] = False
    for v in range(w.veh_lane.shape[1]):
        # (a vehicle on its lane's centre keeps to its lane: only those off it, and emergency vehicles, matter)
        if not w.act_valid[b, v] or w.veh_parked[b, v] or (w.veh_offset[b, v] == 0.0
                                                            and not w.veh_flags[b, v] & EMERGENCY):
            continue
        x, y = w.act_x[b, v], w.act_y[b, v]
        if (x - w.ego_x[b]) ** 2 + (y - w.ego_y[b]) ** 2 > (EMERGENCY_NOTICE_M + 5.0) ** 2:
            continue
        if w.veh_flags[b, v] & EMERGENCY:
            s, lat, dist, heading = _route_frame(w, b, x, y, progress - EMERGENCY_NOTICE_M - 5.0, progress + 5.0)
            coming = w.act_v[b, v] > 3.0 or progress - s < EMERGENCY_CLOSE_M  # (not held up elsewhere)
            if dist < 4.0 and progress - EMERGENCY_NOTICE_M < s < progress + 0.5 * p.ego_length and coming:
                right = -PULL_OVER_M
                w.ego_yield_emg[b] = True
            continue
        if math.cos(w.act_yaw[b, v] - w.ego_yaw[b]) > -0.5:  # (cheap test first: not coming towards the ego)
            continue
        s, lat, dist, heading = _route_frame(w, b, x, y, progress, progress + NUDGE_LOOKAHEAD_M)
        if s <= progress or math.cos(w.act_yaw[b, v] - heading) > -0.85 or lat <= 0.0:
            continue  # only oncoming vehicles ahead, left of the route
        across, _ = _extent(w, b, v, heading)
        inner = lat - across  # their right side
        if -ego_half < inner < ego_half + INVADER_CLEARANCE_M:
            right = min(right, max(inner - ego_half - INVADER_CLEARANCE_M, -PULL_OVER_M))
    i = w.stop_next[b]  # the next curbside stop: pull over to the curb before it
    if i < w.stop_n[b] and w.stop_s[b, i] - CURBSIDE_APPROACH_M < progress:
        right = min(right, w.stop_offset[b, i])
    return right


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _merge_wait(w: Any, p: Params, b: int) -> bool:
    """Whether the ego, off its lane's centre towards the curb, should wait before pulling into the lane: a
    vehicle coming along the lane from behind would reach it within ``MERGE_GAP_S`` (or is within ``MERGE_GAP_M``).
    One standing behind the ego waits for it."""
    if w.lateral[b] > -1.5 or w.ego_v[b] > 3.0:
        return False
    progress = w.progress[b]
    for v in range(w.veh_lane.shape[1]):
        if not w.act_valid[b, v] or w.veh_parked[b, v] or w.act_v[b, v] < 1.0:
            continue
        x, y = w.act_x[b, v], w.act_y[b, v]
        if (x - w.ego_x[b]) ** 2 + (y - w.ego_y[b]) ** 2 > 80.0**2:
            continue
        s, _, dist, heading = _route_frame(w, b, x, y, progress - 70.0, progress + 8.0)
        if dist > 2.0 or math.cos(w.act_yaw[b, v] - heading) < 0.5:
            continue
        behind = progress - s
        if -0.5 * (p.ego_length + w.act_len[b, v]) < behind < MERGE_GAP_M or \
                (behind > 0.0 and behind < w.act_v[b, v] * MERGE_GAP_S):
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _ego_nudge(m: MapArrays, w: Any, p: Params, b: int) -> None:
    """Pass obstacles (static ones, parked vehicles) that block the route ahead: shift the ego's path to the left
    by what clears them, when the road is there and no moving vehicle uses that corridor (oncoming ones: before
    the ego is past); hold the shift until the ego is past them; otherwise stay (and stop behind them)."""
    progress = w.progress[b]
    ego_half = 0.5 * p.ego_width
    committed = w.ego_nudge[b] > 0.0 and progress < w.ego_nudge_end[b]  # a pass, once begun, is completed
    first, last, shift = INF, -INF, 0.0
    for n in range(w.act_valid.shape[1]):  # what the path clears is passed, not followed (see _ego_view)
        need, lo, hi = _obstacle_need(w, p, b, n, progress)
        w.act_pass_need[b, n] = need
        if need > 0.0:
            shift, first, last = max(shift, need), min(first, lo), max(last, hi)
    if not committed:
        w.ego_nudge[b] = 0.0
    if shift > max(w.ego_nudge[b], 0.0) + 0.05:  # obstacles the present path does not clear
        if _corridor_clear(m, w, p, b, shift, first, last):
            w.ego_nudge[b] = shift
            w.ego_nudge_end[b] = max(w.ego_nudge_end[b], last + p.ego_length + 3.0) if committed else \
                last + p.ego_length + 3.0
    elif committed and shift > 0.0:
        w.ego_nudge_end[b] = max(w.ego_nudge_end[b], last + p.ego_length + 3.0)
    right = _keep_right(w, p, b)
    if w.ego_nudge[b] <= 0.0:
        w.ego_nudge[b] = right
    w.ego_merge_wait[b] = _merge_wait(w, p, b)
    i = w.stop_next[b]
    w.ego_stop_target[b] = w.stop_s[b, i] if i < w.stop_n[b] else INF
    w.ego_nudge_need[b] = max(shift, w.ego_nudge[b]) if shift > 0.0 else w.ego_nudge[b]
    # the path moves sideways as the ego drives on
    rate = NUDGE_RATE * w.ego_v[b] * p.dt
    w.ego_offset[b] += min(max(w.ego_nudge[b] - w.ego_offset[b], -rate), rate)
    # off its lane, the ego also follows whoever is in the corridor it drives
    w.ego_side_gap[b], w.ego_side_speed[b] = INF, 0.0
    if w.ego_offset[b] == 0.0 and w.ego_nudge[b] == 0.0:
        return
    for n in range(w.act_valid.shape[1]):
        if not w.act_valid[b, n] or 0.0 < w.act_pass_need[b, n] <= w.ego_nudge[b] + 0.05:
            continue
        x, y = w.act_x[b, n], w.act_y[b, n]
        if (x - w.ego_x[b]) ** 2 + (y - w.ego_y[b]) ** 2 > (p.horizon + 5.0) ** 2:
            continue
        s, lat, dist, heading = _route_frame(w, b, x, y, progress - 2.0, progress + p.horizon + 5.0)
        across, along = _extent(w, b, n, heading)
        lateral = max(abs(w.ego_offset[b]), abs(w.ego_nudge[b]))
        # the corridor there: where the path will be when the ego gets there; an oncoming vehicle on the move
        # comes closer meanwhile (it is followed by where the ego drives now)
        oncoming = math.cos(w.act_yaw[b, n] - heading) < 0.0 and w.act_v[b, n] > 0.5
        path = w.ego_offset[b] if oncoming else _path_offset(w, b, s)
        if dist > lateral + 6.0 or abs(lat - path) > across + ego_half + 0.3:
            continue
        d = s - progress - 0.5 * p.ego_length - along
        if -along < d < w.ego_side_gap[b]:
            w.ego_side_gap[b] = max(d, 0.0)
            w.ego_side_speed[b] = max(w.act_v[b, n] * math.cos(w.act_yaw[b, n] - heading), 0.0)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _event(w: Any, b: int, kind: int, actor: int) -> None:
    k = w.ev_n[b]
    if k < w.ev_kind.shape[1]:
        w.ev_kind[b, k] = kind
        w.ev_actor[b, k] = actor
        w.ev_n[b] = k + 1


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _detect(m: MapArrays, w: Any, p: Params, b: int) -> None:
    t = w.time[b]
    x, y, yaw, speed = w.ego_x[b], w.ego_y[b], w.ego_yaw[b], w.ego_v[b]
    # collisions, Leaderboard style: the same actor is not counted again within collision_time_s, nor any
    # contact within collision_area_m of a counted one the ego has not yet left (collision_forget_m)
    kept = 0
    for r in range(w.reg_n[b]):
        if (w.reg_x[b, r] - x) ** 2 + (w.reg_y[b, r] - y) ** 2 <= p.collision_forget_m**2:
            w.reg_x[b, kept], w.reg_y[b, kept] = w.reg_x[b, r], w.reg_y[b, r]
            kept += 1
    w.reg_n[b] = kept
    for n in range(w.act_valid.shape[1]):
        if not w.act_valid[b, n]:
            continue
        if not boxes_touch(x, y, yaw, p.ego_length, p.ego_width, w.act_x[b, n], w.act_y[b, n], w.act_yaw[b, n],
                           w.act_len[b, n], w.act_wid[b, n]):
            continue
        if w.act_kind[b, n] == PEDESTRIAN and speed < p.stop_speed and w.act_v[b, n] > 0.0:
            continue  # a pedestrian walking around the standing ego
        if n == w.last_hit[b] and t - w.last_hit_time[b] < p.collision_time_s:
            continue
        near = False
        for r in range(w.reg_n[b]):
            if (w.reg_x[b, r] - x) ** 2 + (w.reg_y[b, r] - y) ** 2 < p.collision_area_m**2:
                near = True
        if near:
            continue
        kind = w.act_kind[b, n]
        index = INF_VEHICLE if kind == VEHICLE else (INF_PEDESTRIAN if kind == PEDESTRIAN else INF_STATIC)
        w.infractions[b, index] += 1
        _event(w, b, index, n)
        w.last_hit[b], w.last_hit_time[b] = n, t
        if w.reg_n[b] < w.reg_x.shape[1]:
            w.reg_x[b, w.reg_n[b]], w.reg_y[b, w.reg_n[b]] = x, y
            w.reg_n[b] += 1
    # an emergency vehicle held up behind the ego (Leaderboard 2.0 YieldToEmergencyVehicleTest)
    e = w.emg_slot[b]
    if e >= 0 and w.emg_done[b] and w.act_valid[b, e] and (w.act_x[b, e] - x) ** 2 + (w.act_y[b, e] - y) ** 2 > 60.0**2:
        w.act_valid[b, e] = False  # its part is over: it leaves (and does not come round again)
    if e >= 0 and not w.emg_done[b] and w.act_valid[b, e]:
        s, _, dist, _ = _route_frame(w, b, w.act_x[b, e], w.act_y[b, e], w.progress[b] - 40.0, w.progress[b] + 40.0)
        if s > w.progress[b] + 1.0:
            w.emg_done[b] = True  # it got past
        elif dist < 4.0 and w.progress[b] - s < EMERGENCY_CLOSE_M + p.ego_length:
            if w.emg_since[b] == INF:
                w.emg_since[b] = t
            elif t - w.emg_since[b] > EMERGENCY_PATIENCE_S:
                w.infractions[b, INF_EMERGENCY] += 1
                _event(w, b, INF_EMERGENCY, e)
                w.emg_done[b] = True
    # the robotaxi mission: stand at the curb within each stop's tolerance for its dwell time, in order
    i = w.stop_next[b]
    if i < w.stop_n[b]:
        there = abs(w.progress[b] - w.stop_s[b, i]) <= w.stop_tol[b, i] and w.lateral[b] <= w.stop_lat[b, i]
        if there and speed < CURBSIDE_STILL_MPS:
            if w.stop_since[b] == INF:
                w.stop_since[b] = t
            elif t - w.stop_since[b] >= w.stop_dwell[b, i]:
                w.stop_next[b] = i + 1
                w.stop_since[b] = INF
        else:
            w.stop_since[b] = INF
            if w.progress[b] > w.stop_s[b, i] + w.stop_tol[b, i] + CURBSIDE_MISSED_M:
                w.infractions[b, INF_MISSED_STOP] += 1
                _event(w, b, INF_MISSED_STOP, -1)
                w.stop_next[b] = i + 1
    # control lines on the route: red lights and stop signs
    half = 0.5 * p.ego_length
    i = w.line_next[b]
    if i < w.line_n[b] and m.lane_stop[w.line_lane[b, i]] and not w.ego_served[b]:
        front = w.line_s[b, i] - w.progress[b] - half
        if front <= p.stop_distance and speed < p.stop_speed:
            w.ego_served[b] = True
            w.ego_arrival[b] = t
            w.ego_wait_lane[b] = w.line_junction_lane[b, i]
    while i < w.line_n[b] and w.progress[b] >= w.line_s[b, i]:
        lane = w.line_lane[b, i]
        group = m.lane_light[lane]
        if group >= 0 and w.lights[b, group] == RED:
            w.infractions[b, INF_RED] += 1
            _event(w, b, INF_RED, -1)
        elif group < 0 and m.lane_stop[lane] and not w.ego_served[b]:
            w.infractions[b, INF_STOP] += 1
            _event(w, b, INF_STOP, -1)
        i += 1
        w.ego_served[b] = False
        w.ego_wait_lane[b] = -1
    w.line_next[b] = i
    # distance, off-road share, standing still
    step_m = speed * p.dt
    w.driven[b] += step_m
    lanes = w.loc_lane[b]
    count = locate(m, x, y, 0.0, lanes, w.loc_s[b], w.loc_lat[b], w.loc_heading[b], w.loc_dist[b])
    on_road = False
    for j in range(count):
        if m.lane_junction[lanes[j]] >= 0 or abs(wrap(w.loc_heading[b, j] - yaw)) < 0.5 * math.pi:
            on_road = True
    if count > 0 and not on_road:  # on an oncoming lane: allowed where a scenario makes the ego pass that way
        for z in range(w.zone_n[b]):
            if w.zone_start[b, z] <= w.progress[b] <= w.zone_end[b, z]:
                on_road = True
    if not on_road and w.progress[b] < w.curb_until[b]:  # leaving a parking place at the curb
        on_road = True
    if not on_road:
        w.outside[b] += step_m
    w.still[b] = w.still[b] + p.dt if speed < 0.1 else 0.0
    # how the route ends
    if w.progress[b] >= w.end_s[b] - p.completion_tol:
        w.status[b] = COMPLETED
    elif abs(w.lateral[b]) > p.route_deviation:
        w.status[b] = DEVIATION
    elif w.still[b] >= p.blocked_s:
        w.status[b] = BLOCKED
    elif t >= w.timeout[b]:
        w.status[b] = TIMEOUT
    # minimum speed: per quarter of the route, the ego's mean speed against the surrounding traffic's (after the
    # route's end is known: its last checkpoint is recorded then)
    _min_speed(w, p, b)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _min_speed(w: Any, p: Params, b: int) -> None:
    """The Leaderboard 2.0 minimum-speed test with ``MIN_SPEED_SECTIONS`` checkpoints, as scenario_runner's
    ``MinimumSpeedRouteTest`` (srunner/scenariomanager/scenarioatomics/atomic_criteria.py) computes it: on each
    frame with background vehicles around (here: within ``min_speed_radius``, where the Leaderboard's background
    activity lives), the ego's speed and the background vehicles' mean speed are added up, and frames without any
    count for neither; when the ego passes the next checkpoint, a mean ego speed below the traffic's records its
    percentage. When the route ends (however it ends), the last checkpoint is recorded only past 95 % of the route.
    """
    total, count = 0.0, 0
    for v in range(w.veh_lane.shape[1]):
        background = w.act_valid[b, v] and not w.veh_parked[b, v] and w.veh_respawn[b, v]
        if background and (w.act_x[b, v] - w.ego_x[b]) ** 2 + (w.act_y[b, v] - w.ego_y[b]) ** 2 \
                < p.min_speed_radius**2:
            total += w.act_v[b, v]
            count += 1
    if count:
        w.ms_ego[b] += w.ego_v[b]
        w.ms_traffic[b] += total / count
        w.ms_frames[b] += 1
    length = w.end_s[b] - w.start_s[b]
    done = (w.progress[b] - w.start_s[b]) / length if length > 0 else 1.0
    section = int(MIN_SPEED_SECTIONS * done)
    if section > w.ms_section[b] or (w.status[b] != RUNNING and done > 0.95):
        if w.ms_frames[b] > 0 and w.ms_traffic[b] > 0.0 and w.ms_ego[b] < w.ms_traffic[b] \
                and w.ms_section[b] < MIN_SPEED_SECTIONS:
            w.min_speed[b, w.ms_section[b]] = 100.0 * w.ms_ego[b] / w.ms_traffic[b]
        w.ms_section[b] = min(section, MIN_SPEED_SECTIONS)
        w.ms_ego[b] = w.ms_traffic[b] = 0.0
        w.ms_frames[b] = 0
