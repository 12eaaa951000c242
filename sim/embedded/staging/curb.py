"""The curb: the ego leaving a parking place into traffic, and the robotaxi's pick-up and drop-off stops."""

from __future__ import annotations

from sim.embedded.placement import Placement
from sim.embedded.staging.route_geometry import (
    AFTER_M,
    RouteGeometry,
    Slots,
    Stager,
    behind_on_route,
    event_name,
)
from sim.scenarios.events import (
    CurbsideDropoff,
    CurbsidePickup,
    ParkingExit,
)


def _stage_parking_exit(placement: Placement, event: ParkingExit, geometry: RouteGeometry,
                        slots: Slots) -> None:
    start = geometry.start_s_m  # (the trigger plays no part: the ego starts in the parking place)
    if event.direction != "right":
        raise ValueError(f"{event_name(event)}: parking places are at the right curb (right-hand traffic)")
    ahead = start + event.front_vehicle_distance_m
    if not geometry.clear_of_junctions(start - event.behind_vehicle_distance_m - 3.0, ahead + 15.0):
        raise ValueError(f"{event_name(event)}: the parking place at {start:.1f} m is too near a junction")
    if ahead + 20.0 > geometry.s[-1]:
        raise ValueError(f"{event_name(event)}: the route is too short to leave the parking place")
    width = geometry.lane_width(start)
    parked = -(0.5 * width + 1.3)  # beside the lane, clear of it
    placement.park_ego(parked, leave_by_s_m=start + event.front_vehicle_distance_m)
    for s in (ahead, start - event.behind_vehicle_distance_m):
        try:
            lanes, lane_s = behind_on_route(geometry, s)
        except ValueError as error:
            raise ValueError(f"{event_name(event)}: {error} (for the car parked behind the ego)") from error
        slot = slots.take("vehicle", event)
        placement.place_vehicle(slot, lanes, s_m=lane_s, speed_mps=0.0, desired_speed_mps=0.0,
                            lateral_offset_m=parked)
    # the traffic coming along the lane: the first passes the parking place when a driver pulling straight out
    # would be entering the lane
    for k in range(event.flow_vehicles):
        back = event.flow_speed_mps * 3.0 - 6.0 + k * event.flow_interval_m
        try:
            lanes, lane_s = behind_on_route(geometry, start - back)
        except ValueError as error:
            raise ValueError(f"{event_name(event)}: {error} (for the traffic from behind)") from error
        slot = slots.take("vehicle", event)
        placement.place_vehicle(slot, lanes, s_m=lane_s, speed_mps=event.flow_speed_mps,
                            desired_speed_mps=event.flow_speed_mps)
        placement.arm_vehicle(slot, trigger_s_m=-1.0, follow_route=True, no_curb_yield=True,
                          leave_at_s_m=ahead + AFTER_M)


def _stage_curbside(placement: Placement, event: CurbsidePickup | CurbsideDropoff, geometry: RouteGeometry,
                    slots: Slots) -> None:
    at = event.trigger_s_m + event.distance_m
    if not geometry.route.offsets[0] <= event.trigger_s_m - 25.0 or at + 25.0 > geometry.s[-1]:
        raise ValueError(f"{event_name(event)}: the stop at {at:.1f} m does not fit on the route "
                         f"(0..{geometry.s[-1]:.1f} m, with room before and after it)")
    piece = geometry.piece_at(at)
    lane = geometry.route.pieces[piece].lane
    lane_s = geometry.lane_s(piece, at)
    margin = event.tolerance_m + 2.5
    zones = [z for z in geometry.zones if z.lane_id == lane and z.start_s_m + margin <= lane_s <= z.end_s_m - margin]
    if not zones:
        raise ValueError(f"{event_name(event)}: the stop at {at:.1f} m is not in a marked curbside zone of its lane")
    width = geometry.lane_width(at)
    room = 0.5 * width - 0.5 * placement.config.ego_width_m  # how far the ego's centre can go right within the lane
    placement.add_curbside_stop(at, tolerance_m=event.tolerance_m, dwell_s=event.dwell_s,
                            lateral_max_m=-(room - event.curb_tolerance_m), offset_m=-min(room - 0.15, 0.8))
    # traffic behind: a vehicle following the ego from the trigger on
    behind = event.trigger_s_m - 18.0
    try:
        lanes, follow_s = behind_on_route(geometry, behind)
    except ValueError as error:
        raise ValueError(f"{event_name(event)}: {error} (for the traffic behind)") from error
    speed = 0.8 * geometry.lanes[lanes[0]].speed_limit_mps
    slot = slots.take("vehicle", event)
    placement.place_vehicle(slot, lanes, s_m=follow_s, speed_mps=speed, desired_speed_mps=speed)
    placement.arm_vehicle(slot, trigger_s_m=event.trigger_s_m, hidden=True, follow_route=True,
                      leave_at_s_m=at + AFTER_M)


#: The stager of each event type this module stages.
STAGERS: dict[str, Stager] = {
    "ParkingExit": _stage_parking_exit,
    "CurbsidePickup": _stage_curbside,
    "CurbsideDropoff": _stage_curbside,
}
