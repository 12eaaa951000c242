"""Scenario events set off at their trigger on the ego's route: revealing hidden vehicles timed to meet the
ego, hard brakes, pedestrians timed to cross in front of it, junction lights held."""

from __future__ import annotations

from typing import Any

from numba import njit

from sim.embedded.kernels.traffic import choose_successor, vehicle_pose
from sim.maps.compiled import MapArrays
from sim.scene.codes import CUT_IN, HIDDEN, INF


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def set_off_events(m: MapArrays, sc: Any, w: Any, b: int) -> None:
    """Set off the events armed for actors once the ego's route progress reaches their trigger: reveal a hidden
    vehicle where, at its speed, it meets the ego (at the ego's present speed) at the planned point (when that
    is before the start of its lanes, it appears there once it would have got there); start a hard brake; start
    a pedestrian so that it gets to the planned point when the ego does; hold a junction's lights."""
    progress = sc.route.progress_m[b]
    for v in range(sc.vehicles.lanes.shape[1]):
        if progress >= w.traffic.expire_m[b, v]:  # an event's actor leaves once its part is over
            sc.actors.valid[b, v] = w.traffic.pending[b, v] = False
            w.traffic.expire_m[b, v] = w.traffic.reveal_at_s[b, v] = INF
        if sc.time_s[b] >= w.traffic.reveal_at_s[b, v]:
            w.traffic.reveal_at_s[b, v] = INF
            sc.actors.valid[b, v] = True
            vehicle_pose(m, sc, w, b, v)
        if not w.traffic.pending[b, v] or progress < w.traffic.trigger_m[b, v]:
            continue
        w.traffic.pending[b, v] = False
        if sc.vehicles.flags[b, v] & CUT_IN:
            sc.vehicles.parked[b, v] = False
        if sc.vehicles.flags[b, v] & HIDDEN:
            early = 0.0
            if w.traffic.meet_s_m[b, v] >= 0.0:
                arrival = max(w.traffic.meet_route_m[b, v] - progress, 0.0) / max(sc.ego.speed_mps[b], 1.0)
                s = w.traffic.meet_s_m[b, v] - sc.actors.speed_mps[b, v] * arrival
                early = max(-s, 0.0) / max(sc.actors.speed_mps[b, v], 0.1)
                s = max(s, 0.0)
                while s > m.lane_length[sc.vehicles.lanes[b, v, 0]] and sc.vehicles.lanes[b, v, 1] >= 0:
                    s -= m.lane_length[sc.vehicles.lanes[b, v, 0]]
                    sc.vehicles.lanes[b, v, 0], sc.vehicles.lanes[b, v, 1] = sc.vehicles.lanes[b, v, 1], \
                        sc.vehicles.lanes[b, v, 2]
                    sc.vehicles.lanes[b, v, 2] = choose_successor(m, sc, w, b, v, sc.vehicles.lanes[b, v, 1])
                sc.vehicles.lane_s_m[b, v] = s
            if early > 0.0:
                w.traffic.reveal_at_s[b, v] = sc.time_s[b] + early
            else:
                sc.actors.valid[b, v] = True
                vehicle_pose(m, sc, w, b, v)
        if w.traffic.brake_decel_mps2[b, v] > 0.0:
            w.traffic.brake_until_s[b, v] = sc.time_s[b] + sc.actors.speed_mps[b, v] \
                / w.traffic.brake_decel_mps2[b, v] + w.traffic.brake_hold_s[b, v]
    for q in range(w.pedestrians.walk.shape[1]):
        if not w.pedestrians.pending[b, q] or progress < w.pedestrians.trigger_m[b, q]:
            continue
        w.pedestrians.pending[b, q] = False
        arrival = max(w.pedestrians.meet_route_m[b, q] - progress, 0.0) / max(sc.ego.speed_mps[b], 1.0)
        w.pedestrians.start_s[b, q] = sc.time_s[b] + max(arrival - w.pedestrians.meet_walk_m[b, q]
                                                         / w.pedestrians.speed_mps[b, q], 0.0)
    if w.program.force_pending[b] and progress >= w.program.force_trigger_m[b]:
        w.program.force_pending[b] = False
        w.program.force_until_s[b] = sc.time_s[b] + w.program.force_hold_s[b]
