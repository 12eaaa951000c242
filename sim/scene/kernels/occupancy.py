"""Lane occupancy: which lanes each actor (and the ego) covers and where, for following and yielding."""

from __future__ import annotations

import math
from typing import Any

from numba import njit

from sim.maps.compiled import MAX_QUERY_REACH_M, MapArrays
from sim.scene.codes import PEDESTRIAN, VEHICLE
from sim.scene.kernels.geometry import locate
from sim.scene.params import Params

#: Moving pedestrians on the road also occupy where they will be this much later.
PED_LOOKAHEAD_S = 2.0


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _add_located(m: MapArrays, sc: Any, w: Any, b: int, x: float, y: float, reach: float, half: float, speed: float,
                 actor: int, kind: int) -> None:
    lanes = sc.located.lane[b]
    count = locate(m, x, y, min(reach, MAX_QUERY_REACH_M), lanes, sc.located.s_m[b], sc.located.lat_m[b],
                   sc.located.heading_rad[b],
                   sc.located.dist_m[b])
    for j in range(count):
        _add_entry(sc, w, b, lanes[j], sc.located.s_m[b, j], half, speed, actor, kind)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _add_moving(m: MapArrays, sc: Any, w: Any, b: int, n: int, reach: float) -> None:
    """Actor ``n`` (a vehicle that is not on lanes of its own) on every lane it covers, with its speed along each:
    followed as traffic, not passed as an obstacle."""
    lanes = sc.located.lane[b]
    count = locate(m, sc.actors.x_m[b, n], sc.actors.y_m[b, n], min(reach, MAX_QUERY_REACH_M), lanes,
                   sc.located.s_m[b], sc.located.lat_m[b],
                   sc.located.heading_rad[b], sc.located.dist_m[b])
    for j in range(count):
        along = sc.actors.speed_mps[b, n] * math.cos(sc.actors.yaw_rad[b, n] - sc.located.heading_rad[b, j])
        _add_entry(sc, w, b, lanes[j], sc.located.s_m[b, j], 0.5 * sc.actors.length_m[b, n], max(along, 0.0), n,
                   VEHICLE)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _add_entry(sc: Any, w: Any, b: int, lane: int, s: float, half: float, speed: float, actor: int, kind: int) -> None:
    k = sc.occupancy.n[b]
    if k >= sc.occupancy.lane.shape[1]:
        return
    sc.occupancy.lane[b, k] = lane
    sc.occupancy.s_m[b, k] = s
    sc.occupancy.half_m[b, k] = half
    sc.occupancy.speed_mps[b, k] = speed
    sc.occupancy.actor[b, k] = actor
    sc.occupancy.kind[b, k] = kind
    sc.occupancy.n[b] = k + 1


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def occupy_lanes(m: MapArrays, sc: Any, w: Any, p: Params, b: int) -> None:
    """Which lanes each actor occupies, and where: driving vehicles by their lane, everything else located."""
    sc.occupancy.n[b] = 0
    vehicles = sc.vehicles.lanes.shape[1]
    for v in range(vehicles):
        if not sc.actors.valid[b, v]:
            continue
        if sc.vehicles.parked[b, v]:
            _add_located(m, sc, w, b, sc.actors.x_m[b, v], sc.actors.y_m[b, v], 0.5 * sc.actors.width_m[b, v] - 0.3,
                         0.5 * sc.actors.length_m[b, v],
                         0.0, v, VEHICLE)
            continue
        _add_entry(sc, w, b, sc.vehicles.lanes[b, v, 0], sc.vehicles.lane_s_m[b, v], 0.5 * sc.actors.length_m[b, v],
                   sc.actors.speed_mps[b, v], v, VEHICLE)
    _add_located(m, sc, w, b, sc.ego.x_m[b], sc.ego.y_m[b], 0.5 * p.ego_width - 0.3, 0.5 * p.ego_length,
                 sc.ego.speed_mps[b], -1,
                 VEHICLE)
    pedestrians = w.pedestrians.walk.shape[1]
    for n in range(vehicles, sc.actors.valid.shape[1]):
        if n < vehicles + pedestrians:  # pedestrians on sidewalks are off the road: only crossings are located
            walk = w.pedestrians.walk[b, n - vehicles]
            if walk >= 0 and not m.walk_crossing[walk]:
                continue
        if sc.actors.valid[b, n]:
            reach = 0.5 * sc.actors.width_m[b, n] + (0.8 if sc.actors.kind[b, n] == PEDESTRIAN else 0.0)
            if sc.actors.kind[b, n] == VEHICLE:  # a recorded vehicle (non-reactive replay): moving traffic
                _add_moving(m, sc, w, b, n, 0.5 * sc.actors.width_m[b, n] - 0.3)
                continue
            _add_located(m, sc, w, b, sc.actors.x_m[b, n], sc.actors.y_m[b, n], reach, 0.5 * sc.actors.length_m[b, n],
                         0.0, n,
                         int(sc.actors.kind[b, n]))
            ahead = sc.actors.speed_mps[b, n] * PED_LOOKAHEAD_S
            if sc.actors.kind[b, n] == PEDESTRIAN and ahead > 0.0:  # where a walking pedestrian is about to be
                _add_located(m, sc, w, b, sc.actors.x_m[b, n] + ahead * math.cos(sc.actors.yaw_rad[b, n]),
                             sc.actors.y_m[b, n] + ahead * math.sin(sc.actors.yaw_rad[b, n]), reach, 0.5 \
                                 * sc.actors.length_m[b, n],
                             0.0, n, PEDESTRIAN)
