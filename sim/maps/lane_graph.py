"""The lane graph: the one map model every map source is turned into.

Frames and units: map frame, metres, right-handed (x east, y north, yaw counter-clockwise from +x); lanes are
directed along their centreline. A lane's control (traffic light or stop sign) applies at its *end*: the stop line
lies across the lane's last centreline point, which is where a controlled approach meets its junction.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from sim.geometry import FloatArray, cumulative_length, wrap_angle

#: Distance over which a lane change in a route moves to the neighbouring lane.
LANE_CHANGE_M = 10.0
#: Extra cost of a lane change when searching for shortest lane paths, in metres of driving.
LANE_CHANGE_COST_M = 10.0
#: Format tag (and version) of :meth:`LaneGraph.to_dict`.
MAP_FORMAT = "autoloop-lane-graph-2"


@dataclass(frozen=True)
class Lane:
    """One directed lane.

    :param lane_id: index of the lane in its graph.
    :param centerline: ``(P, 2)`` centreline polyline in the map frame, metres, in the direction of travel.
    :param width_m: lane width (typical value along the lane).
    :param successors: lanes a vehicle may continue onto from this lane's end.
    :param is_junction: whether the lane lies inside a junction (a connector).
    :param speed_limit_mps: legal speed.
    :param light_group: traffic-light group controlling this lane's end (its stop line), if any.
    :param stop_sign: whether a stop sign controls this lane's end.
    :param left_neighbor: the lane to the left (same or opposite direction), if it is drivable.
    :param right_neighbor: the lane to the right, if it is drivable.
    :param junction_id: the junction the lane belongs to (connectors only).
    :param left_boundary: ``(Q, 2)`` left boundary polyline when the source gives one (else derived).
    :param right_boundary: ``(Q, 2)`` right boundary polyline when the source gives one (else derived).
    :param lane_type: ``vehicle``, ``bus`` or ``bike``.
    :param source_id: the lane's id in its source map (OpenDRIVE ``road/section/lane``, Argoverse lane id).
    """

    lane_id: int
    centerline: FloatArray
    width_m: float
    successors: tuple[int, ...]
    is_junction: bool = False
    speed_limit_mps: float = 10.0
    light_group: int | None = None
    stop_sign: bool = False
    left_neighbor: int | None = None
    right_neighbor: int | None = None
    junction_id: int | None = None
    left_boundary: FloatArray | None = None
    right_boundary: FloatArray | None = None
    lane_type: str = "vehicle"
    source_id: str = ""

    @property
    def length_m(self) -> float:
        return float(cumulative_length(self.centerline)[-1])

    def boundaries(self) -> tuple[FloatArray, FloatArray]:
        """Left and right boundary polylines (the source's, or the centreline offset by half the width)."""
        if self.left_boundary is not None and self.right_boundary is not None:
            return self.left_boundary, self.right_boundary
        direction = np.diff(self.centerline, axis=0)
        direction = np.concatenate([direction, direction[-1:]])
        normal = np.stack([-direction[:, 1], direction[:, 0]], axis=-1)
        normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-9)
        offset = 0.5 * self.width_m * normal
        return self.centerline + offset, self.centerline - offset


@dataclass(frozen=True)
class Walkway:
    """A directed stretch of pedestrian path: along a sidewalk, around a corner, or across a road.

    :param centerline: ``(P, 2)`` polyline in the map frame, in the direction of walking.
    :param successors: walkways a pedestrian may continue onto from this one's end.
    :param crossing: whether it crosses a road (a crosswalk); pedestrians on it are in the lanes they cross.
    """

    centerline: FloatArray
    successors: tuple[int, ...]
    crossing: bool = False


@dataclass(frozen=True)
class CurbsideStop:
    """A marked curbside zone where a robotaxi may stop for pick-up or drop-off: ``[start_s_m, end_s_m]`` of a lane
    (the rightmost lane of its road)."""

    lane_id: int
    start_s_m: float
    end_s_m: float


class LanePosition(NamedTuple):
    """Where points lie on the lane graph: lane id, arc length along it and signed lateral offset (left +)."""

    lane: NDArray[np.intp]
    s_m: FloatArray
    lateral_m: FloatArray


class LanePiece(NamedTuple):
    """The stretch ``[start_s_m, end_s_m]`` of one lane that a path drives (equal ends: it only leaves it)."""

    lane: int
    start_s_m: float
    end_s_m: float


