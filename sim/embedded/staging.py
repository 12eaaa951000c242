"""Staging scenario events (:mod:`sim.scenarios.events`) in the embedded world.

At reset, each event of a scenario becomes scripted actors in slots the background traffic leaves free (those of
each kind right after the background's), armed to go off when the ego's route progress reaches the event's trigger
(:meth:`Placement.arm_vehicle`, :meth:`Placement.arm_pedestrian`). Where an actor must meet the ego, the kernels time it
from the ego's speed at the trigger, so the situation happens to whoever drives the route: a driver who keeps
going meets the pedestrian or the crossing vehicle in its lane.

An event that cannot be staged on its route (no junction ahead, no crossing approach on the asked side, not
enough slots) raises ``ValueError`` naming the event and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.embedded.placement import Placement
from sim.embedded.traffic import LightState
from sim.geometry import FloatArray, cumulative_length, interpolate_along, wrap_angle
from sim.scenarios import Scenario
from sim.scenarios.events import (
    Accident,
    ConstructionObstacle,
    CurbsideDropoff,
    CurbsidePickup,
    DynamicObjectCrossing,
    HardBreakRoute,
    InvadingTurn,
    LogReplay,
    NonSignalizedJunctionLeftTurn,
    OppositeVehicleRunningRedLight,
    OppositeVehicleTakingPriority,
    ParkedObstacle,
    ParkingCutIn,
    ParkingExit,
    PedestrianCrossing,
    SignalizedJunctionLeftTurn,
    SignalizedJunctionRightTurn,
    StaticCutIn,
    VehicleTurningRoutePedestrian,
    YieldToEmergencyVehicle,
)
from sim.scene import codes
from sim.scene.kernels import planner
from sim.scene.kernels.geometry import locate
from sim.scene.route_path import RoutePath

#: A pedestrian who crosses starts this far beyond the edge of the ego's lane.
_CURB_M = 2.0
#: An actor timed to meet the ego at a junction sets off no earlier than this far before the meeting point (the
#: trigger may lie further back), so that the ego's speed at the trigger still predicts its arrival.
_REVEAL_M = 35.0
#: A mid-block crossing (and the car parked before it) keeps this far from junctions.
_JUNCTION_CLEARANCE_M = 8.0
#: A car parked at the curb keeps this far from junctions.
_BLOCKER_CLEARANCE_M = 15.0
#: How far past the junction's exit a pedestrian crosses the lane the ego turns into.
_EXIT_CROSSING_M = 5.0
#: How long a junction event holds the junction's lights.
_LIGHT_HOLD_S = 30.0
#: An event's moving actors leave once the ego is this far past the event's place (the Leaderboard's scenarios
#: destroy their actors when they end), instead of driving on in the ego's way for the rest of the route.
_AFTER_M = 40.0


@dataclass
class _Slots:
    """Hands out the actor slots of each kind above those the background takes, from the bottom up: an event's
    actors get the same slots whatever the world's slot counts (the kernels' random draws are keyed by slot)."""

    sizes: dict[str, int]  # slots per kind (PlacementConfig.max_<kind>s)
    background: dict[str, int]  # how many of them the background traffic takes
    used: dict[str, int] = field(default_factory=dict)

    def take(self, kind: str, event: Any) -> int:
        slot = self.background.get(kind, 0) + self.used.get(kind, 0)
        if slot >= self.sizes[kind]:
            raise ValueError(f"{_name(event)}: no {kind} slot left (PlacementConfig.max_{kind}s={self.sizes[kind]}, "
                             f"{self.background.get(kind, 0)} taken by the background)")
        self.used[kind] = self.used.get(kind, 0) + 1
        return slot


def stage_events(placement: Placement, scenario: Scenario, route: RoutePath) -> None:
    """Place and arm the actors of every event of ``scenario`` (after the background traffic)."""
    if not scenario.events:
        return
    cfg = placement.config
    slots = _Slots({"vehicle": cfg.max_vehicles, "pedestrian": cfg.max_pedestrians, "static": cfg.max_statics},
                   {"vehicle": scenario.traffic_vehicles, "pedestrian": scenario.pedestrians})
    geometry = _RouteGeometry(placement, route, scenario.start_s_m)
    for event in scenario.events:
        _STAGERS[event.type](placement, event, geometry, slots)


def _name(event: Any) -> str:
    return f"event {event.type}" + (f" {event.name!r}" if event.name else "") + f" at {event.trigger_s_m:.1f} m"


class _RouteGeometry:
    """Poses along a route and the lanes under it."""

    def __init__(self, placement: Placement, route: RoutePath, start_s_m: float) -> None:
        self.start_s_m = start_s_m
        self.route = route
        self.s = cumulative_length(route.points)
        self.lanes = placement.map.lanes
        self.predecessors = placement.map.predecessors
        self.arrays = placement.arrays
        self.zones = placement.map.curbside_stops
        # lanes, arc lengths, lateral offsets, headings, distances of a located point (locate's buffers)
        self._located = [np.zeros(codes.MAX_LOCATED, dtype=np.int64)] + [np.zeros(codes.MAX_LOCATED)
                                                                            for _ in range(4)]

    def _locate(self, xy: FloatArray) -> int:
        """How many lanes the point lies on (their details in ``self._located``)."""
        return int(locate(self.arrays, float(xy[0]), float(xy[1]), 0.0, *self._located))

    def pose(self, s_m: float) -> tuple[FloatArray, float]:
        xy, heading = interpolate_along(self.route.points[None], self.s[None], np.array([[s_m]]))
        return xy[0, 0], float(heading[0, 0])

    def piece_at(self, s_m: float) -> int:
        offsets = self.route.offsets
        return max(int(np.searchsorted(offsets, s_m, side="right")) - 1, 0)

    def lane_s(self, piece: int, s_m: float) -> float:
        p = self.route.pieces[piece]
        return float(min(max(p.start_s_m + s_m - self.route.offsets[piece], p.start_s_m), p.end_s_m))

    def lane_width(self, s_m: float) -> float:
        return float(self.lanes[self.route.pieces[self.piece_at(s_m)].lane].width_m)

    def clear_of_junctions(self, first_s_m: float, last_s_m: float) -> bool:
        """Whether the route between the two arc lengths runs outside every junction."""
        pieces, offsets = self.route.pieces, self.route.offsets
        ends = list(offsets[1:]) + [float(self.s[-1])]
        return not any(self.lanes[p.lane].is_junction and start < last_s_m and end > first_s_m
                       for p, start, end in zip(pieces, offsets, ends, strict=True))

    def junction_entry(self, from_s_m: float) -> int:
        """Index of the first route piece inside a junction entered at or after ``from_s_m`` (-1: none)."""
        pieces, offsets = self.route.pieces, self.route.offsets
        for r in range(1, len(pieces)):
            if offsets[r] >= from_s_m and self.lanes[pieces[r].lane].is_junction \
                    and not self.lanes[pieces[r - 1].lane].is_junction:
                return r
        return -1

    def on_road(self, xy: FloatArray) -> bool:
        """Whether a point lies on a lane."""
        return self._locate(xy) > 0

    def straightest_feeder(self, lane: int) -> int:
        """The lane leading into ``lane`` that turns least (-1: none)."""
        feeders = self.predecessors[lane]
        return min(feeders, key=lambda f: abs(_turn_of(self.lanes[f].centerline))) if feeders else -1

    def crossing_flow(self, entry: int, wanted_rad: float, max_turn_rad: float = math.inf) -> tuple[int, int] | None:
        """Among the junction lanes conflicting with route piece ``entry`` (a junction lane), the straightest one
        (turning at most ``max_turn_rad``) whose approach comes from ``wanted_rad`` relative to the route's approach
        heading (0: the same way, pi: from ahead, -pi/2: from the left): ``(its lane, its approach)``."""
        lanes, route = self.lanes, self.route
        approach_heading = _end_heading(lanes[route.pieces[entry - 1].lane].centerline)
        best: tuple[float, int, int] | None = None
        for lane in (int(k) for k in np.flatnonzero(self.arrays.conflict[route.pieces[entry].lane])):
            sources = [p for p in self.predecessors[lane] if not lanes[p].is_junction]
            if not sources or not lanes[lane].successors:
                continue
            relative = float(wrap_angle(_end_heading(lanes[sources[0]].centerline) - approach_heading))
            straightness = abs(_turn_of(lanes[lane].centerline))
            if abs(float(wrap_angle(relative - wanted_rad))) > 0.25 * math.pi or straightness > max_turn_rad:
                continue
            if best is None or straightness < best[0]:
                best = (straightness, lane, sources[0])
        return None if best is None else (best[1], best[2])

    def lane_beside(self, s_m: float, side: str) -> tuple[int, float, bool] | None:
        """The lane one lane width to the ``side`` of the route at ``s_m``: its id, the arc length there and whether
        it runs the route's way (``None``: no lane there)."""
        xy, heading = self.pose(s_m)
        probe = xy + self.lane_width(s_m) * _side_normal(heading, side)
        count = self._locate(probe)
        if count == 0:
            return None
        lane, s, _, lane_heading, distance = self._located
        k = int(np.argmin(distance[:count]))
        return int(lane[k]), float(s[k]), math.cos(float(lane_heading[k]) - heading) > 0.9

    def road_extent(self, xy: FloatArray, direction: FloatArray, limit_m: float = 30.0) -> float:
        """How far from ``xy`` along the unit vector ``direction`` the road (any lane) goes on."""
        last = 0.0
        for d in np.arange(0.0, limit_m, 0.5):
            if self.on_road(xy + d * direction):
                last = float(d)
            elif d - last > 1.5:
                break
        return last


