"""The privileged facts about the ego's situation that the expert drives by and the state vector shows:
the leader on its path, the next control line and whether to stop there, giving way at the junction ahead,
the path offset to pass obstacles or keep right (for an emergency vehicle, invading oncoming vehicles, a
curbside stop), and whether to wait before merging back from the curb."""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from sim.maps.compiled import MapArrays
from sim.scene.codes import (
    EMERGENCY,
    INF,
    LINE_LIGHT,
    LINE_NONE,
    LINE_STOP,
    NONE,
    RED,
    STATIC,
    VEHICLE,
    YELLOW,
)
from sim.scene.kernels.geometry import extent, locate
from sim.scene.kernels.infractions import EMERGENCY_CLOSE_M
from sim.scene.kernels.junction import box_blocked, must_yield
from sim.scene.kernels.route import route_frame
from sim.scene.params import Params

#: The ego looks for obstacles (static, parked) to pass this far ahead on its route ...
NUDGE_LOOKAHEAD_M = 35.0
#: ... passes them with this lateral clearance ...
NUDGE_CLEARANCE_M = 0.6
#: ... moving sideways this far per metre driven, keeping this much more room to the obstacles while it does.
NUDGE_RATE = 0.35
NUDGE_SLACK_M = 4.0
#: The ego yields to an emergency vehicle this close behind it by pulling over this far to the right ...
EMERGENCY_NOTICE_M = 45.0
PULL_OVER_M = 0.8
#: The ego pulls towards the curb for a curbside stop this far before it.
CURBSIDE_APPROACH_M = 40.0
#: Off its lane at the curb, the ego waits to merge while a vehicle coming along its lane is this close in time ...
MERGE_GAP_S = 4.5
#: ... or in distance.
MERGE_GAP_M = 12.0
#: The ego keeps this much room to oncoming vehicles that invade its lane, moving right (within its lane) for them.
INVADER_CLEARANCE_M = 0.3
#: Having stood this long giving way at a junction entry only to vehicles that stand in the junction (waiting, in
#: turn, for the ego), the ego creeps in past them, when its path clears each by this much.
DEADLOCK_WAIT_S = 4.0
CREEP_CLEARANCE_M = 0.5
#: Oncoming vehicles this far ahead are passed with the side-to-side gap the facts report.
ONCOMING_LOOKAHEAD_M = 40.0


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def ego_facts(m: MapArrays, sc: Any, p: Params, b: int) -> None:
    """What the privileged expert (and the state vector) needs: leader on the route, the next control line."""
    progress = sc.route.progress_m[b]
    half = 0.5 * p.ego_length
    gap, lead_v, lead_kind = INF, 0.0, NONE
    # obstacles to pass (see _obstacle_need)
    passing = sc.facts.nudge_m[b] != 0.0 and abs(sc.facts.offset_m[b] - sc.facts.nudge_m[b]) < 0.3
    for k in range(sc.occupancy.n[b]):
        actor = sc.occupancy.actor[b, k]
        if actor == -1:
            continue
        need = sc.facts.pass_need_m[b, actor]
        if passing and 0.0 < need <= sc.facts.nudge_m[b] + 0.05:
            continue
        run_up = 0.0
        if need > 0.0:
            run_up = max(need - sc.facts.offset_m[b], 0.0) / NUDGE_RATE
            if sc.facts.nudge_m[b] >= need - 0.05:
                run_up -= NUDGE_SLACK_M  # under way: keep rolling while moving sideways
        lane, s = sc.occupancy.lane[b, k], sc.occupancy.s_m[b, k]
        for r in range(sc.route.piece_n[b]):  # the first place past the ego where the route drives that point
            if sc.route.piece_lane[b, r] != lane or not sc.route.piece_start_m[b, r] \
                - 1e-6 <= s <= sc.route.piece_end_m[b, r] + 1e-6:
                continue
            d = sc.route.piece_offset_m[b, r] + s - sc.route.piece_start_m[b, r] - progress
            if half < d <= p.horizon:  # centres beside the front half are passed, not followed
                bumper = d - half - sc.occupancy.half_m[b, k] - run_up
                if bumper < gap:
                    gap, lead_v, lead_kind = bumper, sc.occupancy.speed_mps[b, k], sc.occupancy.kind[b, k]
    if sc.facts.side_gap_m[b] < gap:
        gap, lead_v, lead_kind = sc.facts.side_gap_m[b], sc.facts.side_speed_mps[b], VEHICLE
    sc.facts.leader_gap_m[b], sc.facts.leader_speed_mps[b] = gap, lead_v
    # speed limit: the route piece under the ego
    for r in range(sc.route.piece_n[b]):
        if sc.route.piece_offset_m[b, r] <= progress <= sc.route.piece_offset_m[b, r] + sc.route.piece_end_m[b, r] \
            - sc.route.piece_start_m[b, r]:
            sc.facts.speed_limit_mps[b] = m.lane_speed[sc.route.piece_lane[b, r]]
            break
    # the next junction entry on the route
    sc.facts.junction_lane[b], sc.facts.junction_approach[b], sc.facts.junction_dist_m[b] = -1, -1, INF
    for r in range(1, sc.route.piece_n[b]):
        lane, before = sc.route.piece_lane[b, r], sc.route.piece_lane[b, r - 1]
        if m.lane_junction[lane] < 0 or m.lane_junction[before] >= 0:
            continue
        front = sc.route.piece_offset_m[b, r] - progress - half
        if front > -0.5:
            sc.facts.junction_lane[b], sc.facts.junction_approach[b], sc.facts.junction_dist_m[b] = lane, before, front
            break
    # the next control line: its state, and whether to stop there
    i = sc.route.line_next[b]
    must = False
    sc.facts.stop_dist_m[b] = INF
    if i < sc.route.line_n[b]:
        lane = sc.route.line_lane[b, i]
        dist = sc.route.line_s_m[b, i] - progress
        sc.facts.line_dist_m[b] = dist
        front = dist - half
        group = m.lane_light[lane]
        if group >= 0:
            state = sc.lights[b, group]
            sc.facts.line_kind[b], sc.facts.line_state[b] = LINE_LIGHT, state
            # a yellow light is for stopping while the ego can stop before its centre (what a red-light run
            # counts) crosses the line: also when it already stands with its front past the line
            if state == RED or (state == YELLOW and dist > sc.ego.speed_mps[b] ** 2 / (2.0 * p.idm.comfort_decel_mps2)):
                must = True
        elif m.lane_stop[lane]:
            sc.facts.line_kind[b], sc.facts.line_state[b] = LINE_STOP, -1
            must = not sc.junction.ego_served[b]
        else:
            sc.facts.line_kind[b], sc.facts.line_state[b] = LINE_NONE, -1
        if must:
            sc.facts.stop_dist_m[b] = dist
    else:
        sc.facts.line_kind[b], sc.facts.line_state[b], sc.facts.line_dist_m[b] = LINE_NONE, -1, INF
    # yield at the junction entry; when the ego and the vehicles standing in the junction wait for each other,
    # creep in past them
    front = sc.facts.junction_dist_m[b]
    near = front < max(sc.ego.speed_mps[b] ** 2 / (2.0 * p.idm.comfort_decel_mps2) + 6.0, 8.0)
    give_way = False
    lane = sc.facts.junction_lane[b]
    if sc.facts.creep_lane[b] != lane:
        sc.facts.creep_lane[b] = -1
    if not must and lane >= 0 and near:
        entry_s = max(front, 0.0) / max(sc.ego.speed_mps[b], 0.1)
        approach, arrival = sc.facts.junction_approach[b], sc.junction.ego_arrival_s[b]
        if sc.facts.creep_lane[b] < 0 and sc.outcome.still_s[b] >= DEADLOCK_WAIT_S \
                and must_yield(m, sc, b, approach, lane, -1, arrival, entry_s) \
                and not must_yield(m, sc, b, approach, lane, -1, arrival, entry_s, False):
            sc.facts.creep_lane[b] = lane
        if sc.facts.creep_lane[b] >= 0 and not _standing_clear(m, sc, p, b, lane):
            sc.facts.creep_lane[b] = -1
        creeping = sc.facts.creep_lane[b] >= 0
        if must_yield(m, sc, b, approach, lane, -1, arrival, entry_s, not creeping) or \
                (lead_kind == VEHICLE and box_blocked(m, p, lane, gap - front, lead_v, p.ego_length)):
            must = give_way = True
            sc.facts.stop_dist_m[b] = front + half
    sc.facts.must_stop[b] = must
    sc.facts.give_way[b] = give_way
    _oncoming(sc, p, b)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _standing_clear(m: MapArrays, sc: Any, p: Params, b: int, lane: int) -> bool:
    """Whether the ego's path ahead keeps ``CREEP_CLEARANCE_M`` from every vehicle standing on a junction lane
    that conflicts with ``lane``."""
    progress = sc.route.progress_m[b]
    for k in range(sc.occupancy.n[b]):
        n = sc.occupancy.actor[b, k]
        if n < 0 or sc.occupancy.kind[b, k] != VEHICLE or not m.conflict[lane, sc.occupancy.lane[b, k]]:
            continue
        s, lat, _, heading = route_frame(sc, b, sc.actors.x_m[b, n], sc.actors.y_m[b, n], progress - p.ego_length,
                                         progress + p.horizon)
        across, along = extent(sc, b, n, heading)
        if s + along < progress - 0.5 * p.ego_length:
            continue  # behind the ego
        if abs(lat - _path_offset(sc, b, s)) < across + 0.5 * p.ego_width + CREEP_CLEARANCE_M:
            return False
    return True


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _oncoming(sc: Any, p: Params, b: int) -> None:
    """The oncoming vehicle ahead that the ego's path passes closest, side to side: the gap, how far ahead it is
    (bumper to bumper along the route) and its speed. A vehicle on the path itself (a gap below 0) is the
    leader's business, not a pass."""
    progress = sc.route.progress_m[b]
    half = 0.5 * p.ego_length
    ego_half = 0.5 * p.ego_width
    best, ahead, speed = INF, INF, 0.0
    vehicles = sc.vehicles.lanes.shape[1]
    for n in range(sc.actors.valid.shape[1]):
        if not sc.actors.valid[b, n] or sc.actors.kind[b, n] != VEHICLE or (n < vehicles and sc.vehicles.parked[b, n]):
            continue
        x, y = sc.actors.x_m[b, n], sc.actors.y_m[b, n]
        if (x - sc.ego.x_m[b]) ** 2 + (y - sc.ego.y_m[b]) ** 2 > (ONCOMING_LOOKAHEAD_M + 10.0) ** 2 or \
                math.cos(sc.actors.yaw_rad[b, n] - sc.ego.yaw_rad[b]) > -0.5:
            continue
        s, lat, _, heading = route_frame(sc, b, x, y, progress, progress + ONCOMING_LOOKAHEAD_M)
        if s <= progress or math.cos(sc.actors.yaw_rad[b, n] - heading) > -0.85:
            continue
        across, along = extent(sc, b, n, heading)
        gap = abs(lat - _path_offset(sc, b, s)) - across - ego_half
        if 0.0 <= gap < best:
            best, ahead, speed = gap, max(s - progress - half - along, 0.0), sc.actors.speed_mps[b, n]
    sc.facts.oncoming_gap_m[b], sc.facts.oncoming_dist_m[b], sc.facts.oncoming_speed_mps[b] = best, ahead, speed


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _obstacle_need(sc: Any, p: Params, b: int, n: int, progress: float) -> tuple[float, float, float]:
    """For an obstacle (static actor, parked vehicle) on the ego's path ahead: the leftward offset of the path
    that clears it and the route stretch it covers; 0 (and an empty stretch) for any other actor. Obstacles are
    followed as if nearer by the run-up their sideways move still takes, and passed once the path clears them."""
    if not sc.actors.valid[b, n] or not (sc.actors.kind[b, n] == STATIC
                                     or (n < sc.vehicles.lanes.shape[1] and sc.vehicles.parked[b, n])):
        return 0.0, INF, -INF
    x, y = sc.actors.x_m[b, n], sc.actors.y_m[b, n]
    if (x - sc.ego.x_m[b]) ** 2 + (y - sc.ego.y_m[b]) ** 2 > (NUDGE_LOOKAHEAD_M + 10.0) ** 2:
        return 0.0, INF, -INF
    s, lat, dist, heading = route_frame(sc, b, x, y, progress - 2.0, progress + NUDGE_LOOKAHEAD_M + 5.0)
    across, along = extent(sc, b, n, heading)
    if s + along < progress or s - along - progress > NUDGE_LOOKAHEAD_M or dist > 8.0:
        return 0.0, INF, -INF
    reach = 0.5 * p.ego_width + NUDGE_CLEARANCE_M
    if lat - across > reach or lat + across < -reach:  # beside the path
        return 0.0, INF, -INF
    return lat + across + reach, s - along, s + along


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _corridor_clear(m: MapArrays, sc: Any, p: Params, b: int, shift: float, first: float, last: float) -> bool:
    """Whether the ego may take its path ``shift`` to the left past obstacles between ``first`` and ``last``:
    the road is there, and no vehicle uses that corridor (oncoming ones: before the ego is past)."""
    progress = sc.route.progress_m[b]
    ego_half = 0.5 * p.ego_width
    mid = 0.5 * (first + last)
    k = min(max(int(mid / sc.route.ds_m[b]), 0), sc.route.n[b] - 2)
    hx, hy = sc.route.x_m[b, k + 1] - sc.route.x_m[b, k], sc.route.y_m[b, k + 1] - sc.route.y_m[b, k]
    norm = math.sqrt(hx * hx + hy * hy) + 1e-9
    px, py = sc.route.x_m[b, k] - hy / norm * shift, sc.route.y_m[b, k] + hx / norm * shift
    if locate(m, px, py, 0.0, sc.located.lane[b], sc.located.s_m[b], sc.located.lat_m[b], sc.located.heading_rad[b],
              sc.located.dist_m[b]) == 0:
        return False
    pass_s = (last + p.ego_length + 5.0 - progress) / max(sc.ego.speed_mps[b], 3.0)
    for v in range(sc.vehicles.lanes.shape[1]):
        if not sc.actors.valid[b, v] or sc.vehicles.parked[b, v]:
            continue
        x, y = sc.actors.x_m[b, v], sc.actors.y_m[b, v]
        if (x - sc.ego.x_m[b]) ** 2 + (y - sc.ego.y_m[b]) ** 2 > 100.0**2:
            continue
        s, lat, dist, heading = route_frame(sc, b, x, y, progress - 30.0, last + 100.0)
        if dist > shift + 6.0 or abs(lat - shift) > 0.5 * sc.actors.width_m[b, v] + ego_half + 1.0:
            continue
        if math.cos(sc.actors.yaw_rad[b, v] - heading) < 0.0:  # oncoming
            if s > progress - 5.0 and s - sc.actors.speed_mps[b, v] * pass_s < last + 10.0:
                return False
        elif progress - 15.0 < s < last + 10.0 and not (s < progress and abs(lat) < 1.0):
            return False  # (someone behind the ego in its own lane does not take the corridor)
    return True


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _path_offset(sc: Any, b: int, s: float) -> float:
    """The ego's path offset (left +) when it gets to route ``s``: moving ``NUDGE_RATE`` sideways per metre from
    where it is towards the nudge until the pass ends, then back towards its lane."""
    progress, offset = sc.route.progress_m[b], sc.facts.offset_m[b]
    end = max(sc.facts.nudge_end_m[b], progress) if sc.facts.nudge_m[b] != 0.0 else progress
    shift = NUDGE_RATE * (min(s, end) - progress)
    offset += min(max(sc.facts.nudge_m[b] - offset, -shift), shift) if shift > 0.0 else 0.0
    shift = NUDGE_RATE * (s - end)
    return offset - min(max(offset, -shift), shift) if shift > 0.0 else offset


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _keep_right(sc: Any, p: Params, b: int) -> float:
    """How far right (negative: left +) the ego keeps within its lane: pulled over for an emergency vehicle coming
    from behind (``ego_yield_emg``), or clear of oncoming vehicles that invade its lane ahead; 0: neither."""
    progress = sc.route.progress_m[b]
    ego_half = 0.5 * p.ego_width
    right = 0.0
    sc.facts.yield_emergency[b] = False
    for v in range(sc.vehicles.lanes.shape[1]):
        # (a vehicle on its lane's centre keeps to its lane: only those off it, and emergency vehicles, matter)
        if not sc.actors.valid[b, v] or sc.vehicles.parked[b, v] or (sc.vehicles.offset_m[b, v] == 0.0
                                                            and not sc.vehicles.flags[b, v] & EMERGENCY):
            continue
        x, y = sc.actors.x_m[b, v], sc.actors.y_m[b, v]
        if (x - sc.ego.x_m[b]) ** 2 + (y - sc.ego.y_m[b]) ** 2 > (EMERGENCY_NOTICE_M + 5.0) ** 2:
            continue
        if sc.vehicles.flags[b, v] & EMERGENCY:
            s, lat, dist, heading = route_frame(sc, b, x, y, progress - EMERGENCY_NOTICE_M - 5.0, progress + 5.0)
            coming = sc.actors.speed_mps[b, v] > 3.0 or progress - s < EMERGENCY_CLOSE_M  # (not held up elsewhere)
            if dist < 4.0 and progress - EMERGENCY_NOTICE_M < s < progress + 0.5 * p.ego_length and coming:
                right = -PULL_OVER_M
                sc.facts.yield_emergency[b] = True
            continue
        if math.cos(sc.actors.yaw_rad[b,
                                      v] - sc.ego.yaw_rad[b]) > -0.5:  # (cheap test first: not coming towards the ego)
            continue
        s, lat, dist, heading = route_frame(sc, b, x, y, progress, progress + NUDGE_LOOKAHEAD_M)
        if s <= progress or math.cos(sc.actors.yaw_rad[b, v] - heading) > -0.85 or lat <= 0.0:
            continue  # only oncoming vehicles ahead, left of the route
        across, _ = extent(sc, b, v, heading)
        inner = lat - across  # their right side
        if -ego_half < inner < ego_half + INVADER_CLEARANCE_M:
            right = min(right, max(inner - ego_half - INVADER_CLEARANCE_M, -PULL_OVER_M))
    i = sc.mission.stop_next[b]  # the next curbside stop: pull over to the curb before it
    if i < sc.mission.stop_n[b] and sc.mission.stop_s_m[b, i] - CURBSIDE_APPROACH_M < progress:
        right = min(right, sc.mission.stop_offset_m[b, i])
    return right


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _merge_wait(sc: Any, p: Params, b: int) -> bool:
    """Whether the ego, off its lane's centre towards the curb, should wait before pulling into the lane: a
    vehicle coming along the lane from behind would reach it within ``MERGE_GAP_S`` (or is within ``MERGE_GAP_M``).
    One standing behind the ego waits for it."""
    if sc.route.lateral_m[b] > -1.5 or sc.ego.speed_mps[b] > 3.0:
        return False
    progress = sc.route.progress_m[b]
    for v in range(sc.vehicles.lanes.shape[1]):
        if not sc.actors.valid[b, v] or sc.vehicles.parked[b, v] or sc.actors.speed_mps[b, v] < 1.0:
            continue
        x, y = sc.actors.x_m[b, v], sc.actors.y_m[b, v]
        if (x - sc.ego.x_m[b]) ** 2 + (y - sc.ego.y_m[b]) ** 2 > 80.0**2:
            continue
        s, _, dist, heading = route_frame(sc, b, x, y, progress - 70.0, progress + 8.0)
        if dist > 2.0 or math.cos(sc.actors.yaw_rad[b, v] - heading) < 0.5:
            continue
        behind = progress - s
        if -0.5 * (p.ego_length + sc.actors.length_m[b, v]) < behind < MERGE_GAP_M or \
                (behind > 0.0 and behind < sc.actors.speed_mps[b, v] * MERGE_GAP_S):
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def plan_path(m: MapArrays, sc: Any, p: Params, b: int) -> None:
    """Pass obstacles (static ones, parked vehicles) that block the route ahead: shift the ego's path to the left
    by what clears them, when the road is there and no moving vehicle uses that corridor (oncoming ones: before
    the ego is past); hold the shift until the ego is past them; otherwise stay (and stop behind them)."""
    progress = sc.route.progress_m[b]
    ego_half = 0.5 * p.ego_width
    committed = sc.facts.nudge_m[b] > 0.0 and progress < sc.facts.nudge_end_m[b]  # a pass, once begun, is completed
    first, last, shift = INF, -INF, 0.0
    for n in range(sc.actors.valid.shape[1]):  # what the path clears is passed, not followed (see ego_view)
        need, lo, hi = _obstacle_need(sc, p, b, n, progress)
        sc.facts.pass_need_m[b, n] = need
        if need > 0.0:
            shift, first, last = max(shift, need), min(first, lo), max(last, hi)
    if not committed:
        sc.facts.nudge_m[b] = 0.0
    if shift > max(sc.facts.nudge_m[b], 0.0) + 0.05:  # obstacles the present path does not clear
        if _corridor_clear(m, sc, p, b, shift, first, last):
            sc.facts.nudge_m[b] = shift
            sc.facts.nudge_end_m[b] = max(sc.facts.nudge_end_m[b], last + p.ego_length + 3.0) if committed else \
                last + p.ego_length + 3.0
    elif committed and shift > 0.0:
        sc.facts.nudge_end_m[b] = max(sc.facts.nudge_end_m[b], last + p.ego_length + 3.0)
    right = _keep_right(sc, p, b)
    if sc.facts.nudge_m[b] <= 0.0:
        sc.facts.nudge_m[b] = right
    sc.facts.merge_wait[b] = _merge_wait(sc, p, b)
    i = sc.mission.stop_next[b]
    sc.facts.stop_target_m[b] = sc.mission.stop_s_m[b, i] if i < sc.mission.stop_n[b] else INF
    sc.facts.nudge_need_m[b] = max(shift, sc.facts.nudge_m[b]) if shift > 0.0 else sc.facts.nudge_m[b]
    # the path moves sideways as the ego drives on
    rate = NUDGE_RATE * sc.ego.speed_mps[b] * p.dt
    sc.facts.offset_m[b] += min(max(sc.facts.nudge_m[b] - sc.facts.offset_m[b], -rate), rate)
    # off its lane, the ego also follows whoever is in the corridor it drives
    sc.facts.side_gap_m[b], sc.facts.side_speed_mps[b] = INF, 0.0
    if sc.facts.offset_m[b] == 0.0 and sc.facts.nudge_m[b] == 0.0:
        return
    for n in range(sc.actors.valid.shape[1]):
        if not sc.actors.valid[b, n] or 0.0 < sc.facts.pass_need_m[b, n] <= sc.facts.nudge_m[b] + 0.05:
            continue
        x, y = sc.actors.x_m[b, n], sc.actors.y_m[b, n]
        if (x - sc.ego.x_m[b]) ** 2 + (y - sc.ego.y_m[b]) ** 2 > (p.horizon + 5.0) ** 2:
            continue
        s, lat, dist, heading = route_frame(sc, b, x, y, progress - 2.0, progress + p.horizon + 5.0)
        across, along = extent(sc, b, n, heading)
        lateral = max(abs(sc.facts.offset_m[b]), abs(sc.facts.nudge_m[b]))
        # the corridor there: where the path will be when the ego gets there; an oncoming vehicle on the move
        # comes closer meanwhile (it is followed by where the ego drives now)
        oncoming = math.cos(sc.actors.yaw_rad[b, n] - heading) < 0.0 and sc.actors.speed_mps[b, n] > 0.5
        path = sc.facts.offset_m[b] if oncoming else _path_offset(sc, b, s)
        if dist > lateral + 6.0 or abs(lat - path) > across + ego_half + 0.3:
            continue
        d = s - progress - 0.5 * p.ego_length - along
        if -along < d < sc.facts.side_gap_m[b]:
            sc.facts.side_gap_m[b] = max(d, 0.0)
            sc.facts.side_speed_mps[b] = max(sc.actors.speed_mps[b, n] * math.cos(sc.actors.yaw_rad[b, n] - heading),
                                             0.0)
