"""Pedestrians: walking the map's walkways (waiting at crossings off the crosswalk, leaving a crossing onto
pavement, stepping around standing vehicles) or a scenario's own path."""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from sim.embedded.kernels.draws import PEDESTRIAN_DRAWS, uniform
from sim.maps.compiled import MapArrays
from sim.scene.kernels.geometry import inside
from sim.scene.params import Params


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def pedestrian_pose(m: MapArrays, sc: Any, w: Any, b: int, q: int) -> None:
    n = sc.vehicles.lanes.shape[1] + q
    walk = w.pedestrians.walk[b, q]
    s = w.pedestrians.s_m[b, q]
    if walk >= 0:
        first, last = m.walk_offset[walk], m.walk_offset[walk + 1]
        xs, ys = m.walk_x[first:last], m.walk_y[first:last]
        ss = m.walk_s[first:last]
    else:
        count = w.pedestrians.path_n[b, q]
        xs, ys = w.pedestrians.path_x_m[b, q, :count], w.pedestrians.path_y_m[b, q, :count]
        ss = w.pedestrians.path_s_m[b, q, :count]
    i = 0
    while i < len(ss) - 2 and ss[i + 1] < s:
        i += 1
    seg = ss[i + 1] - ss[i]
    frac = min(max((s - ss[i]) / seg, 0.0), 1.0) if seg > 1e-9 else 0.0
    sc.actors.x_m[b, n] = xs[i] + frac * (xs[i + 1] - xs[i])
    sc.actors.y_m[b, n] = ys[i] + frac * (ys[i + 1] - ys[i])
    sc.actors.yaw_rad[b, n] = math.atan2(ys[i + 1] - ys[i], xs[i + 1] - xs[i])


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _crossing_clear(m: MapArrays, sc: Any, w: Any, b: int, walk: int) -> bool:
    first, last = m.walk_offset[walk], m.walk_offset[walk + 1]
    cx = 0.5 * (m.walk_x[first] + m.walk_x[last - 1])
    cy = 0.5 * (m.walk_y[first] + m.walk_y[last - 1])
    if sc.ego.speed_mps[b] > 0.5 and (sc.ego.x_m[b] - cx) ** 2 + (sc.ego.y_m[b] - cy) ** 2 < 15.0**2:
        return False
    for v in range(sc.vehicles.lanes.shape[1]):
        moving = sc.actors.valid[b, v] and sc.actors.speed_mps[b, v] > 0.5
        if moving and (sc.actors.x_m[b, v] - cx) ** 2 + (sc.actors.y_m[b, v] - cy) ** 2 < 15.0**2:
            return False
    return True


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _onward(m: MapArrays, walk: int, draw: float) -> int:
    """The successor of ``walk`` that ``draw`` (uniform in [0, 1)) picks; off a crossing, only walkways that are
    not crossings (pedestrians leave a crosswalk rather than turn around or cross on from it) where there are any."""
    first, last = m.walk_succ_offset[walk], m.walk_succ_offset[walk + 1]
    count = last - first
    if m.walk_crossing[walk]:
        pavement = 0
        for k in range(first, last):
            pavement += not m.walk_crossing[m.walk_succ[k]]
        if pavement > 0:
            pick = min(int(draw * pavement), pavement - 1)
            for k in range(first, last):
                if not m.walk_crossing[m.walk_succ[k]]:
                    if pick == 0:
                        return int(m.walk_succ[k])
                    pick -= 1
    return int(m.walk_succ[first + min(int(draw * count), count - 1)])


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _in_the_way(sc: Any, w: Any, p: Params, b: int, n: int) -> bool:
    """Whether pedestrian ``n``'s next metre runs into a moving vehicle's (or the ego's) body. Standing vehicles
    are walked around (passed through: a vehicle may well be standing because it waits for this pedestrian)."""
    x = sc.actors.x_m[b, n] + math.cos(sc.actors.yaw_rad[b, n])
    y = sc.actors.y_m[b, n] + math.sin(sc.actors.yaw_rad[b, n])
    if sc.ego.speed_mps[b] > p.stop_speed and inside(x, y, sc.ego.x_m[b], sc.ego.y_m[b], sc.ego.yaw_rad[b],
                                                     0.5 * p.ego_length + 0.2,
                                             0.5 * p.ego_width + 0.2):
        return True
    for v in range(sc.vehicles.lanes.shape[1]):
        if not sc.actors.valid[b, v] or sc.actors.speed_mps[b, v] <= p.stop_speed:
            continue
        reach = 0.5 * (sc.actors.length_m[b, v] + sc.actors.width_m[b, v]) + 0.4
        if (x - sc.actors.x_m[b, v]) ** 2 + (y - sc.actors.y_m[b, v]) ** 2 < reach * reach and inside(
                x, y, sc.actors.x_m[b, v], sc.actors.y_m[b, v], sc.actors.yaw_rad[b, v], 0.5 \
                    * sc.actors.length_m[b, v] + 0.2,
                0.5 * sc.actors.width_m[b, v] + 0.2):
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def move_pedestrians(m: MapArrays, sc: Any, w: Any, p: Params, b: int) -> None:
    first_slot = sc.vehicles.lanes.shape[1]
    for q in range(w.pedestrians.walk.shape[1]):
        n = first_slot + q
        if not sc.actors.valid[b, n]:
            continue
        if sc.time_s[b] < w.pedestrians.start_s[b, q]:
            sc.actors.speed_mps[b, n] = 0.0
            continue
        walk = w.pedestrians.walk[b, q]
        if walk >= 0 and w.pedestrians.next[b, q] >= 0:  # waiting to cross
            if not _crossing_clear(m, sc, w, b, w.pedestrians.next[b, q]):
                sc.actors.speed_mps[b, n] = 0.0
                continue
            w.pedestrians.walk[b, q] = walk = w.pedestrians.next[b, q]
            w.pedestrians.next[b, q] = -1
            w.pedestrians.s_m[b, q] = 0.0
        on_road = walk < 0 or m.walk_crossing[walk]  # sidewalks are off the road: nobody drives there
        if on_road and not w.pedestrians.careless[b, q] and _in_the_way(sc, w, p, b, n):
            sc.actors.speed_mps[b, n] = 0.0
            continue
        speed = w.pedestrians.speed_mps[b, q]
        s = w.pedestrians.s_m[b, q] + speed * p.dt
        if walk >= 0:
            length = m.walk_s[m.walk_offset[walk + 1] - 1]
            while s >= length:
                draw = uniform(w.seed[b], PEDESTRIAN_DRAWS + q, w.pedestrians.draws[b, q])
                w.pedestrians.draws[b, q] += 1
                nxt = _onward(m, walk, draw)
                if m.walk_crossing[nxt] and not _crossing_clear(m, sc, w, b, nxt):
                    w.pedestrians.next[b, q] = nxt
                    s = length
                    speed = 0.0
                    break
                s -= length
                walk = nxt
                length = m.walk_s[m.walk_offset[walk + 1] - 1]
            w.pedestrians.walk[b, q] = walk
        else:
            end = w.pedestrians.path_s_m[b, q, w.pedestrians.path_n[b, q] - 1]
            if s >= end:
                s, speed = end, 0.0
        w.pedestrians.s_m[b, q] = s
        sc.actors.speed_mps[b, n] = speed
        pedestrian_pose(m, sc, w, b, q)
