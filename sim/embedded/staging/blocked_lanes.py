"""The ego's lane blocked ahead (a parked vehicle, an accident, road works): the ego passes on the left when
the way is clear."""

from __future__ import annotations

import math
from typing import Any

from sim.embedded.placement import Placement
from sim.embedded.staging.route_geometry import (
    RouteGeometry,
    Slots,
    Stager,
    event_name,
    park_on_route,
    side_normal,
)
from sim.geometry import wrap_angle
from sim.scenarios.events import (
    Accident,
    ConstructionObstacle,
    ParkedObstacle,
)
from sim.scene.kernels import planner

#: A blocked stretch may lie in a bend of the road that turns at most this much over it (sharper: a corner, which
#: the Leaderboard's obstacles do not stand in).
MAX_BEND_RAD = math.radians(45.0)


def bends_only(geometry: RouteGeometry, first_s_m: float, last_s_m: float) -> bool:
    """Whether every junction the route passes between the two arc lengths is a bend: a node where two roads
    meet (each lane into it goes on one way only and no path through it crosses another)."""
    pieces, offsets = geometry.route.pieces, geometry.route.offsets
    ends = [*offsets[1:], float(geometry.s[-1])]
    for piece, start, end in zip(pieces, offsets, ends, strict=True):
        lane = geometry.lanes[piece.lane]
        if not lane.is_junction or start >= last_s_m or end <= first_s_m:
            continue
        if geometry.arrays.conflict[piece.lane].any() or any(len(geometry.lanes[f].successors) > 1
                                                             for f in geometry.predecessors[piece.lane]):
            return False
    return True


def blocked_lane(placement: Placement, event: Any, geometry: RouteGeometry, start_s_m: float,
                  length_m: float) -> None:
    """Check that a lane blocked from ``start_s_m`` over ``length_m`` can be passed on the left (on a straight
    road or in a bend), and allow the ego on the oncoming lane around it."""
    run_up = 15.0
    if not geometry.route.offsets[0] <= start_s_m - run_up or start_s_m + length_m + 10.0 > geometry.s[-1]:
        raise ValueError(f"{event_name(event)}: the blocked stretch {start_s_m:.1f}..{start_s_m + length_m:.1f} m "
                         f"does not fit on the route (0..{geometry.s[-1]:.1f} m, with a {run_up:.0f} m run-up)")
    if not bends_only(geometry, start_s_m - run_up, start_s_m + length_m + 10.0):
        raise ValueError(f"{event_name(event)}: the blocked stretch {start_s_m:.1f}..{start_s_m + length_m:.1f} m "
                         "is too near a junction (other than a bend)")
    turn = float(wrap_angle(geometry.pose(start_s_m + length_m + 10.0)[1] - geometry.pose(start_s_m - run_up)[1]))
    if abs(turn) > MAX_BEND_RAD:
        raise ValueError(f"{event_name(event)}: the road turns {math.degrees(abs(turn)):.0f} degrees at the blocked "
                         f"stretch {start_s_m:.1f}..{start_s_m + length_m:.1f} m (a corner; at most "
                         f"{math.degrees(MAX_BEND_RAD):.0f} for a bend)")
    for s in (start_s_m, start_s_m + length_m):
        xy, heading = geometry.pose(s)
        if not geometry.on_road(xy + geometry.lane_width(s) * side_normal(heading, "left")):
            raise ValueError(f"{event_name(event)}: no lane to the left to pass on at {s:.1f} m")
    # (from where the ego may begin to move over, as it looks ahead for obstacles, until it is back)
    placement.allow_oncoming_lane(start_s_m - planner.NUDGE_LOOKAHEAD_M - 10.0, start_s_m + length_m + 30.0)




def _stage_parked_obstacle(placement: Placement, event: ParkedObstacle, geometry: RouteGeometry,
                           slots: Slots) -> None:
    at = event.trigger_s_m + event.distance_m
    blocked_lane(placement, event, geometry, at - 2.5, 5.0)
    park_on_route(placement, event, geometry, slots, at, -0.5)


def _stage_accident(placement: Placement, event: Accident, geometry: RouteGeometry, slots: Slots) -> None:
    at = event.trigger_s_m + event.distance_m
    blocked_lane(placement, event, geometry, at - 2.5, 17.0)
    for ahead, lateral in ((0.0, 0.0), (6.5, -0.3), (12.0, 0.2)):
        park_on_route(placement, event, geometry, slots, at + ahead, lateral)


def _stage_construction(placement: Placement, event: ConstructionObstacle, geometry: RouteGeometry,
                        slots: Slots) -> None:
    at = event.trigger_s_m + event.distance_m
    blocked_lane(placement, event, geometry, at - 6.0, 9.0)
    sign_xy, heading = geometry.pose(at)
    placement.place_static(slots.take("static", event), (float(sign_xy[0]), float(sign_xy[1])), heading,
                       length_m=0.4, width_m=2.0)
    for back, lateral in ((6.0, -1.5), (4.5, -0.9), (3.0, -0.3), (1.5, 0.3), (-3.0, 0.0)):
        xy, along = geometry.pose(at - back)
        cone = xy + lateral * side_normal(along, "left")
        placement.place_static(slots.take("static", event), (float(cone[0]), float(cone[1])), along,
                           length_m=0.4, width_m=0.4)


#: The stager of each event type this module stages.
STAGERS: dict[str, Stager] = {
    "ParkedObstacle": _stage_parked_obstacle,
    "Accident": _stage_accident,
    "ConstructionObstacle": _stage_construction,
}
