"""Vehicles acting in or beside the ego's lane: a lead vehicle braking hard, cut-ins from the curb or the next
lane, oncoming vehicles invading the lane, an emergency vehicle from behind."""

from __future__ import annotations

from sim.embedded.placement import Placement
from sim.embedded.staging.route_geometry import (
    AFTER_M,
    REVEAL_M,
    RouteGeometry,
    Slots,
    Stager,
    event_name,
    park_on_route,
)
from sim.scenarios.events import (
    HardBreakRoute,
    InvadingTurn,
    ParkingCutIn,
    StaticCutIn,
    YieldToEmergencyVehicle,
)


def _stage_hard_break(placement: Placement, event: HardBreakRoute, geometry: RouteGeometry,
                      slots: Slots) -> None:
    at = geometry.start_s_m + event.distance_m
    if at >= geometry.s[-1] - 5.0:
        raise ValueError(f"{event_name(event)}: the lead vehicle's place {at:.1f} m is past the route's end")
    piece = geometry.piece_at(at)
    lanes = tuple(p.lane for p in geometry.route.pieces[piece:piece + 3])
    speed = 0.8 * geometry.lanes[lanes[0]].speed_limit_mps
    slot = slots.take("vehicle", event)
    placement.place_vehicle(slot, lanes, s_m=geometry.lane_s(piece, at), speed_mps=speed, desired_speed_mps=speed)
    placement.arm_vehicle(slot, trigger_s_m=event.trigger_s_m, follow_route=True,
                      brake_decel_mps2=event.decel_mps2, hold_s=event.hold_s,
                      leave_at_s_m=event.trigger_s_m + event.distance_m + AFTER_M)


def _stage_cut_in(placement: Placement, event: ParkingCutIn, geometry: RouteGeometry, slots: Slots) -> None:
    at = event.trigger_s_m + event.distance_m
    if not geometry.route.offsets[0] <= event.trigger_s_m or at + 20.0 > geometry.s[-1]:
        raise ValueError(f"{event_name(event)}: the parking place {at:.1f} m does not fit on the route "
                         f"(0..{geometry.s[-1]:.1f} m)")
    if not geometry.clear_of_junctions(event.trigger_s_m, at + 20.0):
        raise ValueError(f"{event_name(event)}: the parking place {at:.1f} m is too near a junction")
    offset = 0.5 * geometry.lane_width(at) + 1.1
    slot = park_on_route(placement, event, geometry, slots, at, offset if event.direction == "left" else -offset)
    placement.arm_vehicle(slot, trigger_s_m=event.trigger_s_m, follow_route=True, cut_in_speed_mps=event.speed_mps,
                      leave_at_s_m=at + AFTER_M)


def _stage_static_cut_in(placement: Placement, event: StaticCutIn, geometry: RouteGeometry,
                         slots: Slots) -> None:
    at = event.trigger_s_m + event.distance_m
    if not geometry.route.offsets[0] <= event.trigger_s_m - 10.0 or at + 20.0 > geometry.s[-1]:
        raise ValueError(f"{event_name(event)}: the cut-in place {at:.1f} m does not fit on the route "
                         f"(0..{geometry.s[-1]:.1f} m)")
    if not geometry.clear_of_junctions(at - 12.0, at + 20.0):
        raise ValueError(f"{event_name(event)}: the cut-in place {at:.1f} m is too near a junction")
    for s in (at - 8.0, at, at + 10.0):
        beside = geometry.lane_beside(s, event.direction)
        if beside is None or not beside[2]:
            raise ValueError(f"{event_name(event)}: no lane to the {event.direction} running the route's way at "
                             f"{s:.1f} m")
    width = geometry.lane_width(at)
    offset = width if event.direction == "left" else -width
    park_on_route(placement, event, geometry, slots, at - 7.5, offset)  # the one queued behind it
    slot = park_on_route(placement, event, geometry, slots, at, offset)
    placement.arm_vehicle(slot, trigger_s_m=event.trigger_s_m, follow_route=True, cut_in_speed_mps=event.speed_mps,
                      leave_at_s_m=at + AFTER_M)