def _side_normal(heading: float, side: str) -> FloatArray:
    """Unit vector pointing to the ``side`` of a heading."""
    right = np.array([math.sin(heading), -math.cos(heading)])
    return right if side == "right" else -right


def _crossing(placement: Placement, event: Any, geometry: _RouteGeometry, slots: _Slots, *, meet_s_m: float,
              side: str, speed_mps: float, start_m: float, trigger_s_m: float | None = None,
              mid_block: bool = True) -> int:
    """A pedestrian ``start_m`` to the ``side`` of the route at ``meet_s_m`` who crosses the whole road, timed to be
    on the route there when the ego is; returns its slot."""
    route = geometry.route
    if not route.offsets[0] <= meet_s_m <= geometry.s[-1]:
        raise ValueError(f"{_name(event)}: the crossing point {meet_s_m:.1f} m is off the route "
                         f"(0..{geometry.s[-1]:.1f} m)")
    clearance = _JUNCTION_CLEARANCE_M
    if mid_block and not geometry.clear_of_junctions(meet_s_m - clearance, meet_s_m + clearance):
        raise ValueError(f"{_name(event)}: the crossing point {meet_s_m:.1f} m lies within "
                         f"{_JUNCTION_CLEARANCE_M:.0f} m of a junction")
    xy, heading = geometry.pose(meet_s_m)
    toward = _side_normal(heading, side)
    start = xy + start_m * toward
    far = geometry.road_extent(xy, -toward) + _CURB_M
    slot = slots.take("pedestrian", event)
    placement.place_pedestrian(slot, np.stack([start, xy - far * toward]), speed_mps=speed_mps,
                           start_time_s=np.inf)
    trigger = event.trigger_s_m if trigger_s_m is None else trigger_s_m
    placement.arm_pedestrian(slot, trigger_s_m=trigger, meet_route_s_m=meet_s_m, meet_walk_m=start_m)
    return slot


