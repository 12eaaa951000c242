"""The ego's turns at junctions: flows it turns across or into (from ahead, from the left, onto a main road,
bicycles), a bicycle crossing the road it turns into, a vehicle blocking the junction's exit, the junction's
lights held green or red as it comes, and turns where nothing is staged (the route's place is checked)."""

from __future__ import annotations

import math
from typing import Any

from sim.embedded.placement import Placement
from sim.embedded.staging.crossings import crossing
from sim.embedded.staging.junctions import find_junction, green_only, hold_green, merging_flow, place_flow
from sim.embedded.staging.route_geometry import (
    AFTER_M,
    CURB_M,
    LIGHT_HOLD_S,
    REVEAL_M,
    RouteGeometry,
    Slots,
    Stager,
    end_heading,
    event_name,
    park_on_route,
    turn_of,
)
from sim.geometry import wrap_angle
from sim.scenarios.events import (
    BlockedIntersection,
    CrossingBicycleFlow,
    InterurbanActorFlow,
    InterurbanAdvancedActorFlow,
    NonSignalizedJunctionLeftTurnEnterFlow,
    NonSignalizedJunctionRightTurn,
    PriorityAtJunction,
    SignalizedJunctionLeftTurnEnterFlow,
    T_Junction,
    VanillaNonSignalizedTurn,
    VanillaNonSignalizedTurnEncounterStopsign,
    VanillaSignalizedTurnEncounterGreenLight,
    VanillaSignalizedTurnEncounterRedLight,
    VehicleTurningRoute,
)
from sim.scene.kernels.planner import NUDGE_LOOKAHEAD_M
from sim.scene.records import ActorKind

#: A bicycle's box (metres).
BICYCLE_LENGTH_M, BICYCLE_WIDTH_M = 1.8, 0.7
#: A bicycle rides this far from its lane's right edge (its centre).
BICYCLE_EDGE_M = 0.8
#: The vehicle blocking a junction's exit stands from when the ego is this far from it: beyond where the ego
#: would plan to pass it as a parked obstacle (it stands in traffic, to be waited for).
BLOCKER_NOTICE_M = NUDGE_LOOKAHEAD_M + 5.0
#: Bench2Drive's turns at signalized junctions keep the ego's light red this long from their trigger before it
#: turns green.
RED_FIRST_S = 5.0
#: The blocker drives on at this share of its lane's speed limit.
BLOCKER_SPEED_SHARE = 0.6


def _no_flow(event: Any, geometry: RouteGeometry, entry: int, what: str) -> ValueError:
    return ValueError(f"{event_name(event)}: no {what} meets the route at its junction at "
                      f"{geometry.route.offsets[entry]:.1f} m")


def _stage_right_turn_flow(placement: Placement, event: NonSignalizedJunctionRightTurn, geometry: RouteGeometry,
                           slots: Slots) -> None:
    entry = find_junction(geometry, event, control="unsignalized", turn="right")
    found = geometry.crossing_flow(entry, -0.5 * math.pi, max_turn_rad=0.3)
    if found is None:
        raise _no_flow(event, geometry, entry, "straight flow from the left")
    place_flow(placement, event, geometry, slots, entry, *found, count=event.flow_vehicles,
               speed_mps=event.flow_speed_mps, interval_m=event.source_dist_interval_m, obeys_lights=False)


def _stage_enter_flow(placement: Placement,
                      event: SignalizedJunctionLeftTurnEnterFlow | NonSignalizedJunctionLeftTurnEnterFlow,
                      geometry: RouteGeometry, slots: Slots) -> None:
    signalized = isinstance(event, SignalizedJunctionLeftTurnEnterFlow)
    entry = find_junction(geometry, event, control="light" if signalized else "unsignalized", turn="left")
    found = merging_flow(geometry, entry, math.pi, "right")
    if found is None:
        raise _no_flow(event, geometry, entry, "oncoming flow turning right into the ego's lane")
    trigger = place_flow(placement, event, geometry, slots, entry, *found, count=event.flow_vehicles,
                         speed_mps=event.flow_speed_mps, interval_m=event.source_dist_interval_m,
                         obeys_lights=signalized)
    if signalized:  # the flow's light green, the ego's red for RED_FIRST_S, then both green
        ego = geometry.route.pieces[entry - 1].lane
        placement.hold_lights(green_only(event, geometry, entry, (found[1],)), trigger_s_m=trigger,
                              hold_s=RED_FIRST_S, then=green_only(event, geometry, entry, (ego, found[1])),
                              then_s=LIGHT_HOLD_S)


