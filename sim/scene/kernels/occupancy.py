"""Lane occupancy: which lanes each actor (and the ego) covers and where, for following and yielding.

Vehicles in the vehicle slots are on the lanes the backend says they drive (``Vehicles.lanes``); everything else
is located on the lanes under it, pedestrians only when they are on the road or about to cross (:func:`_on_road`):
whatever the backend, from where they are and where they walk."""

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
#: A pedestrian off the lanes is about to cross (on the road) when it walks across a lane (the sine of its angle to
#: the lane above ``CROSSING_SINE``) that it reaches within ``PED_LOOKAHEAD_S``, to within ``CURB_REACH_M`` of the
#: lane's edge.
CROSSING_SINE = 0.7
CURB_REACH_M = 0.8


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _on_road(m: MapArrays, sc: Any, b: int, n: int) -> bool:
    """Whether pedestrian ``n`` is on a lane (a crosswalk, or crossing elsewhere) or about to cross one."""
    located = sc.located
    x, y = sc.actors.x_m[b, n], sc.actors.y_m[b, n]
    if locate(m, x, y, 0.0, located.lane[b], located.s_m[b], located.lat_m[b], located.heading_rad[b],
              located.dist_m[b]) > 0:
        return True
    ahead = sc.actors.speed_mps[b, n] * PED_LOOKAHEAD_S
    if ahead <= 0.0:
        return False
    yaw = sc.actors.yaw_rad[b, n]
    count = locate(m, x + ahead * math.cos(yaw), y + ahead * math.sin(yaw), CURB_REACH_M, located.lane[b],
                   located.s_m[b], located.lat_m[b], located.heading_rad[b], located.dist_m[b])
    for j in range(count):  # noqa: SIM110 (a loop: numba's kernels take no generators)
        if abs(math.sin(yaw - located.heading_rad[b, j])) > CROSSING_SINE:
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _add_located(m: MapArrays, sc: Any, b: int, x: float, y: float, reach: float, half: float, speed: float,
                 actor: int, kind: int) -> None:
    lanes = sc.located.lane[b]
    count = locate(m, x, y, min(reach, MAX_QUERY_REACH_M), lanes, sc.located.s_m[b], sc.located.lat_m[b],
                   sc.located.heading_rad[b],
                   sc.located.dist_m[b])
    for j in range(count):
        _add_entry(sc, b, lanes[j], sc.located.s_m[b, j], half, speed, actor, kind)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _add_moving(m: MapArrays, sc: Any, b: int, n: int, reach: float) -> None:
    """Actor ``n`` (a vehicle that is not on lanes of its own) on every lane it covers, with its speed along each:
    followed as traffic, not passed as an obstacle."""
    lanes = sc.located.lane[b]
    count = locate(m, sc.actors.x_m[b, n], sc.actors.y_m[b, n], min(reach, MAX_QUERY_REACH_M), lanes,
                   sc.located.s_m[b], sc.located.lat_m[b],
                   sc.located.heading_rad[b], sc.located.dist_m[b])
    for j in range(count):
        along = sc.actors.speed_mps[b, n] * math.cos(sc.actors.yaw_rad[b, n] - sc.located.heading_rad[b, j])
        _add_entry(sc, b, lanes[j], sc.located.s_m[b, j], 0.5 * sc.actors.length_m[b, n], max(along, 0.0), n,
                   VEHICLE)


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _add_entry(sc: Any, b: int, lane: int, s: float, half: float, speed: float, actor: int, kind: int) -> None:
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
def occupy_lanes(m: MapArrays, sc: Any, p: Params, b: int) -> None:
    """Which lanes each actor occupies, and where: driving vehicles by their lane, everything else located."""
    sc.occupancy.n[b] = 0
    vehicles = sc.vehicles.lanes.shape[1]
    for v in range(vehicles):
        if not sc.actors.valid[b, v]:
            continue
        if sc.vehicles.parked[b, v]:
            _add_located(m, sc, b, sc.actors.x_m[b, v], sc.actors.y_m[b, v], 0.5 * sc.actors.width_m[b, v] - 0.3,
                         0.5 * sc.actors.length_m[b, v],
                         0.0, v, VEHICLE)
            continue
        _add_entry(sc, b, sc.vehicles.lanes[b, v, 0], sc.vehicles.lane_s_m[b, v], 0.5 * sc.actors.length_m[b, v],
                   sc.actors.speed_mps[b, v], v, VEHICLE)
    _add_located(m, sc, b, sc.ego.x_m[b], sc.ego.y_m[b], 0.5 * p.ego_width - 0.3, 0.5 * p.ego_length,
                 sc.ego.speed_mps[b], -1,
                 VEHICLE)
    for n in range(vehicles, sc.actors.valid.shape[1]):
        if sc.actors.kind[b, n] == PEDESTRIAN and not _on_road(m, sc, b, n):  # nobody drives on sidewalks
            continue
        if sc.actors.valid[b, n]:
            reach = 0.5 * sc.actors.width_m[b, n] + (0.8 if sc.actors.kind[b, n] == PEDESTRIAN else 0.0)
            if sc.actors.kind[b, n] == VEHICLE:  # a recorded vehicle (non-reactive replay): moving traffic
                _add_moving(m, sc, b, n, 0.5 * sc.actors.width_m[b, n] - 0.3)
                continue
            _add_located(m, sc, b, sc.actors.x_m[b, n], sc.actors.y_m[b, n], reach, 0.5 * sc.actors.length_m[b, n],
                         0.0, n,
                         int(sc.actors.kind[b, n]))
            ahead = sc.actors.speed_mps[b, n] * PED_LOOKAHEAD_S
            if sc.actors.kind[b, n] == PEDESTRIAN and ahead > 0.0:  # where a walking pedestrian is about to be
                _add_located(m, sc, b, sc.actors.x_m[b, n] + ahead * math.cos(sc.actors.yaw_rad[b, n]),
                             sc.actors.y_m[b, n] + ahead * math.sin(sc.actors.yaw_rad[b, n]), reach, 0.5 \
                                 * sc.actors.length_m[b, n],
                             0.0, n, PEDESTRIAN)