def _stage_pedestrian_crossing(placement: Placement, event: PedestrianCrossing, geometry: _RouteGeometry,
                               slots: _Slots) -> None:
    meet = event.trigger_s_m + event.distance_m
    _crossing(placement, event, geometry, slots, meet_s_m=meet, side=event.direction, speed_mps=event.speed_mps,
              start_m=0.5 * geometry.lane_width(meet) + _CURB_M)


def _stage_dynamic_object_crossing(placement: Placement, event: DynamicObjectCrossing,
                                   geometry: _RouteGeometry, slots: _Slots) -> None:
    meet = event.trigger_s_m + event.distance_m
    width = geometry.lane_width(meet)
    blocker_offset = 0.5 * width + 1.3  # a parked car just off the lane, hiding the pedestrian
    if not geometry.clear_of_junctions(meet - 4.0 - _BLOCKER_CLEARANCE_M, meet + 4.0 + _BLOCKER_CLEARANCE_M):
        raise ValueError(f"{_name(event)}: the car parked before the crossing at {meet:.1f} m would stand within "
                         f"{_BLOCKER_CLEARANCE_M:.0f} m of a junction (where turning traffic cuts the corner)")
    _crossing(placement, event, geometry, slots, meet_s_m=meet, side=event.direction, speed_mps=event.speed_mps,
              start_m=blocker_offset)
    blocker_s = meet - 4.0
    piece = geometry.piece_at(blocker_s)
    lanes = tuple(p.lane for p in geometry.route.pieces[piece:piece + 3])
    slot = slots.take("vehicle", event)
    placement.place_vehicle(slot, lanes, s_m=geometry.lane_s(piece, blocker_s), speed_mps=0.0,
                        desired_speed_mps=0.0,
                        lateral_offset_m=blocker_offset if event.direction == "left" else -blocker_offset)


def _stage_turning_route_pedestrian(placement: Placement, event: VehicleTurningRoutePedestrian,
                                    geometry: _RouteGeometry, slots: _Slots) -> None:
    entry = geometry.junction_entry(event.trigger_s_m)
    if entry < 0 or entry + 1 >= len(geometry.route.pieces):
        raise ValueError(f"{_name(event)}: the route passes no junction after the trigger")
    meet = geometry.route.offsets[entry + 1] + _EXIT_CROSSING_M
    turn = _turn_of(geometry.lanes[geometry.route.pieces[entry].lane].centerline)
    side = "left" if turn > 0 else "right"  # the pedestrian comes from the side the ego turns to
    _crossing(placement, event, geometry, slots, meet_s_m=meet, side=side, speed_mps=event.speed_mps,
              start_m=0.5 * geometry.lane_width(meet) + _CURB_M, trigger_s_m=max(event.trigger_s_m, meet - _REVEAL_M),
              mid_block=False)


def _stage_hard_break(placement: Placement, event: HardBreakRoute, geometry: _RouteGeometry,
                      slots: _Slots) -> None:
    at = geometry.start_s_m + event.distance_m
    if at >= geometry.s[-1] - 5.0:
        raise ValueError(f"{_name(event)}: the lead vehicle's place {at:.1f} m is past the route's end")
    piece = geometry.piece_at(at)
    lanes = tuple(p.lane for p in geometry.route.pieces[piece:piece + 3])
    speed = 0.8 * geometry.lanes[lanes[0]].speed_limit_mps
    slot = slots.take("vehicle", event)
    placement.place_vehicle(slot, lanes, s_m=geometry.lane_s(piece, at), speed_mps=speed, desired_speed_mps=speed)
    placement.arm_vehicle(slot, trigger_s_m=event.trigger_s_m, follow_route=True,
                      brake_decel_mps2=event.decel_mps2, hold_s=event.hold_s,
                      leave_at_s_m=event.trigger_s_m + event.distance_m + _AFTER_M)


