"""Vehicles meeting the ego at a junction: one running its red light or taking priority, a flow with the right
of way across (or into) the ego's turn; and what junction events share: finding the junction on the route, a
flow timed to meet the ego there, the junction's lights held."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.embedded.placement import Placement
from sim.embedded.staging.route_geometry import (
    AFTER_M,
    LIGHT_HOLD_S,
    REVEAL_M,
    RouteGeometry,
    Slots,
    Stager,
    closest,
    end_heading,
    event_name,
    turn_of,
)
from sim.embedded.traffic import LightState
from sim.geometry import wrap_angle
from sim.maps import Lane
from sim.scenarios.events import (
    NonSignalizedJunctionLeftTurn,
    OppositeVehicleRunningRedLight,
    OppositeVehicleTakingPriority,
    SignalizedJunctionLeftTurn,
    SignalizedJunctionRightTurn,
)

#: A route piece turning more than this (radians) turns; less, it goes straight.
TURN_RAD = 0.6
#: How a junction's approach on the route may be controlled (``find_junction``'s ``control``), in words.
CONTROLS = {"light": "signalized", "stop": "all-way-stop", "none": "uncontrolled", "unsignalized": "unsignalized",
            "any": ""}


def _controlled(lane: Lane, control: str) -> bool:
    light, stop = lane.light_group is not None, lane.stop_sign
    return {"light": light, "stop": not light and stop, "none": not light and not stop, "unsignalized": not light,
            "any": True}[control]


def find_junction(geometry: RouteGeometry, event: Any, *, control: str = "any", turn: str = "any") -> int:
    """Index of the route's first junction piece past the event's trigger whose approach is controlled as
    ``control`` (a :data:`CONTROLS` key) and where the route turns ``turn`` (``left``, ``right``, ``turning``:
    either, ``straight`` or ``any``); raises ``ValueError`` naming the event when there is none."""
    lanes, route = geometry.lanes, geometry.route
    entry = geometry.junction_entry(event.trigger_s_m)
    while entry >= 0:
        bend = turn_of(lanes[route.pieces[entry].lane].centerline)
        turns = {"left": bend > TURN_RAD, "right": bend < -TURN_RAD, "straight": abs(bend) <= TURN_RAD,
                 "turning": abs(bend) > TURN_RAD, "any": True}[turn]
        if _controlled(lanes[route.pieces[entry - 1].lane], control) and turns:
            return entry
        entry = geometry.junction_entry(route.offsets[entry] + 1e-3)
    what = " ".join(w for w in (CONTROLS[control], "junction") if w)
    where = {"any": "", "straight": " where it goes straight", "turning": " where it turns"}.get(
        turn, f" where it turns {turn}")
    raise ValueError(f"{event_name(event)}: the route passes no {what}{where} after the trigger")


def merging_flow(geometry: RouteGeometry, entry: int, wanted_rad: float,
                 turn: str) -> tuple[int, int] | None:
    """Among the junction lanes that lead where route piece ``entry`` (a junction lane) leads, one turning ``turn``
    (``left``, ``right``, ``straight``) whose approach comes from ``wanted_rad`` relative to the route's approach
    heading (as :meth:`RouteGeometry.crossing_flow`): ``(its lane, its approach)``."""
    lanes, route = geometry.lanes, geometry.route
    ours = lanes[route.pieces[entry].lane]
    approach_heading = end_heading(lanes[route.pieces[entry - 1].lane].centerline)
    for lane in (int(k) for k in np.flatnonzero(geometry.arrays.conflict[ours.lane_id])):
        if not set(lanes[lane].successors) & set(ours.successors):
            continue
        sources = [p for p in geometry.predecessors[lane] if not lanes[p].is_junction]
        if not sources:
            continue
        bend = turn_of(lanes[lane].centerline)
        if not {"left": bend > TURN_RAD, "right": bend < -TURN_RAD, "straight": abs(bend) <= TURN_RAD}[turn]:
            continue
        relative = float(wrap_angle(end_heading(lanes[sources[0]].centerline) - approach_heading))
        if abs(float(wrap_angle(relative - wanted_rad))) <= 0.25 * math.pi:
            return lane, sources[0]
    return None


def place_flow(placement: Placement, event: Any, geometry: RouteGeometry, slots: Slots, entry: int,
               crossing: int, source: int, *, count: int, speed_mps: float, interval_m: tuple[float, float],
               obeys_lights: bool, length_m: float = 4.5, width_m: float = 1.9, offset_m: float = 0.0,
               trigger_s_m: float | None = None) -> float:
    """A flow of ``count`` vehicles from approach ``source`` through junction lane ``crossing``, ignoring priority
    (and lights unless ``obeys_lights``), ``interval_m`` apart (drawn between the bounds), the first timed to meet
    the ego where ``crossing`` comes closest to route piece ``entry``; ``offset_m`` to the left of their lane's
    centre. Returns the trigger the flow is armed with (no earlier than ``REVEAL_M`` before the meeting)."""
    lanes, route = geometry.lanes, geometry.route
    ours = route.pieces[entry].lane
    upstream = geometry.straightest_feeder(source)
    ours_s, theirs_s = closest(lanes[ours].centerline, lanes[crossing].centerline)
    meet_route = route.offsets[entry] + ours_s - route.pieces[entry].start_s_m
    start = event.trigger_s_m if trigger_s_m is None else trigger_s_m
    trigger = max(start, meet_route - REVEAL_M)
    chain = (upstream, source, crossing) if upstream >= 0 else (source, crossing)
    meet_s = sum(lanes[lane].length_m for lane in chain[:-1]) + theirs_s
    rng = np.random.default_rng([int(placement.state.seed[placement.env]) % 2**32, round(event.trigger_s_m * 100)])
    low, high = sorted(interval_m)
    behind = 0.0
    for _ in range(count):
        slot = slots.take("vehicle", event)
        placement.place_vehicle(slot, chain, s_m=0.0, speed_mps=speed_mps, desired_speed_mps=speed_mps,
                                length_m=length_m, width_m=width_m, lateral_offset_m=offset_m)
        placement.arm_vehicle(slot, trigger_s_m=trigger, hidden=True, ignore_lights=not obeys_lights,
                              ignore_priority=True, meet_s_m=max(meet_s - behind, 0.0), meet_route_s_m=meet_route,
                              keep_offset=offset_m != 0.0, leave_at_s_m=meet_route + AFTER_M)
        behind += float(rng.uniform(low, high))
    return float(trigger)


def green_only(event: Any, geometry: RouteGeometry, entry: int, greens: tuple[int, ...]) -> dict[int, int]:
    """Light states at the junction of route piece ``entry``: the approaches ``greens`` (lanes) green, the
    junction's others red (all red for no ``greens``)."""
    lanes, arrays = geometry.lanes, geometry.arrays
    ego_group = lanes[geometry.route.pieces[entry - 1].lane].light_group
    groups = [lanes[lane].light_group for lane in greens]
    if ego_group is None or any(g is None for g in groups):
        raise ValueError(f"{event_name(event)}: an approach at the junction at "
                         f"{geometry.route.offsets[entry]:.1f} m has no light")
    junction = arrays.light_junction[ego_group]
    states = {int(g): int(LightState.RED) for g in np.flatnonzero(arrays.light_junction == junction)}
    for group in groups:
        assert group is not None
        states[group] = int(LightState.GREEN)
    return states


