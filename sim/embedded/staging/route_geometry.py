"""Where a scenario event's actors go: poses and lanes along the route, the slots the actors take, and the
distances every stager shares."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.embedded.placement import Placement
from sim.geometry import FloatArray, cumulative_length, interpolate_along, wrap_angle
from sim.scene import codes
from sim.scene.kernels.geometry import locate
from sim.scene.route_path import RoutePath

#: A pedestrian who crosses starts this far beyond the edge of the ego's lane.
CURB_M = 2.0
#: An actor timed to meet the ego at a junction sets off no earlier than this far before the meeting point (the
#: trigger may lie further back), so that the ego's speed at the trigger still predicts its arrival.
REVEAL_M = 35.0
#: A car parked at the curb keeps this far from junctions.
BLOCKER_CLEARANCE_M = 15.0
#: How far past the junction's exit a pedestrian crosses the lane the ego turns into.
EXIT_CROSSING_M = 5.0
#: How long a junction event holds the junction's lights.
LIGHT_HOLD_S = 30.0
#: An event's moving actors leave once the ego is this far past the event's place (the Leaderboard's scenarios
#: destroy their actors when they end), instead of driving on in the ego's way for the rest of the route.
AFTER_M = 40.0


#: Stages one event: places and arms its actors (raises ``ValueError`` naming the event when it does not fit).
Stager = Callable[..., None]


@dataclass
class Slots:
    """Hands out the actor slots of each kind above those the background takes, from the bottom up: an event's
    actors get the same slots whatever the world's slot counts (the kernels' random draws are keyed by slot)."""

    sizes: dict[str, int]  # slots per kind (PlacementConfig.max_<kind>s)
    background: dict[str, int]  # how many of them the background traffic takes
    used: dict[str, int] = field(default_factory=dict)

    def take(self, kind: str, event: Any) -> int:
        slot = self.background.get(kind, 0) + self.used.get(kind, 0)
        if slot >= self.sizes[kind]:
            raise ValueError(f"{event_name(event)}: no {kind} slot left "
                             f"(PlacementConfig.max_{kind}s={self.sizes[kind]}, "
                             f"{self.background.get(kind, 0)} taken by the background)")
        self.used[kind] = self.used.get(kind, 0) + 1
        return slot


def event_name(event: Any) -> str:
    return f"event {event.type}" + (f" {event.name!r}" if event.name else "") + f" at {event.trigger_s_m:.1f} m"


class RouteGeometry:
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
        return min(feeders, key=lambda f: abs(turn_of(self.lanes[f].centerline))) if feeders else -1

    def crossing_flow(self, entry: int, wanted_rad: float, max_turn_rad: float = math.inf) -> tuple[int, int] | None:
        """Among the junction lanes conflicting with route piece ``entry`` (a junction lane), the straightest one
        (turning at most ``max_turn_rad``) whose approach comes from ``wanted_rad`` relative to the route's approach
        heading (0: the same way, pi: from ahead, -pi/2: from the left): ``(its lane, its approach)``."""
        lanes, route = self.lanes, self.route
        approach_heading = end_heading(lanes[route.pieces[entry - 1].lane].centerline)
        best: tuple[float, int, int] | None = None
        for lane in (int(k) for k in np.flatnonzero(self.arrays.conflict[route.pieces[entry].lane])):
            sources = [p for p in self.predecessors[lane] if not lanes[p].is_junction]
            if not sources or not lanes[lane].successors:
                continue
            relative = float(wrap_angle(end_heading(lanes[sources[0]].centerline) - approach_heading))
            straightness = abs(turn_of(lanes[lane].centerline))
            if abs(float(wrap_angle(relative - wanted_rad))) > 0.25 * math.pi or straightness > max_turn_rad:
                continue
            if best is None or straightness < best[0]:
                best = (straightness, lane, sources[0])
        return None if best is None else (best[1], best[2])

    def lane_beside(self, s_m: float, side: str) -> tuple[int, float, bool] | None:
        """The lane one lane width to the ``side`` of the route at ``s_m``: its id, the arc length there and whether
        it runs the route's way (``None``: no lane there)."""
        xy, heading = self.pose(s_m)
        probe = xy + self.lane_width(s_m) * side_normal(heading, side)
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


def side_normal(heading: float, side: str) -> FloatArray:
    """Unit vector pointing to the ``side`` of a heading."""
    right = np.array([math.sin(heading), -math.cos(heading)])
    return right if side == "right" else -right


def end_heading(line: FloatArray) -> float:
    d = line[-1] - line[-2]
    return math.atan2(d[1], d[0])


def turn_of(line: FloatArray) -> float:
    """Heading change along a polyline from its first segment to its last (positive: left)."""
    a, b = line[1] - line[0], line[-1] - line[-2]
    return math.atan2(a[0] * b[1] - a[1] * b[0], float(a @ b))


def closest(a: FloatArray, b: FloatArray) -> tuple[float, float]:
    """Arc lengths on polylines ``a`` and ``b`` where they come closest (their crossing)."""
    sa, sb = cumulative_length(a), cumulative_length(b)
    fine_a = np.linspace(0.0, sa[-1], max(int(sa[-1] / 0.25), 2))
    fine_b = np.linspace(0.0, sb[-1], max(int(sb[-1] / 0.25), 2))
    pa = np.stack([np.interp(fine_a, sa, a[:, 0]), np.interp(fine_a, sa, a[:, 1])], axis=-1)
    pb = np.stack([np.interp(fine_b, sb, b[:, 0]), np.interp(fine_b, sb, b[:, 1])], axis=-1)
    d = np.linalg.norm(pa[:, None] - pb[None], axis=-1)
    i, j = np.unravel_index(int(np.argmin(d)), d.shape)
    return float(fine_a[i]), float(fine_b[j])


def behind_on_route(geometry: RouteGeometry, s_m: float) -> tuple[tuple[int, ...], float]:
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

def park_on_route(placement: Placement, event: Any, geometry: RouteGeometry, slots: Slots, s_m: float,
                   lateral_m: float) -> int:
    """Park a vehicle on the route's lane at ``s_m``, ``lateral_m`` to the left of the centre; returns its slot."""
    piece = geometry.piece_at(s_m)
    lanes = tuple(p.lane for p in geometry.route.pieces[piece:piece + 3])
    slot = slots.take("vehicle", event)
    placement.place_vehicle(slot, lanes, s_m=geometry.lane_s(piece, s_m), speed_mps=0.0, desired_speed_mps=0.0,
                        lateral_offset_m=lateral_m)
    return slot