def _stage_opposite_vehicle(placement: Placement,
                            event: OppositeVehicleRunningRedLight | OppositeVehicleTakingPriority,
                            geometry: _RouteGeometry, slots: _Slots) -> None:
    signalized = isinstance(event, OppositeVehicleRunningRedLight)
    lanes, route = geometry.lanes, geometry.route
    entry = geometry.junction_entry(event.trigger_s_m)
    while entry >= 0 and signalized and lanes[route.pieces[entry - 1].lane].light_group is None:
        entry = geometry.junction_entry(route.offsets[entry] + 1e-3)
    if entry < 0:
        raise ValueError(f"{_name(event)}: the route passes no {'signalized ' if signalized else ''}junction "
                         "after the trigger")
    ours = route.pieces[entry].lane
    found = geometry.crossing_flow(entry, -0.5 * math.pi if event.direction == "left" else 0.5 * math.pi)
    if found is None:
        raise ValueError(f"{_name(event)}: no approach from the {event.direction} crosses the route at its "
                         "junction")
    crossing, source = found
    ours_s, theirs_s = _closest(lanes[ours].centerline, lanes[crossing].centerline)
    meet_route = route.offsets[entry] + ours_s - route.pieces[entry].start_s_m
    slot = slots.take("vehicle", event)
    placement.place_vehicle(slot, (source, crossing, lanes[crossing].successors[0]), s_m=0.0,
                        speed_mps=event.speed_mps, desired_speed_mps=event.speed_mps)
    placement.arm_vehicle(slot, trigger_s_m=max(event.trigger_s_m, meet_route - _REVEAL_M), hidden=True,
                      ignore_lights=True, ignore_priority=True, meet_s_m=lanes[source].length_m + theirs_s,
                      meet_route_s_m=meet_route, leave_at_s_m=meet_route + _AFTER_M)


def _end_heading(line: FloatArray) -> float:
    d = line[-1] - line[-2]
    return math.atan2(d[1], d[0])


def _turn_of(line: FloatArray) -> float:
    """Heading change along a polyline from its first segment to its last (positive: left)."""
    a, b = line[1] - line[0], line[-1] - line[-2]
    return math.atan2(a[0] * b[1] - a[1] * b[0], float(a @ b))


def _closest(a: FloatArray, b: FloatArray) -> tuple[float, float]:
    """Arc lengths on polylines ``a`` and ``b`` where they come closest (their crossing)."""
    sa, sb = cumulative_length(a), cumulative_length(b)
    fine_a = np.linspace(0.0, sa[-1], max(int(sa[-1] / 0.25), 2))
    fine_b = np.linspace(0.0, sb[-1], max(int(sb[-1] / 0.25), 2))
    pa = np.stack([np.interp(fine_a, sa, a[:, 0]), np.interp(fine_a, sa, a[:, 1])], axis=-1)
    pb = np.stack([np.interp(fine_b, sb, b[:, 0]), np.interp(fine_b, sb, b[:, 1])], axis=-1)
    d = np.linalg.norm(pa[:, None] - pb[None], axis=-1)
    i, j = np.unravel_index(int(np.argmin(d)), d.shape)
    return float(fine_a[i]), float(fine_b[j])


def _blocked_lane(placement: Placement, event: Any, geometry: _RouteGeometry, start_s_m: float,
                  length_m: float) -> None:
    """Check that a lane blocked from ``start_s_m`` over ``length_m`` can be passed on the left, and allow the
    ego on the oncoming lane around it."""
    run_up = 15.0
    if not geometry.route.offsets[0] <= start_s_m - run_up or start_s_m + length_m + 10.0 > geometry.s[-1]:
        raise ValueError(f"{_name(event)}: the blocked stretch {start_s_m:.1f}..{start_s_m + length_m:.1f} m "
                         f"does not fit on the route (0..{geometry.s[-1]:.1f} m, with a {run_up:.0f} m run-up)")
    if not geometry.clear_of_junctions(start_s_m - run_up, start_s_m + length_m + 10.0):
        raise ValueError(f"{_name(event)}: the blocked stretch {start_s_m:.1f}..{start_s_m + length_m:.1f} m "
                         "is too near a junction")
    headings = [geometry.pose(s)[1] for s in np.linspace(start_s_m - run_up, start_s_m + length_m + 10.0, 8)]
    if np.max(np.abs(wrap_angle(np.diff(headings)))) > 0.1 or abs(float(wrap_angle(headings[-1] - headings[0]))) > 0.3:
        raise ValueError(f"{_name(event)}: the road bends at the blocked stretch {start_s_m:.1f}.."
                         f"{start_s_m + length_m:.1f} m")
    for s in (start_s_m, start_s_m + length_m):
        xy, heading = geometry.pose(s)
        if not geometry.on_road(xy + geometry.lane_width(s) * _side_normal(heading, "left")):
            raise ValueError(f"{_name(event)}: no lane to the left to pass on at {s:.1f} m")
    # (from where the ego may begin to move over, as it looks ahead for obstacles, until it is back)
    placement.allow_oncoming_lane(start_s_m - planner.NUDGE_LOOKAHEAD_M - 10.0, start_s_m + length_m + 30.0)