def hold_green(placement: Placement, event: Any, geometry: RouteGeometry, entry: int, greens: tuple[int, ...],
               trigger_s_m: float, hold_s: float = LIGHT_HOLD_S) -> None:
    """From ``trigger_s_m`` on, for ``hold_s``, the lights of the approaches ``greens`` (lanes) at the junction of
    route piece ``entry`` show green and the junction's others red (:func:`green_only`)."""
    placement.hold_lights(green_only(event, geometry, entry, greens), trigger_s_m=trigger_s_m, hold_s=hold_s)


def _stage_opposite_vehicle(placement: Placement,
                            event: OppositeVehicleRunningRedLight | OppositeVehicleTakingPriority,
                            geometry: RouteGeometry, slots: Slots) -> None:
    """(Where no signalized junction follows the trigger, the red-light runner takes the first junction's other
    controls: it ignores its stop sign and priority there, as the Leaderboard's scenario does at a junction
    without lights.)"""
    signalized = isinstance(event, OppositeVehicleRunningRedLight)
    lanes, route = geometry.lanes, geometry.route
    try:
        entry = find_junction(geometry, event, control="light" if signalized else "any")
    except ValueError:
        if not signalized:
            raise
        entry = find_junction(geometry, event)
    ours = route.pieces[entry].lane
    found = geometry.crossing_flow(entry, -0.5 * math.pi if event.direction == "left" else 0.5 * math.pi)
    if found is None:
        raise ValueError(f"{event_name(event)}: no approach from the {event.direction} crosses the route at its "
                         "junction")
    crossing, source = found
    ours_s, theirs_s = closest(lanes[ours].centerline, lanes[crossing].centerline)
    meet_route = route.offsets[entry] + ours_s - route.pieces[entry].start_s_m
    slot = slots.take("vehicle", event)
    placement.place_vehicle(slot, (source, crossing, lanes[crossing].successors[0]), s_m=0.0,
                            speed_mps=event.speed_mps, desired_speed_mps=event.speed_mps)
    placement.arm_vehicle(slot, trigger_s_m=max(event.trigger_s_m, meet_route - REVEAL_M), hidden=True,
                          ignore_lights=True, ignore_priority=True, meet_s_m=lanes[source].length_m + theirs_s,
                          meet_route_s_m=meet_route, leave_at_s_m=meet_route + AFTER_M)


def _stage_junction_flow(placement: Placement,
                         event: SignalizedJunctionLeftTurn | SignalizedJunctionRightTurn
                         | NonSignalizedJunctionLeftTurn,
                         geometry: RouteGeometry, slots: Slots) -> None:
    signalized = not isinstance(event, NonSignalizedJunctionLeftTurn)
    left = not isinstance(event, SignalizedJunctionRightTurn)
    entry = find_junction(geometry, event, control="light" if signalized else "stop",
                          turn="left" if left else "right")
    # the flow comes towards the ego (left turn) / from its left (right turn), straight through
    found = geometry.crossing_flow(entry, math.pi if left else -0.5 * math.pi, max_turn_rad=0.3)
    if found is None:
        raise ValueError(f"{event_name(event)}: no straight flow {'from ahead' if left else 'from the left'} "
                         f"meets the route at its junction at {geometry.route.offsets[entry]:.1f} m")
    crossing, source = found
    trigger = place_flow(placement, event, geometry, slots, entry, crossing, source, count=event.flow_vehicles,
                         speed_mps=event.flow_speed_mps, interval_m=event.source_dist_interval_m,
                         obeys_lights=signalized)
    if signalized:
        hold_green(placement, event, geometry, entry, (geometry.route.pieces[entry - 1].lane, source), trigger)


#: The stager of each event type this module stages.
STAGERS: dict[str, Stager] = {
    "OppositeVehicleRunningRedLight": _stage_opposite_vehicle,
    "OppositeVehicleTakingPriority": _stage_opposite_vehicle,
    "SignalizedJunctionLeftTurn": _stage_junction_flow,
    "SignalizedJunctionRightTurn": _stage_junction_flow,
    "NonSignalizedJunctionLeftTurn": _stage_junction_flow,
}
