"""Right of way at junctions: who is about to enter, who must yield to whom, not blocking the box.

Used by traffic and by the ego's facts alike."""

from __future__ import annotations

from typing import Any

from numba import njit

from sim.maps.compiled import MapArrays
from sim.scene.codes import IGNORE_LIGHTS, IGNORE_PRIORITY, RED, VEHICLE
from sim.scene.params import Params

#: Vehicles yield to anyone who goes on (no stop sign, no red light) and reaches a conflicting junction lane first,
#: within this time.
APPROACH_S = 3.0
#: The ego also yields to a vehicle that ignores lights or priority and reaches a conflicting junction lane up to
#: this long after the ego would.
RUDE_MARGIN_S = 3.0


#: A vehicle slower than this stands.
STANDING_MPS = 0.1


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _junction_busy(m: MapArrays, sc: Any, b: int, lane: int, self_actor: int, standing: bool) -> bool:
    """Whether a vehicle (or the ego) occupies a junction lane that conflicts with ``lane`` (counting those that
    stand there only with ``standing``)."""
    for k in range(sc.occupancy.n[b]):
        actor = sc.occupancy.actor[b, k]
        if actor == self_actor or sc.occupancy.kind[b, k] != VEHICLE:
            continue
        if not standing and actor >= 0 and sc.actors.speed_mps[b, actor] < STANDING_MPS:
            continue
        if m.conflict[lane, sc.occupancy.lane[b, k]]:
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def _earlier_waiter(m: MapArrays, sc: Any, b: int, lane: int, self_actor: int, arrival: float) -> bool:
    """Whether someone stopped at a stop sign earlier waits to enter a junction lane conflicting with ``lane``."""
    for v in range(sc.vehicles.lanes.shape[1]):
        if v == self_actor or not sc.actors.valid[b, v] or sc.vehicles.served_lane[b, v] < 0:
            continue
        if sc.vehicles.lanes[b, v, 0] != sc.vehicles.served_lane[b, v] or sc.vehicles.lanes[b, v, 1] < 0:
            continue
        nxt = sc.vehicles.lanes[b, v, 1]
        if not (m.conflict[lane, nxt] or nxt == lane):
            continue
        if sc.vehicles.arrival_s[b, v] < arrival or (sc.vehicles.arrival_s[b, v] == arrival and v < self_actor):
            return True
    if self_actor >= 0 and sc.junction.ego_served[b] and sc.junction.ego_wait_lane[b] >= 0:
        nxt = sc.junction.ego_wait_lane[b]
        if (m.conflict[lane, nxt] or nxt == lane) and sc.junction.ego_arrival_s[b] <= arrival:
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def box_blocked(m: MapArrays, p: Params, junction_lane: int, leader_from_entry: float, leader_speed: float,
                 length: float) -> bool:
    """Don't block the junction: a standing leader less than the junction lane plus a car length past the entry
    leaves no room to clear it."""
    return leader_speed < 1.0 and leader_from_entry < m.lane_length[junction_lane] + length + p.idm.min_gap_m


@njit(_nrt=False, cache=True, no_cpython_wrapper=True, inline="always")
def _goes_on(m: MapArrays, sc: Any, b: int, approach: int) -> bool:
    """Whether traffic on ``approach`` enters its junction without stopping: no stop sign and no red light."""
    if m.lane_stop[approach]:
        return False
    group = m.lane_light[approach]
    return group < 0 or sc.lights[b, group] != RED


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def must_yield(m: MapArrays, sc: Any, b: int, approach: int, junction_lane: int, actor: int, arrival: float,
                time_to_entry: float, standing: bool = True) -> bool:
    """Whether an actor about to enter ``junction_lane`` from ``approach`` (``time_to_entry`` seconds away) must
    wait: a conflicting junction lane is occupied (by a vehicle on the move, or also by one standing there with
    ``standing``); or, at a stop sign, someone who stopped earlier waits for a conflicting lane; or someone who goes
    on (no stop sign, no red light) reaches a conflicting lane within ``APPROACH_S`` and before this actor (before
    it at all, if this actor has a stop sign)."""
    if _junction_busy(m, sc, b, junction_lane, actor, standing):
        return True
    if m.lane_stop[approach] and _earlier_waiter(m, sc, b, junction_lane, actor, arrival):
        return True
    yielding = bool(m.lane_stop[approach])
    for k in range(sc.junction.n[b]):
        other = sc.junction.actor[b, k]
        if other == actor or not m.conflict[junction_lane, sc.junction.lane[b, k]]:
            continue
        theirs = sc.junction.tte_s[b, k]
        if yielding or theirs < time_to_entry or (theirs == time_to_entry and other < actor):
            return True
        if actor < 0 and sc.junction.rude[b, k] and theirs < time_to_entry + RUDE_MARGIN_S:
            return True
    return False


@njit(_nrt=False, cache=True, no_cpython_wrapper=True)
def note_approaching(m: MapArrays, sc: Any, b: int) -> None:
    """Who is about to enter a junction without stopping (no stop sign, no red light, moving, within
    ``APPROACH_S``): their junction lane and time to entry, for :func:`must_yield`."""
    count = 0
    for v in range(sc.vehicles.lanes.shape[1]):
        if not sc.actors.valid[b, v] or sc.vehicles.parked[b, v]:
            continue
        here, nxt = sc.vehicles.lanes[b, v, 0], sc.vehicles.lanes[b, v, 1]
        speed = sc.actors.speed_mps[b, v]
        if nxt < 0 or speed < 1.0 or m.lane_junction[here] >= 0 or m.lane_junction[nxt] < 0:
            continue
        tte = (m.lane_length[here] - sc.vehicles.lane_s_m[b, v] - 0.5 * sc.actors.length_m[b, v]) / speed
        rude = (sc.vehicles.flags[b, v] & (IGNORE_LIGHTS | IGNORE_PRIORITY)) != 0
        # (a front already in the junction counts until the vehicle occupies its junction lane: no gap between
        # approaching and occupying in which it goes unseen)
        if tte < APPROACH_S and (rude or _goes_on(m, sc, b, here)):
            sc.junction.actor[b, count], sc.junction.lane[b, count], sc.junction.tte_s[b, count] = v, nxt, tte
            sc.junction.rude[b, count] = rude
            count += 1
    lane = sc.facts.junction_lane[b]
    if lane >= 0 and sc.ego.speed_mps[b] >= 1.0 and _goes_on(m, sc, b, sc.facts.junction_approach[b]):
        tte = sc.facts.junction_dist_m[b] / sc.ego.speed_mps[b]
        if -0.5 <= tte < APPROACH_S:
            sc.junction.actor[b, count], sc.junction.lane[b, count], sc.junction.tte_s[b, count] = -1, lane, tte
            sc.junction.rude[b, count] = False
            count += 1
    sc.junction.n[b] = count