def _park_on_route(placement: Placement, event: Any, geometry: _RouteGeometry, slots: _Slots, s_m: float,
                   lateral_m: float) -> int:
    """Park a vehicle on the route's lane at ``s_m``, ``lateral_m`` to the left of the centre; returns its slot."""
    piece = geometry.piece_at(s_m)
    lanes = tuple(p.lane for p in geometry.route.pieces[piece:piece + 3])
    slot = slots.take("vehicle", event)
    placement.place_vehicle(slot, lanes, s_m=geometry.lane_s(piece, s_m), speed_mps=0.0, desired_speed_mps=0.0,
                        lateral_offset_m=lateral_m)
    return slot


def _stage_parked_obstacle(placement: Placement, event: ParkedObstacle, geometry: _RouteGeometry,
                           slots: _Slots) -> None:
    at = event.trigger_s_m + event.distance_m
    _blocked_lane(placement, event, geometry, at - 2.5, 5.0)
    _park_on_route(placement, event, geometry, slots, at, -0.5)


def _stage_cut_in(placement: Placement, event: ParkingCutIn, geometry: _RouteGeometry, slots: _Slots) -> None:
    at = event.trigger_s_m + event.distance_m
    if not geometry.route.offsets[0] <= event.trigger_s_m or at + 20.0 > geometry.s[-1]:
        raise ValueError(f"{_name(event)}: the parking place {at:.1f} m does not fit on the route "
                         f"(0..{geometry.s[-1]:.1f} m)")
    if not geometry.clear_of_junctions(event.trigger_s_m, at + 20.0):
        raise ValueError(f"{_name(event)}: the parking place {at:.1f} m is too near a junction")
    offset = 0.5 * geometry.lane_width(at) + 1.1
    slot = _park_on_route(placement, event, geometry, slots, at, offset if event.direction == "left" else -offset)
    placement.arm_vehicle(slot, trigger_s_m=event.trigger_s_m, follow_route=True, cut_in_speed_mps=event.speed_mps,
                      leave_at_s_m=at + _AFTER_M)


def _stage_accident(placement: Placement, event: Accident, geometry: _RouteGeometry, slots: _Slots) -> None:
    at = event.trigger_s_m + event.distance_m
    _blocked_lane(placement, event, geometry, at - 2.5, 17.0)
    for ahead, lateral in ((0.0, 0.0), (6.5, -0.3), (12.0, 0.2)):
        _park_on_route(placement, event, geometry, slots, at + ahead, lateral)


def _stage_construction(placement: Placement, event: ConstructionObstacle, geometry: _RouteGeometry,
                        slots: _Slots) -> None:
    at = event.trigger_s_m + event.distance_m
    _blocked_lane(placement, event, geometry, at - 6.0, 9.0)
    sign_xy, heading = geometry.pose(at)
    placement.place_static(slots.take("static", event), (float(sign_xy[0]), float(sign_xy[1])), heading,
                       length_m=0.4, width_m=2.0)
    for back, lateral in ((6.0, -1.5), (4.5, -0.9), (3.0, -0.3), (1.5, 0.3), (-3.0, 0.0)):
        xy, along = geometry.pose(at - back)
        cone = xy + lateral * _side_normal(along, "left")
        placement.place_static(slots.take("static", event), (float(cone[0]), float(cone[1])), along,
                           length_m=0.4, width_m=0.4)


def _stage_static_cut_in(placement: Placement, event: StaticCutIn, geometry: _RouteGeometry,
                         slots: _Slots) -> None:
    at = event.trigger_s_m + event.distance_m
    if not geometry.route.offsets[0] <= event.trigger_s_m - 10.0 or at + 20.0 > geometry.s[-1]:
        raise ValueError(f"{_name(event)}: the cut-in place {at:.1f} m does not fit on the route "
                         f"(0..{geometry.s[-1]:.1f} m)")
    if not geometry.clear_of_junctions(at - 12.0, at + 20.0):
        raise ValueError(f"{_name(event)}: the cut-in place {at:.1f} m is too near a junction")
    for s in (at - 8.0, at, at + 10.0):
        beside = geometry.lane_beside(s, event.direction)
        if beside is None or not beside[2]:
            raise ValueError(f"{_name(event)}: no lane to the {event.direction} running the route's way at "
                             f"{s:.1f} m")
    width = geometry.lane_width(at)
    offset = width if event.direction == "left" else -width
    _park_on_route(placement, event, geometry, slots, at - 7.5, offset)  # the one queued behind it
    slot = _park_on_route(placement, event, geometry, slots, at, offset)
    placement.arm_vehicle(slot, trigger_s_m=event.trigger_s_m, follow_route=True, cut_in_speed_mps=event.speed_mps,
                      leave_at_s_m=at + _AFTER_M)


