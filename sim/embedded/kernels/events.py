"""Scenario events set off at their trigger on the ego's route: revealing hidden vehicles timed to meet the
ego, hard brakes, pedestrians timed to cross in front of it, junction lights held."""

from __future__ import annotations

from typing import Any

from numba import njit

from sim.embedded.compiled import MapArrays
from sim.embedded.kernels.codes import CUT_IN, HIDDEN, INF
from sim.embedded.kernels.traffic import choose_successor, vehicle_pose


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def set_off_events(m: MapArrays, w: Any, b: int) -> None:
    """Set off the events armed for actors once the ego's route progress reaches their trigger: reveal a hidden
    vehicle where, at its speed, it meets the ego (at the ego's present speed) at the planned point (when that
    is before the start of its lanes, it appears there once it would have got there); start a hard brake; start
    a pedestrian so that it gets to the planned point when the ego does; hold a junction's lights."""
    progress = w.progress[b]
    for v in range(w.veh_lane.shape[1]):
        if progress >= w.veh_expire[b, v]:  # an event's actor leaves once its part is over
            w.act_valid[b, v] = w.veh_pending[b, v] = False
            w.veh_expire[b, v] = w.veh_reveal_at[b, v] = INF
        if w.time[b] >= w.veh_reveal_at[b, v]:
            w.veh_reveal_at[b, v] = INF
            w.act_valid[b, v] = True
            vehicle_pose(m, w, b, v)
        if not w.veh_pending[b, v] or progress < w.veh_trigger[b, v]:
            continue
        w.veh_pending[b, v] = False
        if w.veh_flags[b, v] & CUT_IN:
            w.veh_parked[b, v] = False
        if w.veh_flags[b, v] & HIDDEN:
            early = 0.0
            if w.veh_meet_s[b, v] >= 0.0:
                arrival = max(w.veh_meet_route[b, v] - progress, 0.0) / max(w.ego_v[b], 1.0)
                s = w.veh_meet_s[b, v] - w.act_v[b, v] * arrival
                early = max(-s, 0.0) / max(w.act_v[b, v], 0.1)
                s = max(s, 0.0)
                while s > m.lane_length[w.veh_lane[b, v, 0]] and w.veh_lane[b, v, 1] >= 0:
                    s -= m.lane_length[w.veh_lane[b, v, 0]]
                    w.veh_lane[b, v, 0], w.veh_lane[b, v, 1] = w.veh_lane[b, v, 1], w.veh_lane[b, v, 2]
                    w.veh_lane[b, v, 2] = choose_successor(m, w, b, v, w.veh_lane[b, v, 1])
                w.veh_s[b, v] = s
            if early > 0.0:
                w.veh_reveal_at[b, v] = w.time[b] + early
            else:
                w.act_valid[b, v] = True
                vehicle_pose(m, w, b, v)
        if w.veh_brake_decel[b, v] > 0.0:
            w.veh_brake_until[b, v] = w.time[b] + w.act_v[b, v] / w.veh_brake_decel[b, v] + w.veh_brake_hold[b, v]
    for q in range(w.ped_walk.shape[1]):
        if not w.ped_pending[b, q] or progress < w.ped_trigger[b, q]:
            continue
        w.ped_pending[b, q] = False
        arrival = max(w.ped_meet_route[b, q] - progress, 0.0) / max(w.ego_v[b], 1.0)
        w.ped_start[b, q] = w.time[b] + max(arrival - w.ped_meet_walk[b, q] / w.ped_speed[b, q], 0.0)
    if w.force_pending[b] and progress >= w.force_trigger[b]:
        w.force_pending[b] = False
        w.force_until[b] = w.time[b] + w.force_hold[b]
