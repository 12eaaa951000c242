"""Background and scripted vehicles: IDM along their lanes, stopping at lights and stop signs, yielding at
junctions, a successor at every junction, leaving the map and coming back elsewhere."""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from sim.embedded.kernels.draws import uniform
from sim.embedded.kernels.physics import idm
from sim.maps.compiled import MapArrays
from sim.scene.codes import (
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
)
from sim.scene.kernels.geometry import boxes_touch, lane_pose
from sim.scene.kernels.junction import box_blocked, must_yield
from sim.scene.params import Params

#: Sideways speed of a vehicle pulling out of a parking place into its lane.
CUT_IN_LATERAL_MPS = 1.0
#: An emergency vehicle passes the ego on the left with this offset from its lane's centre, moving sideways at
#: this speed, when the ego has pulled over (its left side at least this far right of the emergency vehicle's).
EMERGENCY_OFFSET_M = 2.0
EMERGENCY_LATERAL_MPS = 1.5
EMERGENCY_ROOM_M = 0.4


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def vehicle_pose(m: MapArrays, sc: Any, w: Any, b: int, v: int) -> None:
    x, y, heading = lane_pose(m, sc.vehicles.lanes[b, v, 0], sc.vehicles.lane_s_m[b, v])
    offset = sc.vehicles.offset_m[b, v]
    sc.actors.x_m[b, v] = x - offset * math.sin(heading)
    sc.actors.y_m[b, v] = y + offset * math.cos(heading)
    sc.actors.yaw_rad[b, v] = heading


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def choose_successor(m: MapArrays, sc: Any, w: Any, b: int, v: int, lane: int) -> int:
    if lane < 0:
        return -1
    first, last = m.succ_offset[lane], m.succ_offset[lane + 1]
    if first == last:
        return -1
    if sc.vehicles.flags[b, v] & FOLLOW_ROUTE:
        for r in range(sc.route.piece_n[b] - 1):
            if sc.route.piece_lane[b, r] == lane:
                for k in range(first, last):
                    if m.succ[k] == sc.route.piece_lane[b, r + 1]:
                        return m.succ[k]
    draw = uniform(w.seed[b], v, w.traffic.draws[b, v])
    w.traffic.draws[b, v] += 1
    return m.succ[first + min(int(draw * (last - first)), last - first - 1)]


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def move_vehicles(m: MapArrays, sc: Any, w: Any, p: Params, b: int) -> None:
    for v in range(sc.vehicles.lanes.shape[1]):
        if not sc.actors.valid[b, v] or sc.vehicles.parked[b, v]:
            continue
        l0, l1, l2 = sc.vehicles.lanes[b, v, 0], sc.vehicles.lanes[b, v, 1], sc.vehicles.lanes[b, v, 2]
        s, speed, half = sc.vehicles.lane_s_m[b, v], sc.actors.speed_mps[b, v], 0.5 * sc.actors.length_m[b, v]
        gap, lead_v, lead_kind, lead = INF, 0.0, NONE, -1
        len0 = m.lane_length[l0]
        len1 = m.lane_length[l1] if l1 >= 0 else 0.0
        flags = sc.vehicles.flags[b, v]
        # an emergency vehicle squeezes past an ego that has pulled over to the right
        passes_ego = False
        if flags & EMERGENCY:  # (the ego's box reaches this far left of the route, at its angle to it)
            rel = sc.ego.yaw_rad[b] - sc.actors.yaw_rad[b, v]
            reach = sc.route.lateral_m[b] + 0.5 * p.ego_length * abs(math.sin(rel)) + 0.5 * p.ego_width \
                * abs(math.cos(rel))
            passes_ego = reach < sc.vehicles.offset_m[b, v] - 0.5 * sc.actors.width_m[b, v] - EMERGENCY_ROOM_M
        # a vehicle with the right of way along the ego's route does not brake for the ego pulling out of the curb
        ignores_ego = passes_ego or ((flags & NO_CURB_YIELD) != 0 and sc.route.lateral_m[b] < -1.0)
        for k in range(sc.occupancy.n[b]):
            if ignores_ego and sc.occupancy.actor[b, k] == -1:
                continue
            lane = sc.occupancy.lane[b, k]
            if lane == l0:
                d = sc.occupancy.s_m[b, k] - s
            elif lane == l1 and l1 >= 0:
                d = len0 - s + sc.occupancy.s_m[b, k]
            elif lane == l2 and l2 >= 0:
                d = len0 - s + len1 + sc.occupancy.s_m[b, k]
            else:
                continue
            if sc.occupancy.actor[b, k] == v or d <= half or d > p.horizon:  # centres beside the front half are passed
                continue
            bumper = d - half - sc.occupancy.half_m[b, k]
            if bumper < gap:
                gap, lead_v, lead_kind, lead = bumper, sc.occupancy.speed_mps[b, k], sc.occupancy.kind[b, k], \
                    sc.occupancy.actor[b, k]
        # in contact with the ego (a crash), a vehicle stands until the ego has left it, and stays on the map: it
        # does not drive on inside the ego's box (where the Leaderboard's collision rules would count the one crash
        # again every few seconds); one the ego ran into from behind (the ego's centre behind its rear bumper)
        # drives on
        behind = (sc.ego.x_m[b] - sc.actors.x_m[b, v]) * math.cos(sc.actors.yaw_rad[b, v]) + \
            (sc.ego.y_m[b] - sc.actors.y_m[b, v]) * math.sin(sc.actors.yaw_rad[b, v]) < -half
        crashed = not passes_ego and not behind and boxes_touch(
            sc.ego.x_m[b], sc.ego.y_m[b], sc.ego.yaw_rad[b], p.ego_length, p.ego_width, sc.actors.x_m[b, v], \
                sc.actors.y_m[b, v],
            sc.actors.yaw_rad[b, v], sc.actors.length_m[b, v], sc.actors.width_m[b, v])
        if gap < 8.0 and speed < 0.5 and sc.vehicles.background[b, v] and not crashed:
            blocked = lead >= 0 and (sc.actors.kind[b, lead] == STATIC
                                     or (lead < sc.vehicles.lanes.shape[1] and sc.vehicles.parked[b, lead]))
            head_on = lead == -1 and math.cos(sc.ego.yaw_rad[b] - sc.actors.yaw_rad[b, v]) < -0.5
            if blocked or head_on:  # background traffic leaves a lane that an obstacle, or the ego passing one,
                sc.actors.valid[b, v] = False  # blocks (and comes back elsewhere)
                continue
        if crashed:
            gap, lead_v, lead_kind, lead = 0.0, 0.0, VEHICLE, -1
        lawful, polite = (flags & IGNORE_LIGHTS) == 0, (flags & IGNORE_PRIORITY) == 0
        stop = INF
        offset = 0.0
        for k in range(2):
            here = sc.vehicles.lanes[b, v, k]
            nxt = sc.vehicles.lanes[b, v, k + 1]
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
                state = sc.lights[b, group]
                if state == RED or (state == YELLOW and end_d > speed * speed / (2.0 * p.idm.comfort_decel_mps2)):
                    must = True
            if not must and polite and m.lane_stop[here] and sc.vehicles.served_lane[b, v] != here:
                must = True
                if end_d < p.idm.min_gap_m + 1.5 and speed < 0.3 and k == 0:
                    sc.vehicles.served_lane[b, v] = here
                    sc.vehicles.arrival_s[b, v] = sc.time_s[b]
            near = end_d < max(speed * speed / (2.0 * p.idm.comfort_decel_mps2) + 6.0, 8.0)
            entry_s = max(end_d, 0.0) / max(speed, 0.1)
            if not must and polite and near and must_yield(m, sc, b, here, nxt, v, sc.vehicles.arrival_s[b, v],
                                                           entry_s):
                must = True
            if not must and polite and near and lead_kind == VEHICLE and box_blocked(m, p, nxt, gap - end_d, lead_v,
                                                                             2.0 * half):
                must = True
            if must:
                stop = max(end_d, 0.0)
            break
        desired = w.traffic.desired_mps[b,
                                        v] * m.lane_speed[l0] if not flags & EMERGENCY else w.traffic.desired_mps[b, v]
        if lawful and polite:  # slow down for curves (a scripted rule-breaker keeps its timed speed)
            desired = min(desired, m.lane_curve_speed[l0])
            if l1 >= 0 and len0 - s < speed * speed / (2.0 * p.idm.comfort_decel_mps2) + 5.0:
                desired = min(desired, m.lane_curve_speed[l1])
        if stop < gap:
            accel = idm(p.idm, speed, desired, stop + p.idm.min_gap_m * 0.4, 0.0)
        else:
            accel = idm(p.idm, speed, desired, gap, lead_v)
        if sc.time_s[b] < w.traffic.brake_until_s[b, v]:
            accel = -w.traffic.brake_decel_mps2[b, v]
        new_speed = max(speed + accel * p.dt, 0.0)
        s += 0.5 * (speed + new_speed) * p.dt
        sc.actors.speed_mps[b, v] = new_speed
        while s > m.lane_length[l0]:
            s -= m.lane_length[l0]
            if l1 < 0:
                sc.actors.valid[b, v] = False
                break
            l0, l1 = l1, l2
            l2 = choose_successor(m, sc, w, b, v, l1)
            sc.vehicles.served_lane[b, v] = -1
        sc.vehicles.lanes[b, v, 0], sc.vehicles.lanes[b, v, 1], sc.vehicles.lanes[b, v, 2] = l0, l1, l2
        sc.vehicles.lane_s_m[b, v] = s
        offset = sc.vehicles.offset_m[b, v]
        sideways = 0.0
        if flags & EMERGENCY:  # beside or just behind the ego: move left to pass it
            dx, dy = sc.ego.x_m[b] - sc.actors.x_m[b, v], sc.ego.y_m[b] - sc.actors.y_m[b, v]
            ahead = dx * math.cos(sc.actors.yaw_rad[b, v]) + dy * math.sin(sc.actors.yaw_rad[b, v])
            target = EMERGENCY_OFFSET_M if -p.ego_length < ahead < 25.0 and dx * dx + dy * dy < 30.0**2 else 0.0
            sideways = min(max(target - offset, -EMERGENCY_LATERAL_MPS * p.dt), EMERGENCY_LATERAL_MPS * p.dt)
            sc.vehicles.offset_m[b, v] = offset + sideways
        elif flags & KEEP_OFFSET:  # once past the ego, a vehicle that kept off its lane's centre goes back to it
            dx, dy = sc.ego.x_m[b] - sc.actors.x_m[b, v], sc.ego.y_m[b] - sc.actors.y_m[b, v]
            if dx * math.cos(sc.actors.yaw_rad[b, v]) + dy * math.sin(sc.actors.yaw_rad[b, v]) < -10.0:
                flags &= ~KEEP_OFFSET
                sc.vehicles.flags[b, v] = flags
        if not flags & (EMERGENCY | KEEP_OFFSET) and offset != 0.0 and new_speed > 0.1:  # pulling into the lane
            sideways = -min(abs(offset), CUT_IN_LATERAL_MPS * p.dt) * (1.0 if offset > 0.0 else -1.0)
            sc.vehicles.offset_m[b, v] = offset + sideways
        if sc.actors.valid[b, v]:
            vehicle_pose(m, sc, w, b, v)
            if sideways != 0.0:
                sc.actors.yaw_rad[b, v] += math.atan2(sideways / p.dt, max(new_speed, 0.5))


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def respawn_vehicles(m: MapArrays, sc: Any, w: Any, p: Params, b: int) -> None:
    """Bring back one vehicle that left the map (if its slot takes part in traffic) far from the ego."""
    for v in range(sc.vehicles.lanes.shape[1]):
        if sc.actors.valid[b, v] or not sc.vehicles.background[b, v]:
            continue
        lane = m.spawn_lanes[min(int(uniform(w.seed[b], v, w.traffic.draws[b, v]) * len(m.spawn_lanes)),
                                 len(m.spawn_lanes) - 1)]
        s = uniform(w.seed[b], v, w.traffic.draws[b, v] + 1) * max(m.lane_length[lane] - 15.0, 0.0)
        w.traffic.draws[b, v] += 2
        x, y, _ = lane_pose(m, lane, s)
        if (x - sc.ego.x_m[b]) ** 2 + (y - sc.ego.y_m[b]) ** 2 < 30.0**2:
            return
        for n in range(sc.actors.valid.shape[1]):
            if sc.actors.valid[b, n] and (x - sc.actors.x_m[b, n]) ** 2 + (y - sc.actors.y_m[b, n]) ** 2 < 12.0**2:
                return
        sc.vehicles.lanes[b, v, 0] = lane
        sc.vehicles.lanes[b, v, 1] = choose_successor(m, sc, w, b, v, lane)
        sc.vehicles.lanes[b, v, 2] = choose_successor(m, sc, w, b, v, sc.vehicles.lanes[b, v, 1])
        sc.vehicles.lane_s_m[b, v] = s
        sc.actors.speed_mps[b, v] = 0.5 * w.traffic.desired_mps[b, v] * m.lane_speed[lane]
        sc.vehicles.served_lane[b, v] = -1
        sc.actors.valid[b, v] = True
        vehicle_pose(m, sc, w, b, v)
        return