def _stage_junction_flow(placement: Placement,
                         event: SignalizedJunctionLeftTurn | SignalizedJunctionRightTurn
                         | NonSignalizedJunctionLeftTurn,
                         geometry: _RouteGeometry, slots: _Slots) -> None:
    signalized = not isinstance(event, NonSignalizedJunctionLeftTurn)
    left = not isinstance(event, SignalizedJunctionRightTurn)
    lanes, arrays, route = geometry.lanes, geometry.arrays, geometry.route
    entry = geometry.junction_entry(event.trigger_s_m)
    while entry >= 0:
        approach, ours = lanes[route.pieces[entry - 1].lane], lanes[route.pieces[entry].lane]
        turn = _turn_of(ours.centerline)
        controlled = approach.light_group is not None if signalized else approach.stop_sign
        if controlled and (turn > 0.6 if left else turn < -0.6):
            break
        entry = geometry.junction_entry(route.offsets[entry] + 1e-3)
    what = f"{'signalized' if signalized else 'all-way-stop'} junction where it turns {'left' if left else 'right'}"
    if entry < 0:
        raise ValueError(f"{_name(event)}: the route passes no {what} after the trigger")
    approach_lane, ours_lane = route.pieces[entry - 1].lane, route.pieces[entry].lane
    # the flow comes towards the ego (left turn) / from its left (right turn), straight through
    found = geometry.crossing_flow(entry, math.pi if left else -0.5 * math.pi, max_turn_rad=0.3)
    if found is None:
        raise ValueError(f"{_name(event)}: no straight flow {'from ahead' if left else 'from the left'} "
                         f"meets the route at its {what}")
    crossing, source = found
    upstream = geometry.straightest_feeder(source)
    ours_s, theirs_s = _closest(lanes[ours_lane].centerline, lanes[crossing].centerline)
    meet_route = route.offsets[entry] + ours_s - route.pieces[entry].start_s_m
    trigger = max(event.trigger_s_m, meet_route - _REVEAL_M)
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
                          leave_at_s_m=meet_route + _AFTER_M)
        behind += float(rng.uniform(low, high))
    if signalized:
        ego_group, flow_group = lanes[approach_lane].light_group, lanes[source].light_group
        assert ego_group is not None
        if flow_group is None:
            raise ValueError(f"{_name(event)}: the flow's approach at the {what} has no light")
        junction = arrays.light_junction[ego_group]
        states = {int(g): int(LightState.RED) for g in np.flatnonzero(arrays.light_junction == junction)}
        states[ego_group] = states[flow_group] = int(LightState.GREEN)
        placement.hold_lights(states, trigger_s_m=trigger, hold_s=_LIGHT_HOLD_S)


def _stage_emergency(placement: Placement, event: YieldToEmergencyVehicle, geometry: _RouteGeometry,
                     slots: _Slots) -> None:
    back = event.trigger_s_m - event.distance_m
    if back < geometry.route.offsets[0] or event.trigger_s_m + 120.0 > geometry.s[-1]:
        raise ValueError(f"{_name(event)}: the emergency vehicle's start {back:.1f} m and the 120 m after the "
                         f"trigger do not fit on the route (0..{geometry.s[-1]:.1f} m)")
    if not geometry.clear_of_junctions(event.trigger_s_m, event.trigger_s_m + 50.0):
        raise ValueError(f"{_name(event)}: a junction lies within 50 m past the trigger (no room to pull over)")
    piece = geometry.piece_at(back)
    lanes = tuple(p.lane for p in geometry.route.pieces[piece:piece + 3])
    slot = slots.take("vehicle", event)
    placement.place_vehicle(slot, lanes, s_m=geometry.lane_s(piece, back), speed_mps=event.speed_mps,
                        desired_speed_mps=event.speed_mps, length_m=5.5, width_m=2.0)
    placement.arm_vehicle(slot, trigger_s_m=event.trigger_s_m, hidden=True, follow_route=True, emergency=True)


def _stage_invading_turn(placement: Placement, event: InvadingTurn, geometry: _RouteGeometry,
                         slots: _Slots) -> None:
    meet = event.trigger_s_m + event.distance_m
    last = meet + (event.vehicles - 1) * event.interval_m + 10.0
    if not geometry.route.offsets[0] <= event.trigger_s_m or last > geometry.s[-1]:
        raise ValueError(f"{_name(event)}: the stretch {meet:.1f}..{last:.1f} m does not fit on the route "
                         f"(0..{geometry.s[-1]:.1f} m)")
    if not geometry.clear_of_junctions(meet - 25.0, last):  # (room to move right before they come)
        raise ValueError(f"{_name(event)}: the stretch {meet:.1f}..{last:.1f} m is too near a junction")
    beside = geometry.lane_beside(meet, "left")
    if beside is None or beside[2]:
        raise ValueError(f"{_name(event)}: no oncoming lane to the left at {meet:.1f} m")
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
        placement.arm_vehicle(slot, trigger_s_m=max(event.trigger_s_m, meet - _REVEAL_M), hidden=True,
                          keep_offset=True, meet_s_m=max(meet_s - k * event.interval_m, 0.0),
                          meet_route_s_m=meet + k * event.interval_m, leave_at_s_m=meet + k * event.interval_m + 20.0)


