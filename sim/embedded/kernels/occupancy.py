"""Lane occupancy: which lanes each actor (and the ego) covers and where, for following and yielding."""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from sim.embedded.compiled import MAX_QUERY_REACH_M, MapArrays
from sim.embedded.kernels.codes import PEDESTRIAN, VEHICLE, Params
from sim.embedded.kernels.geometry import locate

#: Moving pedestrians on the road also occupy where they will be this much later.
PED_LOOKAHEAD_S = 2.0


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
def occupy_lanes(m: MapArrays, w: Any, p: Params, b: int) -> None:
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
