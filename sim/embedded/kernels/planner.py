"""The privileged facts about the ego's situation that the expert drives by and the state vector shows:
the leader on its path, the next control line and whether to stop there, giving way at the junction ahead,
the path offset to pass obstacles or keep right (for an emergency vehicle, invading oncoming vehicles, a
curbside stop), and whether to wait before merging back from the curb."""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from sim.embedded.compiled import MapArrays
from sim.embedded.kernels.codes import (
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
    Params,
)
from sim.embedded.kernels.geometry import extent, locate
from sim.embedded.kernels.infractions import EMERGENCY_CLOSE_M
from sim.embedded.kernels.junction import box_blocked, must_yield
from sim.embedded.kernels.route import route_frame

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


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def ego_facts(m: MapArrays, w: Any, p: Params, b: int) -> None:
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
            if state == RED or (state == YELLOW and dist > w.ego_v[b] ** 2 / (2.0 * p.idm.comfort_decel_mps2)):
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
    near = front < max(w.ego_v[b] ** 2 / (2.0 * p.idm.comfort_decel_mps2) + 6.0, 8.0)
    give_way = False
    if not must and w.ego_jlane[b] >= 0 and near:
        entry_s = max(front, 0.0) / max(w.ego_v[b], 0.1)
        if must_yield(m, w, b, w.ego_japproach[b], w.ego_jlane[b], -1, w.ego_arrival[b], entry_s) or \
                (lead_kind == VEHICLE and box_blocked(m, p, w.ego_jlane[b], gap - front, lead_v, p.ego_length)):
            must = give_way = True
            w.ego_stop_dist[b] = front + half
    w.ego_must_stop[b] = must
    w.ego_give_way[b] = give_way


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
    s, lat, dist, heading = route_frame(w, b, x, y, progress - 2.0, progress + NUDGE_LOOKAHEAD_M + 5.0)
    across, along = extent(w, b, n, heading)
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
        s, lat, dist, heading = route_frame(w, b, x, y, progress - 30.0, last + 100.0)
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
            s, lat, dist, heading = route_frame(w, b, x, y, progress - EMERGENCY_NOTICE_M - 5.0, progress + 5.0)
            coming = w.act_v[b, v] > 3.0 or progress - s < EMERGENCY_CLOSE_M  # (not held up elsewhere)
            if dist < 4.0 and progress - EMERGENCY_NOTICE_M < s < progress + 0.5 * p.ego_length and coming:
                right = -PULL_OVER_M
                w.ego_yield_emg[b] = True
            continue
        if math.cos(w.act_yaw[b, v] - w.ego_yaw[b]) > -0.5:  # (cheap test first: not coming towards the ego)
            continue
        s, lat, dist, heading = route_frame(w, b, x, y, progress, progress + NUDGE_LOOKAHEAD_M)
        if s <= progress or math.cos(w.act_yaw[b, v] - heading) > -0.85 or lat <= 0.0:
            continue  # only oncoming vehicles ahead, left of the route
        across, _ = extent(w, b, v, heading)
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
        s, _, dist, heading = route_frame(w, b, x, y, progress - 70.0, progress + 8.0)
        if dist > 2.0 or math.cos(w.act_yaw[b, v] - heading) < 0.5:
            continue
        behind = progress - s
        if -0.5 * (p.ego_length + w.act_len[b, v]) < behind < MERGE_GAP_M or \
                (behind > 0.0 and behind < w.act_v[b, v] * MERGE_GAP_S):
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def plan_path(m: MapArrays, w: Any, p: Params, b: int) -> None:
    """Pass obstacles (static ones, parked vehicles) that block the route ahead: shift the ego's path to the left
    by what clears them, when the road is there and no moving vehicle uses that corridor (oncoming ones: before
    the ego is past); hold the shift until the ego is past them; otherwise stay (and stop behind them)."""
    progress = w.progress[b]
    ego_half = 0.5 * p.ego_width
    committed = w.ego_nudge[b] > 0.0 and progress < w.ego_nudge_end[b]  # a pass, once begun, is completed
    first, last, shift = INF, -INF, 0.0
    for n in range(w.act_valid.shape[1]):  # what the path clears is passed, not followed (see ego_view)
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
        s, lat, dist, heading = route_frame(w, b, x, y, progress - 2.0, progress + p.horizon + 5.0)
        across, along = extent(w, b, n, heading)
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
