"""Hazards at the side of the ego's lane that reach into it: a parked vehicle's open door, slow bicycles at the
lane's edge."""

from __future__ import annotations

from sim.embedded.placement import Placement
from sim.embedded.staging.blocked_lanes import blocked_lane
from sim.embedded.staging.junction_turns import BICYCLE_LENGTH_M, BICYCLE_WIDTH_M
from sim.embedded.staging.route_geometry import RouteGeometry, Slots, Stager, event_name, park_on_route, side_normal
from sim.scenarios.events import HazardAtSideLane, VehicleOpensDoorTwoWays

#: How far an open door reaches out from the side of its car, and how long it is along the car.
DOOR_REACH_M = 1.2
DOOR_LENGTH_M = 0.4
#: How far apart the event's two bicycles ride (the Leaderboard's).
BICYCLE_GAP_M = 9.0


def _stage_opens_door(placement: Placement, event: VehicleOpensDoorTwoWays, geometry: RouteGeometry,
                      slots: Slots) -> None:
    at = event.trigger_s_m + event.distance_m
    blocked_lane(placement, event, geometry, at - 3.0, 6.0)
    width = geometry.lane_width(at)
    sign = 1.0 if event.direction == "left" else -1.0
    car_offset = 0.5 * width + 1.1  # just off the lane, at the curb
    park_on_route(placement, event, geometry, slots, at, sign * car_offset)
    # the front door, open: from the car's side into the ego's lane
    door_lateral = car_offset - 0.95 - 0.5 * DOOR_REACH_M
    xy, heading = geometry.pose(at + 0.8)
    door = xy + door_lateral * side_normal(heading, event.direction)
    placement.place_static(slots.take("static", event), (float(door[0]), float(door[1])), heading,
                           length_m=DOOR_LENGTH_M, width_m=DOOR_REACH_M)


def _stage_hazard_at_side_lane(placement: Placement, event: HazardAtSideLane, geometry: RouteGeometry,
                               slots: Slots) -> None:
    at = event.trigger_s_m + event.distance_m
    end = at + BICYCLE_GAP_M + event.bicycle_drive_distance_m
    if not geometry.route.offsets[0] <= event.trigger_s_m or end + 20.0 > geometry.s[-1]:
        raise ValueError(f"{event_name(event)}: the bicycles' ride {at:.1f}..{end:.1f} m does not fit on the route "
                         f"(0..{geometry.s[-1]:.1f} m)")
    if not geometry.clear_of_junctions(at - 10.0, end):
        raise ValueError(f"{event_name(event)}: a junction lies on the bicycles' ride {at:.1f}..{end:.1f} m")
    speed_mps = event.bicycle_speed_kmh / 3.6
    for k in range(2):
        s = at + k * BICYCLE_GAP_M
        piece = geometry.piece_at(s)
        lanes = tuple(p.lane for p in geometry.route.pieces[piece:piece + 3])
        slot = slots.take("vehicle", event)
        placement.place_vehicle(slot, lanes, s_m=geometry.lane_s(piece, s), speed_mps=speed_mps,
                                desired_speed_mps=speed_mps, length_m=BICYCLE_LENGTH_M,
                                width_m=BICYCLE_WIDTH_M, lateral_offset_m=-0.55 * 0.5 * geometry.lane_width(s))
        # they ride from the trigger on, at the lane's edge, until the ego has got to where their ride ends
        placement.arm_vehicle(slot, trigger_s_m=event.trigger_s_m, hidden=True, follow_route=True, keep_offset=True,
                              leave_at_s_m=end)


#: The stager of each event type this module stages.
STAGERS: dict[str, Stager] = {
    "VehicleOpensDoorTwoWays": _stage_opens_door,
    "HazardAtSideLane": _stage_hazard_at_side_lane,
}