def _stage_emergency(placement: Placement, event: YieldToEmergencyVehicle, geometry: RouteGeometry,
                     slots: Slots) -> None:
    back = event.trigger_s_m - event.distance_m
    if back < geometry.route.offsets[0] or event.trigger_s_m + 120.0 > geometry.s[-1]:
        raise ValueError(f"{event_name(event)}: the emergency vehicle's start {back:.1f} m and the 120 m after the "
                         f"trigger do not fit on the route (0..{geometry.s[-1]:.1f} m)")
    if not geometry.clear_of_junctions(event.trigger_s_m, event.trigger_s_m + 50.0):
        raise ValueError(f"{event_name(event)}: a junction lies within 50 m past the trigger (no room to pull over)")
    piece = geometry.piece_at(back)
    lanes = tuple(p.lane for p in geometry.route.pieces[piece:piece + 3])
    slot = slots.take("vehicle", event)
    placement.place_vehicle(slot, lanes, s_m=geometry.lane_s(piece, back), speed_mps=event.speed_mps,
                        desired_speed_mps=event.speed_mps, length_m=5.5, width_m=2.0)
    placement.arm_vehicle(slot, trigger_s_m=event.trigger_s_m, hidden=True, follow_route=True, emergency=True)


def _stage_invading_turn(placement: Placement, event: InvadingTurn, geometry: RouteGeometry,
                         slots: Slots) -> None:
    meet = event.trigger_s_m + event.distance_m
    last = meet + (event.vehicles - 1) * event.interval_m + 10.0
    if not geometry.route.offsets[0] <= event.trigger_s_m or last > geometry.s[-1]:
        raise ValueError(f"{event_name(event)}: the stretch {meet:.1f}..{last:.1f} m does not fit on the route "
                         f"(0..{geometry.s[-1]:.1f} m)")
    if not geometry.clear_of_junctions(meet - 25.0, last):  # (room to move right before they come)
        raise ValueError(f"{event_name(event)}: the stretch {meet:.1f}..{last:.1f} m is too near a junction")
    beside = geometry.lane_beside(meet, "left")
    if beside is None or beside[2]:
        raise ValueError(f"{event_name(event)}: no oncoming lane to the left at {meet:.1f} m")
    oncoming, s_there, _ = beside
    lanes = geometry.lanes
    upstream = geometry.straightest_feeder(oncoming)
    chain = (upstream, oncoming) if upstream >= 0 else (oncoming,)
    meet_s = sum(lanes[lane].length_m for lane in chain[:-1]) + s_there
    width = geometry.lane_width(meet)
    into = event.offset + 0.5 * width - 0.7  # towards the ego: to the left of the oncoming lane (as the Leaderboard)
    for k in range(event.vehicles):
        slot = slots.take("vehicle", event)
        placement.place_vehicle(slot, chain, s_m=0.0, speed_mps=event.speed_mps, desired_speed_mps=event.speed_mps,
                            width_m=1.9, lateral_offset_m=into)
        placement.arm_vehicle(slot, trigger_s_m=max(event.trigger_s_m, meet - REVEAL_M), hidden=True,
                          keep_offset=True, meet_s_m=max(meet_s - k * event.interval_m, 0.0),
                          meet_route_s_m=meet + k * event.interval_m, leave_at_s_m=meet + k * event.interval_m + 20.0)


#: The stager of each event type this module stages.
STAGERS: dict[str, Stager] = {
    "HardBreakRoute": _stage_hard_break,
    "ParkingCutIn": _stage_cut_in,
    "StaticCutIn": _stage_static_cut_in,
    "YieldToEmergencyVehicle": _stage_emergency,
    "InvadingTurn": _stage_invading_turn,
}
