"""Background and scripted vehicles: IDM along their lanes, stopping at lights and stop signs, yielding at
junctions, a successor at every junction, leaving the map and coming back elsewhere."""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from sim.embedded.compiled import MapArrays
from sim.embedded.kernels.codes import (
    EMERGENCY,
    FOLLOW_ROUTE,
    IGNORE_LIGHTS,
    IGNORE_PRIORITY,
    INF,
    KEEP_OFFSET,
    NO_CURB_YIELD,
    NONE,
    RED,
    STATIC,
    VEHICLE,
    YELLOW,
    Params,
)
from sim.embedded.kernels.draws import uniform
from sim.embedded.kernels.geometry import boxes_touch, lane_pose
from sim.embedded.kernels.junction import box_blocked, must_yield
from sim.embedded.kernels.physics import idm

#: Sideways speed of a vehicle pulling out of a parking place into its lane.
CUT_IN_LATERAL_MPS = 1.0
#: An emergency vehicle passes the ego on the left with this offset from its lane's centre, moving sideways at
#: this speed, when the ego has pulled over (its left side at least this far right of the emergency vehicle's).
EMERGENCY_OFFSET_M = 2.0
EMERGENCY_LATERAL_MPS = 1.5
EMERGENCY_ROOM_M = 0.4


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def vehicle_pose(m: MapArrays, w: Any, b: int, v: int) -> None:
    x, y, heading = lane_pose(m, w.veh_lane[b, v, 0], w.veh_s[b, v])
    offset = w.veh_offset[b, v]
    w.act_x[b, v] = x - offset * math.sin(heading)
    w.act_y[b, v] = y + offset * math.cos(heading)
    w.act_yaw[b, v] = heading


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def choose_successor(m: MapArrays, w: Any, b: int, v: int, lane: int) -> int:
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


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def move_vehicles(m: MapArrays, w: Any, p: Params, b: int) -> None:
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
                if state == RED or (state == YELLOW and end_d > speed * speed / (2.0 * p.idm.comfort_decel_mps2)):
                    must = True
            if not must and polite and m.lane_stop[here] and w.veh_served[b, v] != here:
                must = True
                if end_d < p.idm.min_gap_m + 1.5 and speed < 0.3 and k == 0:
                    w.veh_served[b, v] = here
                    w.veh_arrival[b, v] = w.time[b]
            near = end_d < max(speed * speed / (2.0 * p.idm.comfort_decel_mps2) + 6.0, 8.0)
            entry_s = max(end_d, 0.0) / max(speed, 0.1)
            if not must and polite and near and must_yield(m, w, b, here, nxt, v, w.veh_arrival[b, v], entry_s):
                must = True
            if not must and polite and near and lead_kind == VEHICLE and box_blocked(m, p, nxt, gap - end_d, lead_v,
                                                                             2.0 * half):
                must = True
            if must:
                stop = max(end_d, 0.0)
            break
        desired = w.veh_desired[b, v] * m.lane_speed[l0] if not flags & EMERGENCY else w.veh_desired[b, v]
        if lawful and polite:  # slow down for curves (a scripted rule-breaker keeps its timed speed)
            desired = min(desired, m.lane_curve_speed[l0])
            if l1 >= 0 and len0 - s < speed * speed / (2.0 * p.idm.comfort_decel_mps2) + 5.0:
                desired = min(desired, m.lane_curve_speed[l1])
        if stop < gap:
            accel = idm(p.idm, speed, desired, stop + p.idm.min_gap_m * 0.4, 0.0)
        else:
            accel = idm(p.idm, speed, desired, gap, lead_v)
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
            l2 = choose_successor(m, w, b, v, l1)
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
            vehicle_pose(m, w, b, v)
            if sideways != 0.0:
                w.act_yaw[b, v] += math.atan2(sideways / p.dt, max(new_speed, 0.5))


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def respawn_vehicles(m: MapArrays, w: Any, p: Params, b: int) -> None:
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
        w.veh_lane[b, v, 1] = choose_successor(m, w, b, v, lane)
        w.veh_lane[b, v, 2] = choose_successor(m, w, b, v, w.veh_lane[b, v, 1])
        w.veh_s[b, v] = s
        w.act_v[b, v] = 0.5 * w.veh_desired[b, v] * m.lane_speed[lane]
        w.veh_served[b, v] = -1
        w.act_valid[b, v] = True
        vehicle_pose(m, w, b, v)
        return
