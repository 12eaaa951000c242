"""Vehicles meeting the ego at a junction: one running its red light or taking priority, a flow with the right
of way across (or into) the ego's turn."""

from __future__ import annotations

import math

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
    event_name,
    turn_of,
)
from sim.embedded.traffic import LightState
from sim.scenarios.events import (
    NonSignalizedJunctionLeftTurn,
    OppositeVehicleRunningRedLight,
    OppositeVehicleTakingPriority,
    SignalizedJunctionLeftTurn,
    SignalizedJunctionRightTurn,
)


def _stage_opposite_vehicle(placement: Placement,
                            event: OppositeVehicleRunningRedLight | OppositeVehicleTakingPriority,
                            geometry: RouteGeometry, slots: Slots) -> None:
    signalized = isinstance(event, OppositeVehicleRunningRedLight)
    lanes, route = geometry.lanes, geometry.route
    entry = geometry.junction_entry(event.trigger_s_m)
    while entry >= 0 and signalized and lanes[route.pieces[entry - 1].lane].light_group is None:
        entry = geometry.junction_entry(route.offsets[entry] + 1e-3)
    if entry < 0:
        raise ValueError(f"{event_name(event)}: the route passes no {'signalized ' if signalized else ''}junction "
                         "after the trigger")
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
    lanes, arrays, route = geometry.lanes, geometry.arrays, geometry.route
    entry = geometry.junction_entry(event.trigger_s_m)
    while entry >= 0:
        approach, ours = lanes[route.pieces[entry - 1].lane], lanes[route.pieces[entry].lane]
        turn = turn_of(ours.centerline)
        controlled = approach.light_group is not None if signalized else approach.stop_sign
        if controlled and (turn > 0.6 if left else turn < -0.6):
            break
        entry = geometry.junction_entry(route.offsets[entry] + 1e-3)
    what = f"{'signalized' if signalized else 'all-way-stop'} junction where it turns {'left' if left else 'right'}"
    if entry < 0:
        raise ValueError(f"{event_name(event)}: the route passes no {what} after the trigger")
    approach_lane, ours_lane = route.pieces[entry - 1].lane, route.pieces[entry].lane
    # the flow comes towards the ego (left turn) / from its left (right turn), straight through
    found = geometry.crossing_flow(entry, math.pi if left else -0.5 * math.pi, max_turn_rad=0.3)
    if found is None:
        raise ValueError(f"{event_name(event)}: no straight flow {'from ahead' if left else 'from the left'} "
                         f"meets the route at its {what}")
    crossing, source = found
    upstream = geometry.straightest_feeder(source)
    ours_s, theirs_s = closest(lanes[ours_lane].centerline, lanes[crossing].centerline)
    meet_route = route.offsets[entry] + ours_s - route.pieces[entry].start_s_m
    trigger = max(event.trigger_s_m, meet_route - REVEAL_M)
    chain = (upstream, source, crossing) if upstream >= 0 else (source, crossing)
    meet_s = sum(lanes[lane].length_m for lane in chain[:-1]) + theirs_s
    rng = np.random.default_rng([int(placement.state.seed[placement.env]) % 2**32, round(event.trigger_s_m * 100)])
    low, high = sorted(event.source_dist_interval_m)
    behind = 0.0
    for _ in range(event.flow_vehicles):
        slot = slots.take("vehicle", event)
        placement.place_vehicle(slot, chain, s_m=0.0, speed_mps=event.flow_speed_mps,
                            desired_speed_mps=event.flow_speed_mps)
        placement.arm_vehicle(slot, trigger_s_m=trigger, hidden=True, ignore_lights=not signalized,
                          ignore_priority=True, meet_s_m=max(meet_s - behind, 0.0), meet_route_s_m=meet_route,
                          leave_at_s_m=meet_route + AFTER_M)
        behind += float(rng.uniform(low, high))
    if signalized:
        ego_group, flow_group = lanes[approach_lane].light_group, lanes[source].light_group
        assert ego_group is not None
        if flow_group is None:
            raise ValueError(f"{event_name(event)}: the flow's approach at the {what} has no light")
        junction = arrays.light_junction[ego_group]
        states = {int(g): int(LightState.RED) for g in np.flatnonzero(arrays.light_junction == junction)}
        states[ego_group] = states[flow_group] = int(LightState.GREEN)
        placement.hold_lights(states, trigger_s_m=trigger, hold_s=LIGHT_HOLD_S)


#: The stager of each event type this module stages.
STAGERS: dict[str, Stager] = {
    "OppositeVehicleRunningRedLight": _stage_opposite_vehicle,
    "OppositeVehicleTakingPriority": _stage_opposite_vehicle,
    "SignalizedJunctionLeftTurn": _stage_junction_flow,
    "SignalizedJunctionRightTurn": _stage_junction_flow,
    "NonSignalizedJunctionLeftTurn": _stage_junction_flow,
}
