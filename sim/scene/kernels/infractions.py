"""Leaderboard 2.0 infractions and how a route ends: collisions, red lights, stop signs, failing to yield to
an emergency vehicle, missed curbside stops, off-road distance, deviation, blocked, timeout, minimum speed."""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from sim.maps.compiled import MapArrays
from sim.scene.codes import (
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
)
from sim.scene.kernels.geometry import boxes_touch, locate, wrap
from sim.scene.kernels.route import route_frame
from sim.scene.params import Params

#: ... and fails to yield when the emergency vehicle stays within this distance behind it this long.
EMERGENCY_CLOSE_M = 15.0
EMERGENCY_PATIENCE_S = 6.0
#: A curbside stop is served by standing (below this speed) its dwell time within its tolerance ...
CURBSIDE_STILL_MPS = 0.3
#: ... and missed once the ego is this far past its tolerance without having served it.
CURBSIDE_MISSED_M = 3.0


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _event(sc: Any, b: int, kind: int, actor: int) -> None:
    k = sc.outcome.ev_n[b]
    if k < sc.outcome.ev_kind.shape[1]:
        sc.outcome.ev_kind[b, k] = kind
        sc.outcome.ev_actor[b, k] = actor
        sc.outcome.ev_n[b] = k + 1


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def count_infractions(m: MapArrays, sc: Any, p: Params, b: int) -> None:
    t = sc.time_s[b]
    x, y, yaw, speed = sc.ego.x_m[b], sc.ego.y_m[b], sc.ego.yaw_rad[b], sc.ego.speed_mps[b]
    # collisions, Leaderboard style: the same actor is not counted again within collision_time_s, nor any
    # contact within collision_area_m of a counted one the ego has not yet left (collision_forget_m)
    kept = 0
    for r in range(sc.outcome.hit_n[b]):
        if (sc.outcome.hit_x_m[b, r] - x) ** 2 + (sc.outcome.hit_y_m[b, r] - y) ** 2 <= p.collision_forget_m**2:
            sc.outcome.hit_x_m[b, kept], sc.outcome.hit_y_m[b, kept] = sc.outcome.hit_x_m[b, r], sc.outcome.hit_y_m[b,
                                                                                                                    r]
            kept += 1
    sc.outcome.hit_n[b] = kept
    for n in range(sc.actors.valid.shape[1]):
        if not sc.actors.valid[b, n]:
            continue
        if not boxes_touch(x, y, yaw, p.ego_length, p.ego_width, sc.actors.x_m[b, n], sc.actors.y_m[b, n],
                           sc.actors.yaw_rad[b, n],
                           sc.actors.length_m[b, n], sc.actors.width_m[b, n]):
            continue
        if sc.actors.kind[b, n] == PEDESTRIAN and speed < p.stop_speed and sc.actors.speed_mps[b, n] > 0.0:
            continue  # a pedestrian walking around the standing ego
        if n == sc.outcome.last_hit[b] and t - sc.outcome.last_hit_s[b] < p.collision_time_s:
            continue
        near = False
        for r in range(sc.outcome.hit_n[b]):
            if (sc.outcome.hit_x_m[b, r] - x) ** 2 + (sc.outcome.hit_y_m[b, r] - y) ** 2 < p.collision_area_m**2:
                near = True
        if near:
            continue
        kind = sc.actors.kind[b, n]
        index = INF_VEHICLE if kind == VEHICLE else (INF_PEDESTRIAN if kind == PEDESTRIAN else INF_STATIC)
        sc.outcome.infractions[b, index] += 1
        _event(sc, b, index, n)
        sc.outcome.last_hit[b], sc.outcome.last_hit_s[b] = n, t
        if sc.outcome.hit_n[b] < sc.outcome.hit_x_m.shape[1]:
            sc.outcome.hit_x_m[b, sc.outcome.hit_n[b]], sc.outcome.hit_y_m[b, sc.outcome.hit_n[b]] = x, y
            sc.outcome.hit_n[b] += 1
    # an emergency vehicle held up behind the ego (Leaderboard 2.0 YieldToEmergencyVehicleTest)
    e = sc.emergency.slot[b]
    if e >= 0 and sc.emergency.done[b] and sc.actors.valid[b, e] and (sc.actors.x_m[b, e] - x) ** 2 \
        + (sc.actors.y_m[b, e] - y) ** 2 > 60.0**2:
        sc.actors.valid[b, e] = False  # its part is over: it leaves (and does not come round again)
    if e >= 0 and not sc.emergency.done[b] and sc.actors.valid[b, e]:
        s, _, dist, _ = route_frame(sc, b, sc.actors.x_m[b, e], sc.actors.y_m[b, e], sc.route.progress_m[b] - 40.0,
                                    sc.route.progress_m[b] + 40.0)
        if s > sc.route.progress_m[b] + 1.0:
            sc.emergency.done[b] = True  # it got past
        elif dist < 4.0 and sc.route.progress_m[b] - s < EMERGENCY_CLOSE_M + p.ego_length:
            if sc.emergency.since_s[b] == INF:
                sc.emergency.since_s[b] = t
            elif t - sc.emergency.since_s[b] > EMERGENCY_PATIENCE_S:
                sc.outcome.infractions[b, INF_EMERGENCY] += 1
                _event(sc, b, INF_EMERGENCY, e)
                sc.emergency.done[b] = True
    # the robotaxi mission: stand at the curb within each stop's tolerance for its dwell time, in order
    i = sc.mission.stop_next[b]
    if i < sc.mission.stop_n[b]:
        there = abs(sc.route.progress_m[b] - sc.mission.stop_s_m[b, i]) <= sc.mission.stop_tol_m[b, i] \
            and sc.route.lateral_m[b] <= sc.mission.stop_lat_m[b, i]
        if there and speed < CURBSIDE_STILL_MPS:
            if sc.mission.stop_since_s[b] == INF:
                sc.mission.stop_since_s[b] = t
            elif t - sc.mission.stop_since_s[b] >= sc.mission.stop_dwell_s[b, i]:
                sc.mission.stop_next[b] = i + 1
                sc.mission.stop_since_s[b] = INF
        else:
            sc.mission.stop_since_s[b] = INF
            if sc.route.progress_m[b] > sc.mission.stop_s_m[b, i] + sc.mission.stop_tol_m[b, i] + CURBSIDE_MISSED_M:
                sc.outcome.infractions[b, INF_MISSED_STOP] += 1
                _event(sc, b, INF_MISSED_STOP, -1)
                sc.mission.stop_next[b] = i + 1
    # control lines on the route: red lights and stop signs
    half = 0.5 * p.ego_length
    i = sc.route.line_next[b]
    if i < sc.route.line_n[b] and m.lane_stop[sc.route.line_lane[b, i]] and not sc.junction.ego_served[b]:
        front = sc.route.line_s_m[b, i] - sc.route.progress_m[b] - half
        if front <= p.stop_distance and speed < p.stop_speed:
            sc.junction.ego_served[b] = True
            sc.junction.ego_arrival_s[b] = t
            sc.junction.ego_wait_lane[b] = sc.route.line_junction_lane[b, i]
    while i < sc.route.line_n[b] and sc.route.progress_m[b] >= sc.route.line_s_m[b, i]:
        lane = sc.route.line_lane[b, i]
        group = m.lane_light[lane]
        if group >= 0 and sc.lights[b, group] == RED:
            sc.outcome.infractions[b, INF_RED] += 1
            _event(sc, b, INF_RED, -1)
        elif group < 0 and m.lane_stop[lane] and not sc.junction.ego_served[b]:
            sc.outcome.infractions[b, INF_STOP] += 1
            _event(sc, b, INF_STOP, -1)
        i += 1
        sc.junction.ego_served[b] = False
        sc.junction.ego_wait_lane[b] = -1
    sc.route.line_next[b] = i
    # distance, off-road share, standing still
    step_m = speed * p.dt
    sc.outcome.driven_m[b] += step_m
    lanes = sc.located.lane[b]
    count = locate(m, x, y, 0.0, lanes, sc.located.s_m[b], sc.located.lat_m[b], sc.located.heading_rad[b],
                   sc.located.dist_m[b])
    on_road = False
    for j in range(count):
        if m.lane_junction[lanes[j]] >= 0 or abs(wrap(sc.located.heading_rad[b, j] - yaw)) < 0.5 * math.pi:
            on_road = True
    if count > 0 and not on_road:  # on an oncoming lane: allowed where a scenario makes the ego pass that way
        for z in range(sc.mission.zone_n[b]):
            if sc.mission.zone_start_m[b, z] <= sc.route.progress_m[b] <= sc.mission.zone_end_m[b, z]:
                on_road = True
    if not on_road and sc.route.progress_m[b] < sc.mission.curb_until_m[b]:  # leaving a parking place at the curb
        on_road = True
    if not on_road:
        sc.outcome.outside_m[b] += step_m
    sc.outcome.still_s[b] = sc.outcome.still_s[b] + p.dt if speed < 0.1 else 0.0
    # how the route ends
    if sc.route.progress_m[b] >= sc.route.end_m[b] - p.completion_tol:
        sc.outcome.status[b] = COMPLETED
    elif abs(sc.route.lateral_m[b]) > p.route_deviation:
        sc.outcome.status[b] = DEVIATION
    elif sc.outcome.still_s[b] >= p.blocked_s:
        sc.outcome.status[b] = BLOCKED
    elif t >= sc.outcome.timeout_s[b]:
        sc.outcome.status[b] = TIMEOUT
    # minimum speed: per quarter of the route, the ego's mean speed against the surrounding traffic's (after the
    # route's end is known: its last checkpoint is recorded then)
    _min_speed(sc, p, b)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _min_speed(sc: Any, p: Params, b: int) -> None:
    """The Leaderboard 2.0 minimum-speed test with ``MIN_SPEED_SECTIONS`` checkpoints, as scenario_runner's
    ``MinimumSpeedRouteTest`` (srunner/scenariomanager/scenarioatomics/atomic_criteria.py) computes it: on each
    frame with background vehicles around (here: within ``min_speed_radius``, where the Leaderboard's background
    activity lives), the ego's speed and the background vehicles' mean speed are added up, and frames without any
    count for neither; when the ego passes the next checkpoint, a mean ego speed below the traffic's records its
    percentage. When the route ends (however it ends), the last checkpoint is recorded only past 95 % of the route.
    """
    total, count = 0.0, 0
    for v in range(sc.vehicles.lanes.shape[1]):
        background = sc.actors.valid[b, v] and not sc.vehicles.parked[b, v] and sc.vehicles.background[b, v]
        if background and (sc.actors.x_m[b, v] - sc.ego.x_m[b]) ** 2 + (sc.actors.y_m[b, v] - sc.ego.y_m[b]) ** 2 \
                < p.min_speed_radius**2:
            total += sc.actors.speed_mps[b, v]
            count += 1
    if count:
        sc.outcome.ms_ego_sum_mps[b] += sc.ego.speed_mps[b]
        sc.outcome.ms_traffic_sum_mps[b] += total / count
        sc.outcome.ms_frames[b] += 1
    length = sc.route.end_m[b] - sc.route.start_m[b]
    done = (sc.route.progress_m[b] - sc.route.start_m[b]) / length if length > 0 else 1.0
    section = int(MIN_SPEED_SECTIONS * done)
    if section > sc.outcome.ms_section[b] or (sc.outcome.status[b] != RUNNING and done > 0.95):
        if sc.outcome.ms_frames[b] > 0 and sc.outcome.ms_traffic_sum_mps[b] > 0.0 \
            and sc.outcome.ms_ego_sum_mps[b] < sc.outcome.ms_traffic_sum_mps[b] \
                and sc.outcome.ms_section[b] < MIN_SPEED_SECTIONS:
            sc.outcome.min_speed_pct[b, sc.outcome.ms_section[b]] = 100.0 * sc.outcome.ms_ego_sum_mps[b] \
                / sc.outcome.ms_traffic_sum_mps[b]
        sc.outcome.ms_section[b] = min(section, MIN_SPEED_SECTIONS)
        sc.outcome.ms_ego_sum_mps[b] = sc.outcome.ms_traffic_sum_mps[b] = 0.0
        sc.outcome.ms_frames[b] = 0