def _stage_interurban(placement: Placement, event: InterurbanActorFlow, geometry: RouteGeometry,
                      slots: Slots) -> None:
    entry = find_junction(geometry, event, control="unsignalized", turn="left")
    found = geometry.crossing_flow(entry, math.pi, max_turn_rad=0.3)
    if found is None:
        raise _no_flow(event, geometry, entry, "straight oncoming flow")
    place_flow(placement, event, geometry, slots, entry, *found, count=event.flow_vehicles,
               speed_mps=event.flow_speed_mps, interval_m=event.source_dist_interval_m, obeys_lights=False)


def _stage_interurban_advanced(placement: Placement, event: InterurbanAdvancedActorFlow, geometry: RouteGeometry,
                               slots: Slots) -> None:
    entry = find_junction(geometry, event, control="unsignalized", turn="left")
    across = geometry.crossing_flow(entry, -0.5 * math.pi, max_turn_rad=0.3)
    into = merging_flow(geometry, entry, 0.5 * math.pi, "straight")
    if across is None or into is None:
        raise _no_flow(event, geometry, entry, "straight flow from the left" if across is None else
                       "straight flow from the right into the ego's lane")
    for flow in (across, into):
        place_flow(placement, event, geometry, slots, entry, *flow, count=event.flow_vehicles,
                   speed_mps=event.flow_speed_mps, interval_m=event.source_dist_interval_m, obeys_lights=False)


def _stage_bicycle_flow(placement: Placement, event: CrossingBicycleFlow, geometry: RouteGeometry,
                        slots: Slots) -> None:
    entry = find_junction(geometry, event, turn="turning")
    route, lanes = geometry.route, geometry.lanes
    left = turn_of(lanes[route.pieces[entry].lane].centerline) > 0.0
    found = geometry.crossing_flow(entry, math.pi if left else -0.5 * math.pi, max_turn_rad=0.3)
    if found is None:
        raise _no_flow(event, geometry, entry, f"straight lane {'from ahead' if left else 'from the left'}")
    edge = 0.5 * lanes[found[1]].width_m - BICYCLE_EDGE_M
    trigger = place_flow(placement, event, geometry, slots, entry, *found, count=event.flow_vehicles,
                         speed_mps=event.flow_speed_mps, interval_m=event.source_dist_interval_m, obeys_lights=False,
                         length_m=BICYCLE_LENGTH_M, width_m=BICYCLE_WIDTH_M, offset_m=-edge)
    if lanes[route.pieces[entry - 1].lane].light_group is not None:  # all red for RED_FIRST_S, then the ego's green
        placement.hold_lights(green_only(event, geometry, entry, ()), trigger_s_m=trigger, hold_s=RED_FIRST_S,
                              then=green_only(event, geometry, entry, (route.pieces[entry - 1].lane,)),
                              then_s=LIGHT_HOLD_S)


def _stage_turning_bicycle(placement: Placement, event: VehicleTurningRoute, geometry: RouteGeometry,
                           slots: Slots) -> None:
    entry = find_junction(geometry, event, turn="turning")
    if entry + 1 >= len(geometry.route.pieces):
        raise ValueError(f"{event_name(event)}: the route ends in its junction")
    meet = geometry.route.offsets[entry + 1] + event.distance_m
    slot = crossing(placement, event, geometry, slots, meet_s_m=meet, side="right", speed_mps=event.speed_mps,
                    start_m=0.5 * geometry.lane_width(meet) + CURB_M,
                    trigger_s_m=max(event.trigger_s_m, meet - REVEAL_M))
    actor = placement.config.max_vehicles + slot
    placement.scene.actors.length_m[placement.env, actor] = BICYCLE_LENGTH_M
    placement.scene.actors.width_m[placement.env, actor] = BICYCLE_WIDTH_M
    placement.scene.actors.kind[placement.env, actor] = ActorKind.VEHICLE


