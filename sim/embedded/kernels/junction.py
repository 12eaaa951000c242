"""Right of way at junctions: who is about to enter, who must yield to whom, not blocking the box.

Used by traffic and by the ego's facts alike."""

from __future__ import annotations

from typing import Any

from numba import njit

from sim.embedded.compiled import MapArrays
from sim.embedded.kernels.codes import IGNORE_LIGHTS, IGNORE_PRIORITY, RED, VEHICLE, Params

#: Vehicles yield to anyone who goes on (no stop sign, no red light) and reaches a conflicting junction lane first,
#: within this time.
APPROACH_S = 3.0
#: The ego also yields to a vehicle that ignores lights or priority and reaches a conflicting junction lane up to
#: this long after the ego would.
RUDE_MARGIN_S = 3.0


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _junction_busy(m: MapArrays, w: Any, b: int, lane: int, self_actor: int) -> bool:
    """Whether a vehicle (or the ego) occupies a junction lane that conflicts with ``lane``."""
    for k in range(w.occ_n[b]):
        if w.occ_actor[b, k] == self_actor or w.occ_kind[b, k] != VEHICLE:
            continue
        if m.conflict[lane, w.occ_lane[b, k]]:
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _earlier_waiter(m: MapArrays, w: Any, b: int, lane: int, self_actor: int, arrival: float) -> bool:
    """Whether someone stopped at a stop sign earlier waits to enter a junction lane conflicting with ``lane``."""
    for v in range(w.veh_lane.shape[1]):
        if v == self_actor or not w.act_valid[b, v] or w.veh_served[b, v] < 0:
            continue
        if w.veh_lane[b, v, 0] != w.veh_served[b, v] or w.veh_lane[b, v, 1] < 0:
            continue
        nxt = w.veh_lane[b, v, 1]
        if not (m.conflict[lane, nxt] or nxt == lane):
            continue
        if w.veh_arrival[b, v] < arrival or (w.veh_arrival[b, v] == arrival and v < self_actor):
            return True
    if self_actor >= 0 and w.ego_served[b] and w.ego_wait_lane[b] >= 0:
        nxt = w.ego_wait_lane[b]
        if (m.conflict[lane, nxt] or nxt == lane) and w.ego_arrival[b] <= arrival:
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def box_blocked(m: MapArrays, p: Params, junction_lane: int, leader_from_entry: float, leader_speed: float,
                 length: float) -> bool:
    """Don't block the junction: a standing leader less than the junction lane plus a car length past the entry
    leaves no room to clear it."""
    return leader_speed < 1.0 and leader_from_entry < m.lane_length[junction_lane] + length + p.idm.min_gap_m


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _goes_on(m: MapArrays, w: Any, b: int, approach: int) -> bool:
    """Whether traffic on ``approach`` enters its junction without stopping: no stop sign and no red light."""
    if m.lane_stop[approach]:
        return False
    group = m.lane_light[approach]
    return group < 0 or w.lights[b, group] != RED


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def must_yield(m: MapArrays, w: Any, b: int, approach: int, junction_lane: int, actor: int, arrival: float,
                time_to_entry: float) -> bool:
    """Whether an actor about to enter ``junction_lane`` from ``approach`` (``time_to_entry`` seconds away) must
    wait: a conflicting junction lane is occupied; or, at a stop sign, someone who stopped earlier waits for a
    conflicting lane; or someone who goes on (no stop sign, no red light) reaches a conflicting lane within
    ``APPROACH_S`` and before this actor (before it at all, if this actor has a stop sign)."""
    if _junction_busy(m, w, b, junction_lane, actor):
        return True
    if m.lane_stop[approach] and _earlier_waiter(m, w, b, junction_lane, actor, arrival):
        return True
    yielding = bool(m.lane_stop[approach])
    for k in range(w.appr_n[b]):
        other = w.appr_actor[b, k]
        if other == actor or not m.conflict[junction_lane, w.appr_lane[b, k]]:
            continue
        theirs = w.appr_tte[b, k]
        if yielding or theirs < time_to_entry or (theirs == time_to_entry and other < actor):
            return True
        if actor < 0 and w.appr_rude[b, k] and theirs < time_to_entry + RUDE_MARGIN_S:
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def note_approaching(m: MapArrays, w: Any, b: int) -> None:
    """Who is about to enter a junction without stopping (no stop sign, no red light, moving, within
    ``APPROACH_S``): their junction lane and time to entry, for :func:`must_yield`."""
    count = 0
    for v in range(w.veh_lane.shape[1]):
        if not w.act_valid[b, v] or w.veh_parked[b, v]:
            continue
        here, nxt = w.veh_lane[b, v, 0], w.veh_lane[b, v, 1]
        speed = w.act_v[b, v]
        if nxt < 0 or speed < 1.0 or m.lane_junction[here] >= 0 or m.lane_junction[nxt] < 0:
            continue
        tte = (m.lane_length[here] - w.veh_s[b, v] - 0.5 * w.act_len[b, v]) / speed
        rude = (w.veh_flags[b, v] & (IGNORE_LIGHTS | IGNORE_PRIORITY)) != 0
        # (a front already in the junction counts until the vehicle occupies its junction lane: no gap between
        # approaching and occupying in which it goes unseen)
        if tte < APPROACH_S and (rude or _goes_on(m, w, b, here)):
            w.appr_actor[b, count], w.appr_lane[b, count], w.appr_tte[b, count] = v, nxt, tte
            w.appr_rude[b, count] = rude
            count += 1
    lane = w.ego_jlane[b]
    if lane >= 0 and w.ego_v[b] >= 1.0 and _goes_on(m, w, b, w.ego_japproach[b]):
        tte = w.ego_jdist[b] / w.ego_v[b]
        if -0.5 <= tte < APPROACH_S:
            w.appr_actor[b, count], w.appr_lane[b, count], w.appr_tte[b, count] = -1, lane, tte
            w.appr_rude[b, count] = False
            count += 1
    w.appr_n[b] = count
