"""Leaderboard 2.0 infractions and how a route ends: collisions, red lights, stop signs, failing to yield to
an emergency vehicle, missed curbside stops, off-road distance, deviation, blocked, timeout, minimum speed."""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from sim.embedded.compiled import MapArrays
from sim.embedded.kernels.codes import (
    BLOCKED,
    COMPLETED,
    DEVIATION,
    INF,
    INF_EMERGENCY,
    INF_MISSED_STOP,
    INF_PEDESTRIAN,
    INF_RED,
    INF_STATIC,
    INF_STOP,
    INF_VEHICLE,
    MIN_SPEED_SECTIONS,
    PEDESTRIAN,
    RED,
    RUNNING,
    TIMEOUT,
    VEHICLE,
    Params,
)
from sim.embedded.kernels.geometry import boxes_touch, locate, wrap
from sim.embedded.kernels.route import route_frame

#: ... and fails to yield when the emergency vehicle stays within this distance behind it this long.
EMERGENCY_CLOSE_M = 15.0
EMERGENCY_PATIENCE_S = 6.0
#: A curbside stop is served by standing (below this speed) its dwell time within its tolerance ...
CURBSIDE_STILL_MPS = 0.3
#: ... and missed once the ego is this far past its tolerance without having served it.
CURBSIDE_MISSED_M = 3.0


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _event(w: Any, b: int, kind: int, actor: int) -> None:
    k = w.ev_n[b]
    if k < w.ev_kind.shape[1]:
        w.ev_kind[b, k] = kind
        w.ev_actor[b, k] = actor
        w.ev_n[b] = k + 1


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def count_infractions(m: MapArrays, w: Any, p: Params, b: int) -> None:
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
        s, _, dist, _ = route_frame(w, b, w.act_x[b, e], w.act_y[b, e], w.progress[b] - 40.0, w.progress[b] + 40.0)
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
