"""Pedestrians crossing the ego's lane: in the open, from behind a parked car, at the exit of a turn."""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.embedded.placement import Placement
from sim.embedded.staging.route_geometry import (
    BLOCKER_CLEARANCE_M,
    CURB_M,
    EXIT_CROSSING_M,
    REVEAL_M,
    RouteGeometry,
    Slots,
    Stager,
    event_name,
    side_normal,
    turn_of,
)
from sim.scenarios.events import (
    DynamicObjectCrossing,
    ParkingCrossingPedestrian,
    PedestrianCrossing,
    VehicleTurningRoutePedestrian,
)


def crossing(placement: Placement, event: Any, geometry: RouteGeometry, slots: Slots, *, meet_s_m: float,
              side: str, speed_mps: float, start_m: float, trigger_s_m: float | None = None,
              past_m: float = 0.0) -> int:
    """A pedestrian ``start_m`` to the ``side`` of the route at ``meet_s_m`` (mid-block or by a junction, in it
    too) who crosses the whole road, timed to be on the route there (``past_m`` beyond it) when the ego is; returns
    its slot."""
    route = geometry.route
    if not route.offsets[0] <= meet_s_m <= geometry.s[-1]:
        raise ValueError(f"{event_name(event)}: the crossing point {meet_s_m:.1f} m is off the route "
                         f"(0..{geometry.s[-1]:.1f} m)")
    xy, heading = geometry.pose(meet_s_m)
    toward = side_normal(heading, side)
    start = xy + start_m * toward
    far = geometry.road_extent(xy, -toward) + CURB_M
    slot = slots.take("pedestrian", event)
    placement.place_pedestrian(slot, np.stack([start, xy - far * toward]), speed_mps=speed_mps,
                           start_time_s=np.inf)
    trigger = event.trigger_s_m if trigger_s_m is None else trigger_s_m
    placement.arm_pedestrian(slot, trigger_s_m=trigger, meet_route_s_m=meet_s_m, meet_walk_m=start_m + past_m)
    return slot


def _stage_pedestrian_crossing(placement: Placement, event: PedestrianCrossing, geometry: RouteGeometry,
                               slots: Slots) -> None:
    meet = event.trigger_s_m + event.distance_m
    crossing(placement, event, geometry, slots, meet_s_m=meet, side=event.direction, speed_mps=event.speed_mps,
              start_m=0.5 * geometry.lane_width(meet) + CURB_M)


def _behind_parked_car(placement: Placement, event: DynamicObjectCrossing | ParkingCrossingPedestrian,
                       geometry: RouteGeometry, slots: Slots, meet_s_m: float, car_back_m: float,
                       past_m: float = 0.0) -> None:
    """A pedestrian who crosses the ego's lane at ``meet_s_m`` from the ``event.direction`` curb, out from beside
    a car parked there (just off the lane) ``car_back_m`` before the crossing, which hides them (``past_m``: see
    :func:`crossing`)."""
    width = geometry.lane_width(meet_s_m)
    blocker_offset = 0.5 * width + 1.3
    blocker_s = meet_s_m - car_back_m
    if not geometry.clear_of_junctions(blocker_s - BLOCKER_CLEARANCE_M, meet_s_m + BLOCKER_CLEARANCE_M):
        raise ValueError(f"{event_name(event)}: the car parked before the crossing at {meet_s_m:.1f} m would stand "
                         f"within {BLOCKER_CLEARANCE_M:.0f} m of a junction (where turning traffic cuts the corner)")
    crossing(placement, event, geometry, slots, meet_s_m=meet_s_m, side=event.direction, speed_mps=event.speed_mps,
              start_m=blocker_offset, past_m=past_m)
    piece = geometry.piece_at(blocker_s)
    lanes = tuple(p.lane for p in geometry.route.pieces[piece:piece + 3])
    slot = slots.take("vehicle", event)
    placement.place_vehicle(slot, lanes, s_m=geometry.lane_s(piece, blocker_s), speed_mps=0.0,
                        desired_speed_mps=0.0,
                        lateral_offset_m=blocker_offset if event.direction == "left" else -blocker_offset)


def _stage_dynamic_object_crossing(placement: Placement, event: DynamicObjectCrossing,
                                   geometry: RouteGeometry, slots: Slots) -> None:
    _behind_parked_car(placement, event, geometry, slots, event.trigger_s_m + event.distance_m, 4.0)


def _stage_parking_crossing(placement: Placement, event: ParkingCrossingPedestrian, geometry: RouteGeometry,
                            slots: Slots) -> None:
    # the car parked ``distance_m`` past the trigger; the pedestrian steps out just in front of it (as the
    # Leaderboard's: half a car length and 0.5 m on), early enough to be 1.2 m past the middle of the ego's path when
    # the ego gets there at its speed (the Leaderboard's sets off 1.9 s before the ego would get there)
    _behind_parked_car(placement, event, geometry, slots, event.trigger_s_m + event.distance_m + 2.75, 2.75, 1.2)


def _stage_turning_route_pedestrian(placement: Placement, event: VehicleTurningRoutePedestrian,
                                    geometry: RouteGeometry, slots: Slots) -> None:
    entry = geometry.junction_entry(event.trigger_s_m)
    if entry < 0 or entry + 1 >= len(geometry.route.pieces):
        raise ValueError(f"{event_name(event)}: the route passes no junction after the trigger")
    meet = geometry.route.offsets[entry + 1] + EXIT_CROSSING_M
    turn = turn_of(geometry.lanes[geometry.route.pieces[entry].lane].centerline)
    side = "left" if turn > 0 else "right"  # the pedestrian comes from the side the ego turns to
    crossing(placement, event, geometry, slots, meet_s_m=meet, side=side, speed_mps=event.speed_mps,
              start_m=0.5 * geometry.lane_width(meet) + CURB_M, trigger_s_m=max(event.trigger_s_m, meet - REVEAL_M))


#: The stager of each event type this module stages.
STAGERS: dict[str, Stager] = {
    "PedestrianCrossing": _stage_pedestrian_crossing,
    "DynamicObjectCrossing": _stage_dynamic_object_crossing,
    "VehicleTurningRoutePedestrian": _stage_turning_route_pedestrian,
    "ParkingCrossingPedestrian": _stage_parking_crossing,
}