@dataclass(frozen=True)
class LanePath:
    """A path over lanes: consecutive pieces, each on a successor or (a lane change) a neighbour of the last."""

    pieces: tuple[LanePiece, ...]

    @property
    def lanes(self) -> tuple[int, ...]:
        return tuple(piece.lane for piece in self.pieces)

    def polyline(self, graph: LaneGraph) -> FloatArray:
        """The path as one map-frame polyline (a lane change is the straight line between the two lanes)."""
        parts = []
        for piece in self.pieces:
            points = graph.lanes[piece.lane].centerline
            s = cumulative_length(points)
            inner = (s > piece.start_s_m) & (s < piece.end_s_m)
            ends = [np.array([np.interp(v, s, points[:, 0]), np.interp(v, s, points[:, 1])])
                    for v in (piece.start_s_m, piece.end_s_m)]
            parts += [ends[0][None], points[inner], ends[1][None]]
        joined = np.concatenate(parts)
        keep = np.concatenate([[True], np.linalg.norm(np.diff(joined, axis=0), axis=1) > 1e-6])
        polyline: FloatArray = joined[keep]
        return polyline


@dataclass(frozen=True)
class LaneGraph:
    """A map: lanes, drivable area and crosswalks.

    :param name: map id, unique among registered maps.
    :param lanes: lanes indexed by ``lane_id``.
    :param bounds_m: ``(x_min, y_min, x_max, y_max)`` of everything drawable.
    :param drivable_polygons: drivable area as simple polygons ``(V, 2)`` whose union is the road surface.
    :param light_groups: number of traffic-light groups.
    :param crosswalks: crosswalk polygons ``(V, 2)``.
    :param walkways: the pedestrian network (sidewalks, corners, crosswalks); maps without one give none, and
        the world walks their crosswalks between kerbs (:func:`sim.maps.walkways.walk_network`).
    :param curbside_stops: pick-up/drop-off zones.
    :param light_junctions: the junction each light group belongs to (empty: derived from the lanes it controls).
        Light groups of one junction turn green one after another (split phasing).
    :param light_sources: the map source's id of each light group (an OpenDRIVE signal id, which a CARLA server's
        ``TrafficLight.get_opendrive_id()`` gives; empty where the source has none).
    """

    name: str
    lanes: tuple[Lane, ...]
    bounds_m: tuple[float, float, float, float]
    drivable_polygons: tuple[FloatArray, ...]
    light_groups: int = 0
    crosswalks: tuple[FloatArray, ...] = ()
    walkways: tuple[Walkway, ...] = ()
    curbside_stops: tuple[CurbsideStop, ...] = ()
    light_junctions: tuple[int, ...] = ()
    light_sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for index, lane in enumerate(self.lanes):
            if lane.lane_id != index:
                raise ValueError(f"map {self.name!r}: lane at index {index} has lane_id {lane.lane_id}")
            for other in (*lane.successors, lane.left_neighbor, lane.right_neighbor):
                if other is not None and not 0 <= other < len(self.lanes):
                    raise ValueError(f"map {self.name!r}: lane {index} refers to unknown lane {other}")
        for index, walkway in enumerate(self.walkways):
            if any(not 0 <= other < len(self.walkways) for other in walkway.successors):
                raise ValueError(f"map {self.name!r}: walkway {index} has an unknown successor")
        if self.light_junctions and len(self.light_junctions) != self.light_groups:
            raise ValueError(f"map {self.name!r}: {len(self.light_junctions)} light_junctions for "
                             f"{self.light_groups} light groups")
        if self.light_sources and len(self.light_sources) != self.light_groups:
            raise ValueError(f"map {self.name!r}: {len(self.light_sources)} light_sources for "
                             f"{self.light_groups} light groups")

    def light_group_junctions(self) -> tuple[int, ...]:
        """The junction of every light group: given, or that of the connectors its lanes lead into (a group
        whose lanes lead into no junction gets a junction of its own)."""
        if self.light_junctions or not self.light_groups:
            return self.light_junctions
        found: dict[int, int] = {}
        for lane in self.lanes:
            if lane.light_group is None or lane.light_group in found:
                continue
            junctions = [j for s in lane.successors if (j := self.lanes[s].junction_id) is not None]
            if junctions:
                found[lane.light_group] = junctions[0]
        top = max((lane.junction_id for lane in self.lanes if lane.junction_id is not None), default=-1)
        result = []
        for group in range(self.light_groups):
            if group not in found:
                top += 1
                found[group] = top
            result.append(found[group])
        return tuple(result)

    @functools.cached_property
    def predecessors(self) -> tuple[tuple[int, ...], ...]:
        """Lanes leading into each lane."""
        preds: list[list[int]] = [[] for _ in self.lanes]
        for lane in self.lanes:
            for succ in lane.successors:
                preds[succ].append(lane.lane_id)
        return tuple(tuple(p) for p in preds)

    def lane_changes(self, lane_id: int) -> tuple[int, ...]:
        """Neighbours of a lane that run in the same direction (where a vehicle may change lanes)."""
        lane = self.lanes[lane_id]
        ahead = lane.centerline[-1] - lane.centerline[0]
        found = []
        for other in (lane.left_neighbor, lane.right_neighbor):
            if other is not None:
                points = self.lanes[other].centerline
                if float(np.dot(points[-1] - points[0], ahead)) > 0.0:
                    found.append(other)
        return tuple(found)

    def path_polyline(self, lane_ids: Sequence[int]) -> FloatArray:
        """Concatenate the centrelines of consecutive lanes (each a successor of the last) into one polyline,
        shared end points once. Paths with lane changes are :class:`LanePath` pieces instead."""
        parts = [self.lanes[lane_ids[0]].centerline]
        for first, second in itertools.pairwise(lane_ids):
            if second not in self.lanes[first].successors:
                raise ValueError(f"map {self.name!r}: lane {second} does not follow lane {first}")
            points = self.lanes[second].centerline
            gap = np.linalg.norm(points[0] - parts[-1][-1])
            parts.append(points[1:] if gap < 1e-6 else points)
        return np.concatenate(parts, axis=0)

    def leg(self, lane_ids: Sequence[int], start_s_m: float, end_s_m: float) -> list[LanePiece]:
        """Pieces of a lane sequence (from :meth:`shortest_path`) driven from ``start_s_m`` on its first lane to
        ``end_s_m`` on its last. A lane change leaves the old lane where the leg enters it and joins the
        neighbour ``LANE_CHANGE_M`` further on."""
        pieces = []
        s_from = start_s_m
        for position, (lane, following) in enumerate(itertools.zip_longest(lane_ids, lane_ids[1:])):
            length = self.lanes[lane].length_m
            if following is None:
                pieces.append(LanePiece(lane, s_from, max(end_s_m, s_from)))
            elif following in self.lanes[lane].successors:
                pieces.append(LanePiece(lane, s_from, length))
                s_from = 0.0
            elif following in self.lane_changes(lane):
                pieces.append(LanePiece(lane, s_from, s_from))
                joined = s_from / max(length, 1e-9) * self.lanes[following].length_m + LANE_CHANGE_M
                last = position + 1 == len(lane_ids) - 1
                s_from = min(joined, end_s_m if last else self.lanes[following].length_m)
            else:
                raise ValueError(f"map {self.name!r}: lane {following} neither follows nor neighbours lane {lane}")
        return pieces

    def route_path(self, lane_ids: Sequence[int]) -> LanePath:
        """The path a scenario's route (its lane ids) stands for: from the start of the first lane to the end of
        the last, changing lanes where it enters a lane (:meth:`leg`). Route arc lengths are measured along it."""
        return LanePath(tuple(self.leg(list(lane_ids), 0.0, self.lanes[lane_ids[-1]].length_m)))

    def stop_lines(self) -> list[tuple[int, FloatArray, float, int]]:
        """Every light-controlled stop line as ``(lane_id, centre_xy, heading_rad, light_group)``."""
        lines = []
        for lane in self.lanes:
            if lane.light_group is None:
                continue
            end, before = lane.centerline[-1], lane.centerline[-2]
            heading = float(np.arctan2(end[1] - before[1], end[0] - before[0]))
            lines.append((lane.lane_id, end.copy(), heading, lane.light_group))
        return lines

    # ------------------------------------------------------------------ storage
    def to_dict(self) -> dict[str, Any]:
        """The map as plain JSON types (polylines as lists of ``[x, y]``); :meth:`from_dict` reads it back."""
        data: dict[str, Any] = {field.name: _plain(getattr(self, field.name)) for field in fields(self)}
        return {"format": MAP_FORMAT, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LaneGraph:
        """The map :meth:`to_dict` gave."""
        if data.get("format") != MAP_FORMAT:
            raise ValueError(f"map {data.get('name')!r}: format {data.get('format')!r}, expected {MAP_FORMAT!r}")
        lanes = tuple(Lane(**{
            **lane, "centerline": _points(lane["centerline"]), "successors": tuple(lane["successors"]),
            "left_boundary": None if lane["left_boundary"] is None else _points(lane["left_boundary"]),
            "right_boundary": None if lane["right_boundary"] is None else _points(lane["right_boundary"]),
        }) for lane in data["lanes"])
        return cls(
            name=data["name"], lanes=lanes, bounds_m=tuple(data["bounds_m"]),
            drivable_polygons=tuple(_points(polygon) for polygon in data["drivable_polygons"]),
            light_groups=data["light_groups"], crosswalks=tuple(_points(polygon) for polygon in data["crosswalks"]),
            walkways=tuple(Walkway(centerline=_points(walkway["centerline"]), successors=tuple(walkway["successors"]),
                                   crossing=walkway["crossing"]) for walkway in data["walkways"]),
            curbside_stops=tuple(CurbsideStop(**stop) for stop in data["curbside_stops"]),
            light_junctions=tuple(data["light_junctions"]), light_sources=tuple(data["light_sources"]),
        )

    # ------------------------------------------------------------------ spatial queries
    @functools.cached_property
    def _segments(self) -> tuple[FloatArray, FloatArray, NDArray[np.intp], FloatArray]:
        """All centreline segments: start points, end points, lane of each, arc length at each start."""
        starts, ends, lane_of, s0 = [], [], [], []
        for lane in self.lanes:
            points = lane.centerline
            starts.append(points[:-1])
            ends.append(points[1:])
            lane_of.append(np.full(len(points) - 1, lane.lane_id))
            s0.append(cumulative_length(points)[:-1])
        return np.concatenate(starts), np.concatenate(ends), np.concatenate(lane_of), np.concatenate(s0)

    def _project(self, point: FloatArray, yaw_rad: float | None,
                 max_heading_error_rad: float) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """One point ``(2,)`` projected onto every centreline segment: squared distance (infinite for segments more
        than ``max_heading_error_rad`` off ``yaw_rad``), arc length of the foot along its lane, signed lateral
        offset (left +), the segment's heading."""
        starts, _, _, s0 = self._segments
        seg, seg_len2, seg_length, heading_rad = self._segment_shapes
        rel = point - starts
        t = np.clip(np.einsum("ij,ij->i", rel, seg) / seg_len2, 0.0, 1.0)
        off = rel - seg * t[:, None]
        dist2 = np.einsum("ij,ij->i", off, off)
        if yaw_rad is not None:
            wrong_way = np.abs(wrap_angle(heading_rad - yaw_rad)) > max_heading_error_rad
            dist2[wrong_way] = np.inf
        cross = seg[:, 0] * rel[:, 1] - seg[:, 1] * rel[:, 0]
        return dist2, s0 + t * seg_length, np.sqrt(dist2) * np.sign(cross), heading_rad

    @functools.cached_property
    def _segment_shapes(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Each centreline segment's vector, squared length (at least 1e-12), length and heading."""
        starts, ends, _, _ = self._segments
        seg = ends - starts
        seg_len2 = np.maximum(np.sum(seg * seg, axis=-1), 1e-12)
        return seg, seg_len2, np.sqrt(seg_len2), np.arctan2(seg[:, 1], seg[:, 0])

    def locate(self, xy: FloatArray, yaw_rad: FloatArray | None = None, *,
               max_heading_error_rad: float = np.pi / 2) -> LanePosition:
        """The lane each point ``(Q, 2)`` lies on: the nearest centreline, among lanes whose direction is within
        ``max_heading_error_rad`` of ``yaw_rad`` when headings are given."""
        lane_of = self._segments[2]
        xy = np.atleast_2d(np.asarray(xy, dtype=np.float64))
        best_lane = np.zeros(len(xy), dtype=np.intp)
        best_s, best_lateral = np.zeros(len(xy)), np.zeros(len(xy))
        for q, point in enumerate(xy):  # a loop over queries: each is a vectorized pass over all segments
            yaw = None if yaw_rad is None else float(np.atleast_1d(yaw_rad)[q])
            dist2, s_m, lateral_m, _ = self._project(point, yaw, max_heading_error_rad)
            k = int(np.argmin(dist2))
            best_lane[q], best_s[q], best_lateral[q] = lane_of[k], s_m[k], lateral_m[k]
        return LanePosition(best_lane, best_s, best_lateral)

    def lanes_near(self, point: FloatArray, yaw_rad: float | None = None, *, within_m: float,
                   max_heading_error_rad: float = np.pi / 2) -> tuple[LanePosition, FloatArray]:
        """Every lane whose centreline passes within ``within_m`` of ``point`` ``(2,)`` (among lanes whose
        direction there is within ``max_heading_error_rad`` of ``yaw_rad`` when it is given), at its nearest point,
        nearest lane first, each lane once; and each lane's heading there."""
        dist2, s_m, lateral_m, heading_rad = self._project(np.asarray(point, dtype=np.float64), yaw_rad,
                                                           max_heading_error_rad)
        lane_of = self._segments[2]
        near = np.flatnonzero(dist2 <= within_m**2)
        near = near[np.argsort(dist2[near], kind="stable")]
        _, first = np.unique(lane_of[near], return_index=True)
        near = near[np.sort(first)]
        return LanePosition(lane_of[near], s_m[near], lateral_m[near]), heading_rad[near]

    # ------------------------------------------------------------------ routing
    @functools.cached_property
    def _lengths_m(self) -> tuple[float, ...]:
        return tuple(lane.length_m for lane in self.lanes)

    def shortest_path(self, start_lane: int, goal_lane: int, *, start_s_m: float = 0.0,
                      goal_s_m: float | None = None, lane_changes: bool = True) -> list[int]:
        """Shortest lane sequence from ``start_s_m`` on ``start_lane`` to ``goal_s_m`` on ``goal_lane`` (Dijkstra
        over driven distance): along successors and, with ``lane_changes``, to same-direction neighbours (each
        change costing ``LANE_CHANGE_COST_M``).

        When both are the same lane and the goal lies ahead of the start, the path is that lane alone.
        :raises ValueError: if the goal cannot be reached.
        """
        goal = (goal_lane, self.lanes[goal_lane].length_m if goal_s_m is None else goal_s_m)
        (found,) = self.shortest_paths(start_lane, [goal], start_s_m=start_s_m, lane_changes=lane_changes)
        if found is None:
            raise ValueError(f"map {self.name!r}: lane {goal_lane} cannot be reached from lane {start_lane}")
        return found[1]

    def shortest_paths(self, start_lane: int, goals: Sequence[tuple[int, float]], *, start_s_m: float = 0.0,
                       lane_changes: bool = True) -> list[tuple[float, list[int]] | None]:
        """:meth:`shortest_path` from ``start_s_m`` on ``start_lane`` to each goal ``(lane, s_m)`` in one search:
        per goal, the distance driven (lane changes at ``LANE_CHANGE_COST_M``) and the lane sequence, or ``None``
        where it cannot be reached."""
        lengths = self._lengths_m
        found: list[tuple[float, list[int]] | None] = [None] * len(goals)
        goals_on: dict[int, list[int]] = {}  # lane -> goals on it still to search for
        for k, (lane, s_m) in enumerate(goals):
            if lane == start_lane and s_m >= start_s_m:
                found[k] = (s_m - start_s_m, [start_lane])
            else:
                goals_on.setdefault(lane, []).append(k)
        left = sum(len(ks) for ks in goals_on.values())
        # nodes: a lane id (cost at its end) or -1 - k (goal k reached); the start lane never gets a parent:
        # re-entering it costs more
        best = {start_lane: lengths[start_lane] - start_s_m}
        parent: dict[int, int] = {}
        queue = [(best[start_lane], start_lane)]
        while queue and left:
            cost, node = heapq.heappop(queue)
            if cost > best.get(node, np.inf):
                continue
            if node < 0:
                path = [goals[-1 - node][0]]
                lane = parent[node]
                while lane != start_lane:
                    path.append(lane)
                    lane = parent[lane]
                path.append(start_lane)
                found[-1 - node] = (cost, path[::-1])
                left -= 1
                continue
            # (next lane, cost at its end, cost at its start: arriving at ``s_m`` on it costs that plus ``s_m``)
            moves = [(succ, cost + lengths[succ], cost) for succ in self.lanes[node].successors]
            if lane_changes:  # a same-direction neighbour runs parallel and ends where this lane ends
                moves += [(other, cost + LANE_CHANGE_COST_M, cost + LANE_CHANGE_COST_M - lengths[other])
                          for other in self.lane_changes(node)]
            for succ, end_cost, start_cost in moves:
                arrivals = [(-1 - k, start_cost + goals[k][1]) for k in goals_on.get(succ, ())]
                for target, new_cost in [(succ, end_cost), *arrivals]:
                    if new_cost < best.get(target, np.inf):
                        best[target], parent[target] = new_cost, node
                        heapq.heappush(queue, (new_cost, target))
        return found


def _plain(value: Any) -> Any:
    """``value`` as JSON types: arrays and tuples as lists, dataclasses as dicts, numpy scalars as numbers."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in fields(value)}
    return value


def _points(values: Any) -> FloatArray:
    points: FloatArray = np.asarray(values, dtype=np.float64).reshape(-1, 2)
    return points