def _behind_on_route(geometry: _RouteGeometry, s_m: float) -> tuple[tuple[int, ...], float]:
    """Lanes and arc length along them of the route's place ``s_m`` (which may lie before the route's first lane:
    then on its straightest predecessor)."""
    route, lanes = geometry.route, geometry.lanes
    if s_m >= route.offsets[0]:
        piece = geometry.piece_at(s_m)
        return tuple(p.lane for p in route.pieces[piece:piece + 3]), geometry.lane_s(piece, s_m)
    first = route.pieces[0]
    feeder = geometry.straightest_feeder(first.lane)
    back = first.start_s_m + s_m - route.offsets[0]  # negative: before the first lane's start
    if feeder < 0 or back < -min(lanes[f].length_m for f in geometry.predecessors[first.lane]):
        raise ValueError(f"the route has no lane {-s_m:.1f} m before its start")
    return (feeder, first.lane, *(p.lane for p in route.pieces[1:2])), lanes[feeder].length_m + back


def _stage_parking_exit(placement: Placement, event: ParkingExit, geometry: _RouteGeometry,
                        slots: _Slots) -> None:
    start = geometry.start_s_m  # (the trigger plays no part: the ego starts in the parking place)
    if event.direction != "right":
        raise ValueError(f"{_name(event)}: parking places are at the right curb (right-hand traffic)")
    ahead = start + event.front_vehicle_distance_m
    if not geometry.clear_of_junctions(start - event.behind_vehicle_distance_m - 3.0, ahead + 15.0):
        raise ValueError(f"{_name(event)}: the parking place at {start:.1f} m is too near a junction")
    if ahead + 20.0 > geometry.s[-1]:
        raise ValueError(f"{_name(event)}: the route is too short to leave the parking place")
    width = geometry.lane_width(start)
    parked = -(0.5 * width + 1.3)  # beside the lane, clear of it
    placement.park_ego(parked, leave_by_s_m=start + event.front_vehicle_distance_m)
    for s in (ahead, start - event.behind_vehicle_distance_m):
        try:
            lanes, lane_s = _behind_on_route(geometry, s)
        except ValueError as error:
            raise ValueError(f"{_name(event)}: {error} (for the car parked behind the ego)") from error
        slot = slots.take("vehicle", event)
        placement.place_vehicle(slot, lanes, s_m=lane_s, speed_mps=0.0, desired_speed_mps=0.0,
                            lateral_offset_m=parked)
    # the traffic coming along the lane: the first passes the parking place when a driver pulling straight out
    # would be entering the lane
    for k in range(event.flow_vehicles):
        back = event.flow_speed_mps * 3.0 - 6.0 + k * event.flow_interval_m
        try:
            lanes, lane_s = _behind_on_route(geometry, start - back)
        except ValueError as error:
            raise ValueError(f"{_name(event)}: {error} (for the traffic from behind)") from error
        slot = slots.take("vehicle", event)
        placement.place_vehicle(slot, lanes, s_m=lane_s, speed_mps=event.flow_speed_mps,
                            desired_speed_mps=event.flow_speed_mps)
        placement.arm_vehicle(slot, trigger_s_m=-1.0, follow_route=True, no_curb_yield=True,
                          leave_at_s_m=ahead + _AFTER_M)


def _stage_curbside(placement: Placement, event: CurbsidePickup | CurbsideDropoff, geometry: _RouteGeometry,
                    slots: _Slots) -> None:
    at = event.trigger_s_m + event.distance_m
    if not geometry.route.offsets[0] <= event.trigger_s_m - 25.0 or at + 25.0 > geometry.s[-1]:
        raise ValueError(f"{_name(event)}: the stop at {at:.1f} m does not fit on the route "
                         f"(0..{geometry.s[-1]:.1f} m, with room before and after it)")
    piece = geometry.piece_at(at)
    lane = geometry.route.pieces[piece].lane
    lane_s = geometry.lane_s(piece, at)
    margin = event.tolerance_m + 2.5
    zones = [z for z in geometry.zones if z.lane_id == lane and z.start_s_m + margin <= lane_s <= z.end_s_m - margin]
    if not zones:
        raise ValueError(f"{_name(event)}: the stop at {at:.1f} m is not in a marked curbside zone of its lane")
    width = geometry.lane_width(at)
    room = 0.5 * width - 0.5 * placement.config.ego_width_m  # how far the ego's centre can go right within the lane
    placement.add_curbside_stop(at, tolerance_m=event.tolerance_m, dwell_s=event.dwell_s,
                            lateral_max_m=-(room - event.curb_tolerance_m), offset_m=-min(room - 0.15, 0.8))
    # traffic behind: a vehicle following the ego from the trigger on
    behind = event.trigger_s_m - 18.0
    try:
        lanes, follow_s = _behind_on_route(geometry, behind)
    except ValueError as error:
        raise ValueError(f"{_name(event)}: {error} (for the traffic behind)") from error
    speed = 0.8 * geometry.lanes[lanes[0]].speed_limit_mps
    slot = slots.take("vehicle", event)
    placement.place_vehicle(slot, lanes, s_m=follow_s, speed_mps=speed, desired_speed_mps=speed)
    placement.arm_vehicle(slot, trigger_s_m=event.trigger_s_m, hidden=True, follow_route=True,
                      leave_at_s_m=at + _AFTER_M)


