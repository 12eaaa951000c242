"""Pedestrians: walking the map's walkways (waiting at crossings, stepping around standing vehicles) or a
scenario's own path."""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from sim.embedded.compiled import MapArrays
from sim.embedded.kernels.codes import Params
from sim.embedded.kernels.draws import uniform
from sim.embedded.kernels.geometry import inside


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def pedestrian_pose(m: MapArrays, w: Any, b: int, q: int) -> None:
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


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _in_the_way(w: Any, p: Params, b: int, n: int) -> bool:
    """Whether pedestrian ``n``'s next metre runs into a moving vehicle's (or the ego's) body. Standing vehicles
    are walked around (passed through: a vehicle may well be standing because it waits for this pedestrian)."""
    x = w.act_x[b, n] + math.cos(w.act_yaw[b, n])
    y = w.act_y[b, n] + math.sin(w.act_yaw[b, n])
    if w.ego_v[b] > p.stop_speed and inside(x, y, w.ego_x[b], w.ego_y[b], w.ego_yaw[b], 0.5 * p.ego_length + 0.2,
                                             0.5 * p.ego_width + 0.2):
        return True
    for v in range(w.veh_lane.shape[1]):
        if not w.act_valid[b, v] or w.act_v[b, v] <= p.stop_speed:
            continue
        reach = 0.5 * (w.act_len[b, v] + w.act_wid[b, v]) + 0.4
        if (x - w.act_x[b, v]) ** 2 + (y - w.act_y[b, v]) ** 2 < reach * reach and inside(
                x, y, w.act_x[b, v], w.act_y[b, v], w.act_yaw[b, v], 0.5 * w.act_len[b, v] + 0.2,
                0.5 * w.act_wid[b, v] + 0.2):
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def move_pedestrians(m: MapArrays, w: Any, p: Params, b: int) -> None:
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
        pedestrian_pose(m, w, b, q)
