"""A scenario's route as a backend writes it into the scene: a resampled polyline, the lane pieces it drives with
their offsets along it, and the control lines (lights, stop signs) it crosses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.geometry import FloatArray, cumulative_length, interpolate_along, resample_polyline
from sim.maps import LaneGraph
from sim.scene.records import Scene


@dataclass(frozen=True)
class RoutePath:
    """A scenario's route, ready for the scene's route record."""

    points: FloatArray
    spacing_m: float
    pieces: tuple[Any, ...]
    offsets: tuple[float, ...]
    lines: tuple[tuple[float, int, int], ...]  # (route s, approach lane, junction lane after it or -1)

    @property
    def length_m(self) -> float:
        return self.spacing_m * (len(self.points) - 1)

    def between(self, start_m: float, end_m: float) -> tuple[FloatArray, float]:
        """The route's points from ``start_m`` to ``end_m`` along it (a scenario's stretch; widened to whole
        samples) and the arc length of the first."""
        first = max(math.floor(start_m / self.spacing_m), 0)
        last = min(math.ceil(end_m / self.spacing_m) + 1, len(self.points))
        return self.points[first:last], first * self.spacing_m

    @staticmethod
    def build(lane_graph: LaneGraph, lane_ids: Sequence[int]) -> RoutePath:
        lanes = lane_graph.lanes
        path = lane_graph.route_path(lane_ids)
        pieces = path.pieces
        polyline = path.polyline(lane_graph)
        offsets, lines = [], []
        offset = 0.0
        for k, piece in enumerate(pieces):
            offsets.append(offset)
            end = offset + piece.end_s_m - piece.start_s_m
            lane = lanes[piece.lane]
            following = pieces[k + 1].lane if k + 1 < len(pieces) else -1
            at_end = piece.end_s_m >= lane.length_m - 1e-6
            if at_end and (lane.light_group is not None or lane.stop_sign) and following in lane.successors:
                lines.append((end, piece.lane, following if lanes[following].is_junction else -1))
            if k + 1 < len(pieces):
                here = lane_point(lane.centerline, piece.end_s_m)
                there = lane_point(lanes[following].centerline, pieces[k + 1].start_s_m)
                end += float(np.linalg.norm(there - here))
            offset = end
        length = float(cumulative_length(polyline)[-1])
        count = max(int(np.ceil(length)), 1) + 1
        points = resample_polyline(polyline, count=count)
        scale = length / offset if offset > 0 else 1.0  # piece offsets on the same scale as the polyline
        return RoutePath(points, length / (count - 1), pieces, tuple(o * scale for o in offsets),
                      tuple((s * scale, lane, junction) for s, lane, junction in lines))


def lane_point(points: FloatArray, s: float) -> FloatArray:
    """The point at arc length ``s`` along a polyline."""
    xy, _ = interpolate_along(points[None], cumulative_length(points)[None], np.array([[s]]))
    point: FloatArray = xy[0, 0]
    return point


def write_route(scene: Scene, env: int, route: RoutePath, start_m: float, end_m: float) -> None:
    """Put ``route`` into the scene's route record of scenario ``env``, the ego starting at ``start_m`` along it and
    the scenario ending at ``end_m`` (the record must have room for its points, pieces and lines)."""
    sc = scene
    count = len(route.points)
    sc.route.x_m[env, :count], sc.route.y_m[env, :count] = route.points[:, 0], route.points[:, 1]
    sc.route.x_m[env, count:], sc.route.y_m[env, count:] = route.points[-1, 0], route.points[-1, 1]
    sc.route.n[env], sc.route.ds_m[env] = count, route.spacing_m
    sc.route.start_m[env] = sc.route.progress_m[env] = start_m
    sc.route.end_m[env] = end_m
    sc.route.lateral_m[env] = 0.0
    pieces = route.pieces
    sc.route.piece_n[env] = len(pieces)
    sc.route.piece_lane[env, : len(pieces)] = [p.lane for p in pieces]
    sc.route.piece_start_m[env, : len(pieces)] = [p.start_s_m for p in pieces]
    sc.route.piece_end_m[env, : len(pieces)] = [p.end_s_m for p in pieces]
    sc.route.piece_offset_m[env, : len(pieces)] = route.offsets
    lines = [line for line in route.lines if line[0] > start_m]
    sc.route.line_n[env], sc.route.line_next[env] = len(lines), 0
    for k, (s, lane, junction_lane) in enumerate(lines):
        sc.route.line_s_m[env, k], sc.route.line_lane[env, k], sc.route.line_junction_lane[env, k] = s, lane, \
            junction_lane