#: A replayed vehicle this far from the nearest lane going its way and slower than this stands where it is.
_REPLAY_OFF_LANE_M = 1.5
_REPLAY_STANDING_MPS = 0.3


_FOREVER_S = 1e9
_TRACK_KINDS = {"vehicle": codes.VEHICLE, "cyclist": codes.VEHICLE, "pedestrian": codes.PEDESTRIAN,
                "static": codes.STATIC, "other": codes.STATIC}


def _stage_log_replay(placement: Placement, event: LogReplay, geometry: _RouteGeometry, slots: _Slots) -> None:
    placement.set_ego_speed(event.ego_speed_mps)
    if not event.reactive:
        _stage_recorded_tracks(placement, event, slots)
        return
    movers = [a for a in event.actors if a.kind in ("vehicle", "cyclist")]
    if movers:
        xy = np.array([[a.x_m, a.y_m] for a in movers])
        where = placement.map.locate(xy, np.array([a.yaw_rad for a in movers]), max_heading_error_rad=0.6)
    for k, actor in enumerate(movers):
        lane, s_m, lateral = int(where.lane[k]), float(where.s_m[k]), float(where.lateral_m[k])
        slot = slots.take("vehicle", event)
        if abs(lateral) > _REPLAY_OFF_LANE_M and actor.speed_mps < _REPLAY_STANDING_MPS:  # parked beside the lane
            placement.place_vehicle(slot, (lane,), s_m=s_m, speed_mps=0.0, desired_speed_mps=0.0,
                                lateral_offset_m=lateral, length_m=actor.length_m, width_m=actor.width_m)
            continue
        # in its lane (standing in a queue or at a light, or moving): it drives on from its recorded speed
        placement.place_vehicle(slot, (lane,), s_m=s_m, speed_mps=actor.speed_mps,
                            desired_speed_mps=max(actor.speed_mps, 0.8 * geometry.lanes[lane].speed_limit_mps),
                            length_m=actor.length_m, width_m=actor.width_m)
    for actor in event.actors:
        xy = np.array([actor.x_m, actor.y_m])
        if actor.kind == "pedestrian":
            heading = np.array([math.cos(actor.yaw_rad), math.sin(actor.yaw_rad)])
            path = np.stack([xy, xy + heading * max(actor.speed_mps * 30.0, 0.01)])
            placement.place_pedestrian(slots.take("pedestrian", event), path, speed_mps=max(actor.speed_mps, 0.01))
        elif actor.kind in ("static", "other"):
            placement.place_static(slots.take("static", event), (actor.x_m, actor.y_m), actor.yaw_rad,
                               length_m=actor.length_m, width_m=actor.width_m)


def _stage_recorded_tracks(placement: Placement, event: LogReplay, slots: _Slots) -> None:
    """A non-reactive replay: every actor with a track follows it (in a static slot, whatever its kind); the
    others stand where they are."""
    for actor in event.actors:
        slot = slots.take("static", event)
        kind = _TRACK_KINDS[actor.kind]
        if actor.track:
            placement.place_track(slot, kind, np.array(actor.track, dtype=np.float64), length_m=actor.length_m,
                              width_m=actor.width_m)
        else:  # stands where it is for good
            placement.place_track(slot, kind, np.array([[0.0, actor.x_m, actor.y_m, actor.yaw_rad, 0.0],
                                                         [_FOREVER_S, actor.x_m, actor.y_m, actor.yaw_rad, 0.0]]),
                              length_m=actor.length_m, width_m=actor.width_m)


_STAGERS: dict[str, Callable[..., None]] = {
    "PedestrianCrossing": _stage_pedestrian_crossing,
    "DynamicObjectCrossing": _stage_dynamic_object_crossing,
    "VehicleTurningRoutePedestrian": _stage_turning_route_pedestrian,
    "HardBreakRoute": _stage_hard_break,
    "OppositeVehicleRunningRedLight": _stage_opposite_vehicle,
    "OppositeVehicleTakingPriority": _stage_opposite_vehicle,
    "ParkingCutIn": _stage_cut_in,
    "ParkedObstacle": _stage_parked_obstacle,
    "Accident": _stage_accident,
    "ConstructionObstacle": _stage_construction,
    "StaticCutIn": _stage_static_cut_in,
    "SignalizedJunctionLeftTurn": _stage_junction_flow,
    "SignalizedJunctionRightTurn": _stage_junction_flow,
    "NonSignalizedJunctionLeftTurn": _stage_junction_flow,
    "YieldToEmergencyVehicle": _stage_emergency,
    "InvadingTurn": _stage_invading_turn,
    "ParkingExit": _stage_parking_exit,
    "CurbsidePickup": _stage_curbside,
    "CurbsideDropoff": _stage_curbside,
    "LogReplay": _stage_log_replay,
}