def _stage_blocked_intersection(placement: Placement, event: BlockedIntersection, geometry: RouteGeometry,
                                slots: Slots) -> None:
    entry = find_junction(geometry, event, turn="turning")
    route = geometry.route
    if entry + 1 >= len(route.pieces):
        raise ValueError(f"{event_name(event)}: the route ends in its junction")
    at = route.offsets[entry + 1] + event.distance_m
    if at + 10.0 > geometry.s[-1] or not geometry.clear_of_junctions(route.offsets[entry + 1], at + 5.0):
        raise ValueError(f"{event_name(event)}: the blocker's place {at:.1f} m is past the route's end or in the next "
                         "junction")
    slot = park_on_route(placement, event, geometry, slots, at, 0.0)
    limit = geometry.lanes[route.pieces[entry + 1].lane].speed_limit_mps
    placement.arm_vehicle(slot, trigger_s_m=max(event.trigger_s_m, at - BLOCKER_NOTICE_M), follow_route=True,
                          cut_in_speed_mps=BLOCKER_SPEED_SHARE * limit, brake_decel_mps2=8.0, hold_s=event.stop_s,
                          leave_at_s_m=at + AFTER_M)


def _light_trigger(event: Any, geometry: RouteGeometry, entry: int) -> float:
    return float(max(event.trigger_s_m, geometry.route.offsets[entry] - REVEAL_M))


def _stage_green_light(placement: Placement, event: PriorityAtJunction | VanillaSignalizedTurnEncounterGreenLight,
                       geometry: RouteGeometry, slots: Slots) -> None:
    turn = "any" if isinstance(event, PriorityAtJunction) else "turning"
    entry = find_junction(geometry, event, control="light", turn=turn)
    hold_green(placement, event, geometry, entry, (geometry.route.pieces[entry - 1].lane,),
               _light_trigger(event, geometry, entry))


def _stage_red_light(placement: Placement, event: VanillaSignalizedTurnEncounterRedLight, geometry: RouteGeometry,
                     slots: Slots) -> None:
    entry = find_junction(geometry, event, control="light", turn="turning")
    placement.hold_lights(green_only(event, geometry, entry, ()), trigger_s_m=_light_trigger(event, geometry, entry),
                          hold_s=event.red_s,
                          then=green_only(event, geometry, entry, (geometry.route.pieces[entry - 1].lane,)),
                          then_s=LIGHT_HOLD_S)


def _stage_plain_turn(placement: Placement, event: VanillaNonSignalizedTurn | VanillaNonSignalizedTurnEncounterStopsign,
                      geometry: RouteGeometry, slots: Slots) -> None:
    stop = isinstance(event, VanillaNonSignalizedTurnEncounterStopsign)
    find_junction(geometry, event, control="stop" if stop else "none", turn="turning")


def approach_directions(geometry: RouteGeometry, junction_id: int) -> int:
    """How many directions a junction's approaches come from (headings more than 30 degrees apart)."""
    lanes = geometry.lanes
    headings: list[float] = []
    for lane in lanes:
        if lane.junction_id != junction_id:
            continue
        for p in geometry.predecessors[lane.lane_id]:
            if lanes[p].is_junction:
                continue
            heading = end_heading(lanes[p].centerline)
            if all(abs(float(wrap_angle(heading - h))) > math.radians(30.0) for h in headings):
                headings.append(heading)
    return len(headings)


def _stage_t_junction(placement: Placement, event: T_Junction, geometry: RouteGeometry, slots: Slots) -> None:
    route, lanes = geometry.route, geometry.lanes
    entry = geometry.junction_entry(event.trigger_s_m)
    while entry >= 0:
        junction = lanes[route.pieces[entry].lane].junction_id
        if junction is not None and approach_directions(geometry, junction) == 3:
            return
        entry = geometry.junction_entry(route.offsets[entry] + 1e-3)
    raise ValueError(f"{event_name(event)}: the route passes no T junction after the trigger")


#: The stager of each event type this module stages.
STAGERS: dict[str, Stager] = {
    "NonSignalizedJunctionRightTurn": _stage_right_turn_flow,
    "SignalizedJunctionLeftTurnEnterFlow": _stage_enter_flow,
    "NonSignalizedJunctionLeftTurnEnterFlow": _stage_enter_flow,
    "InterurbanActorFlow": _stage_interurban,
    "InterurbanAdvancedActorFlow": _stage_interurban_advanced,
    "CrossingBicycleFlow": _stage_bicycle_flow,
    "VehicleTurningRoute": _stage_turning_bicycle,
    "BlockedIntersection": _stage_blocked_intersection,
    "PriorityAtJunction": _stage_green_light,
    "VanillaSignalizedTurnEncounterGreenLight": _stage_green_light,
    "VanillaSignalizedTurnEncounterRedLight": _stage_red_light,
    "VanillaNonSignalizedTurn": _stage_plain_turn,
    "VanillaNonSignalizedTurnEncounterStopsign": _stage_plain_turn,
    "T_Junction": _stage_t_junction,
}
