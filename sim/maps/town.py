"""Procedural towns: seeded small road networks with signalized, all-way-stop and uncontrolled junctions.

A town is a graph of junction nodes joined by straight two-way roads (right-hand traffic):

- **layout** ``grid`` (nodes on a regular grid) or ``irregular`` (jittered nodes, some roads removed; every node
  keeps at least two roads and the network stays connected);
- **roads** of one or two lanes per direction;
- **junctions**: nodes with three or more roads are signalized (one light group per approach, split phasing) or
  all-way stops; nodes with two roads are uncontrolled bends;
- **crosswalks** across every arm of a signalized or stop junction, inside the junction mouth (past the stop line);
- **sidewalks** along both sides of every road, joined around the corners and across the crosswalks, as the
  pedestrian network (:class:`~sim.maps.lane_graph.Walkway`);
- **curbside stops** on the rightmost lane of some roads, for robotaxi pick-up and drop-off.

Different seeds give different towns; the seed also picks the layout unless the spec fixes it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sim.geometry import FloatArray, convex_hull, resample_polyline
from sim.maps.lane_graph import CurbsideStop, Lane, LaneGraph, Walkway

Layout = Literal["grid", "irregular"]

_CONNECTOR_POINTS = 16
_STRAIGHT_DEG = 35.0


@dataclass(frozen=True)
class TownSpec:
    """What kind of town to build.

    :param layout: ``grid``, ``irregular``, or ``None`` to let the seed choose.
    :param columns: junction nodes per row.
    :param rows: rows of junction nodes.
    :param block_m: distance between neighbouring nodes (before jitter).
    :param lane_width_m: width of every lane.
    :param two_lane_share: share of roads with two lanes per direction.
    :param stop_share: share of 3- and 4-way junctions that are all-way stops (the rest are signalized).
    :param curbside_share: share of road sides with a curbside stop zone.
    :param speed_limit_mps: speed limit on one-lane roads (two-lane roads allow 1.5 times more).
    """

    layout: Layout | None = None
    columns: int = 3
    rows: int = 3
    block_m: float = 80.0
    lane_width_m: float = 3.5
    two_lane_share: float = 0.35
    stop_share: float = 0.3
    curbside_share: float = 0.5
    speed_limit_mps: float = 8.33


@dataclass
class _Node:
    xy: FloatArray
    arms: list[int]  # road indices, sorted by angle
    radius_m: float = 0.0
    control: Literal["lights", "stop", "none"] = "none"


@dataclass
class _Road:
    a: int
    b: int
    lanes: int  # per direction


def procedural_town(seed: int, spec: TownSpec = TownSpec()) -> LaneGraph:
    """Build the town of ``seed``. Its name is ``town-<seed>`` (``town-<layout>-<seed>`` when the spec fixes the
    layout)."""
    rng = np.random.default_rng(seed)
    layout: Layout = spec.layout or ("grid" if rng.random() < 0.5 else "irregular")
    name = f"town-{seed}" if spec.layout is None else f"town-{spec.layout}-{seed}"
    nodes, roads = _network(rng, spec, layout)
    w = spec.lane_width_m
    for index, node in enumerate(nodes):
        node.arms = sorted((r for r, road in enumerate(roads) if index in (road.a, road.b)),
                           key=lambda r: _angle(_direction(nodes, roads[r], index)))
        widest = max(roads[r].lanes for r in node.arms) * w
        if len(node.arms) >= 3:
            node.radius_m = widest + 7.0
            node.control = "stop" if rng.random() < spec.stop_share else "lights"
        else:
            node.radius_m = widest + 3.0
    builder = _Builder(spec, nodes, roads, rng)
    return builder.build(name)


def _angle(direction: FloatArray) -> float:
    return float(np.arctan2(direction[1], direction[0]))


def _direction(nodes: list[_Node], road: _Road, at: int) -> FloatArray:
    """Unit vector from node ``at`` along ``road``."""
    other = road.b if road.a == at else road.a
    delta = nodes[other].xy - nodes[at].xy
    unit: FloatArray = delta / np.linalg.norm(delta)
    return unit


def _network(rng: np.random.Generator, spec: TownSpec, layout: Layout) -> tuple[list[_Node], list[_Road]]:
    cols, rows = spec.columns, spec.rows
    if cols < 2 or rows < 2:
        raise ValueError(f"a town needs at least 2x2 nodes, got {cols}x{rows}")
    nodes = []
    for j, i in itertools.product(range(rows), range(cols)):
        xy = np.array([i * spec.block_m, j * spec.block_m], dtype=float)
        if layout == "irregular":
            xy += rng.uniform(-0.15, 0.15, 2) * spec.block_m
        nodes.append(_Node(xy, []))
    edges = [(j * cols + i, j * cols + i + 1) for j in range(rows) for i in range(cols - 1)]
    edges += [(j * cols + i, (j + 1) * cols + i) for j in range(rows - 1) for i in range(cols)]
    edges_all = list(edges)
    if layout == "irregular":
        for k in rng.permutation(len(edges)):
            candidate = edges_all[k]
            if rng.random() < 0.5 or candidate not in edges:
                continue
            trial = [e for e in edges if e != candidate]
            degrees = np.bincount(np.array(trial).ravel(), minlength=len(nodes))
            if degrees.min() >= 2 and _connected(len(nodes), trial):
                edges = trial
    roads = [_Road(a, b, 2 if rng.random() < spec.two_lane_share else 1) for a, b in edges]
    return nodes, roads


def _connected(count: int, edges: list[tuple[int, int]]) -> bool:
    seen, stack = {0}, [0]
    while stack:
        node = stack.pop()
        for a, b in edges:
            for here, there in ((a, b), (b, a)):
                if here == node and there not in seen:
                    seen.add(there)
                    stack.append(there)
    return len(seen) == count


def _bezier(p0: FloatArray, p1: FloatArray, p2: FloatArray, p3: FloatArray, count: int) -> FloatArray:
    t = np.linspace(0.0, 1.0, count)[:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


class _Builder:
    """Turns the node/road network into lanes, polygons and walkways."""

    def __init__(self, spec: TownSpec, nodes: list[_Node], roads: list[_Road], rng: np.random.Generator) -> None:
        self.spec, self.nodes, self.roads, self.rng = spec, nodes, roads, rng
        self.lanes: list[dict[str, object]] = []
        # (road, from node) -> lane ids of that direction, innermost first
        self.directed: dict[tuple[int, int], list[int]] = {}

    def _add_lane(self, **fields: object) -> int:
        self.lanes.append({"successors": [], **fields})
        return len(self.lanes) - 1

    def build(self, name: str) -> LaneGraph:
        spec, w = self.spec, self.spec.lane_width_m
        polygons: list[FloatArray] = []
        stops: list[CurbsideStop] = []
        for r, road in enumerate(self.roads):
            speed = spec.speed_limit_mps * (1.5 if road.lanes == 2 else 1.0)
            for start, end in ((road.a, road.b), (road.b, road.a)):
                u = _direction(self.nodes, road, start)
                left = np.array([-u[1], u[0]])
                p0 = self.nodes[start].xy + u * self.nodes[start].radius_m
                p1 = self.nodes[end].xy - u * self.nodes[end].radius_m
                ids = []
                for k in range(road.lanes):
                    offset = -(k + 0.5) * w * left
                    ids.append(self._add_lane(centerline=np.stack([p0 + offset, p1 + offset]), speed=speed,
                                              junction=None, end_node=end))
                self.directed[(r, start)] = ids
                length = float(np.linalg.norm(p1 - p0))
                if length > 40.0 and self.rng.random() < spec.curbside_share:
                    zone_start = float(self.rng.uniform(0.25, 0.45)) * length
                    stops.append(CurbsideStop(ids[-1], round(zone_start, 2), round(zone_start + 14.0, 2)))
            a_xy = self.nodes[road.a].xy
            u = _direction(self.nodes, road, road.a)
            left = np.array([-u[1], u[0]])
            half = road.lanes * w
            p0 = a_xy + u * self.nodes[road.a].radius_m
            p1 = self.nodes[road.b].xy - u * self.nodes[road.b].radius_m
            polygons.append(np.stack([p0 - left * half, p1 - left * half, p1 + left * half, p0 + left * half]))
        crosswalks: list[FloatArray] = []
        light_junctions: list[int] = []
        for n, node in enumerate(self.nodes):
            self._junction(n, node, light_junctions)
            polygons.append(self._junction_polygon(n, node))
            if node.control != "none":
                crosswalks += [self._crosswalk(n, node, r) for r in node.arms]
        lanes = self._lanes()
        walkways = self._walkways()
        points = np.concatenate([lane.centerline for lane in lanes] + polygons
                                + [walkway.centerline for walkway in walkways])
        margin = 6.0
        low, high = points.min(axis=0) - margin, points.max(axis=0) + margin
        return LaneGraph(
            name=name,
            lanes=lanes,
            bounds_m=(float(low[0]), float(low[1]), float(high[0]), float(high[1])),
            drivable_polygons=tuple(polygons),
            light_groups=len(light_junctions),
            crosswalks=tuple(crosswalks),
            walkways=walkways,
            curbside_stops=tuple(stops),
            light_junctions=tuple(light_junctions),
        )

    def _junction(self, n: int, node: _Node, light_junctions: list[int]) -> None:
        """Connectors between every inbound and outbound arm (every outbound lane reached from somewhere);
        controls on the inbound lanes."""
        movements: list[tuple[int, int, int, int]] = []  # (inbound road, inbound lane, outbound road, outbound lane)
        for r_in in node.arms:
            road_in = self.roads[r_in]
            inbound = self.directed[(r_in, road_in.b if road_in.a == n else road_in.a)]
            heading_in = -_direction(self.nodes, road_in, n)
            group = None
            if node.control == "lights":
                group = len(light_junctions)
                light_junctions.append(n)
            for lane_id in inbound:
                self.lanes[lane_id]["light_group"] = group
                self.lanes[lane_id]["stop_sign"] = node.control == "stop"
            for r_out in node.arms:
                if r_out == r_in:
                    continue
                outbound = self.directed[(r_out, n)]
                heading_out = _direction(self.nodes, self.roads[r_out], n)
                cross = heading_in[0] * heading_out[1] - heading_in[1] * heading_out[0]
                turn = np.degrees(np.arctan2(cross, np.dot(heading_in, heading_out)))
                movements += [(r_in, inbound[k_in], r_out, outbound[k_out])
                              for k_in, k_out in self._movements(len(inbound), len(outbound), float(turn),
                                                                 len(node.arms))]
        for r_out in node.arms:  # an outbound lane nobody turns into: the nearest movement into its road fans out
            outbound = self.directed[(r_out, n)]
            for k_out, lane_out in enumerate(outbound):
                if any(target == lane_out for *_, target in movements):
                    continue
                into_road = [(abs(outbound.index(target) - k_out), r_in, source)
                             for r_in, source, road, target in movements if road == r_out]
                if into_road:
                    _, r_in, source = min(into_road)
                    movements.append((r_in, source, r_out, lane_out))
        for r_in, lane_in, r_out, lane_out in movements:
            self._connector(n, lane_in, lane_out, -_direction(self.nodes, self.roads[r_in], n),
                            _direction(self.nodes, self.roads[r_out], n))

    @staticmethod
    def _movements(n_in: int, n_out: int, turn_deg: float, arms: int) -> list[tuple[int, int]]:
        """Which inbound lane (innermost 0) connects to which outbound lane for one turn."""
        if arms == 2 or abs(turn_deg) < _STRAIGHT_DEG:
            return [(k, min(k, n_out - 1)) for k in range(n_in)]
        if turn_deg > 0:  # left
            return [(0, 0)]
        return [(n_in - 1, n_out - 1)]

    def _connector(self, n: int, lane_in: int, lane_out: int, d_in: FloatArray, d_out: FloatArray) -> None:
        p0 = np.asarray(self.lanes[lane_in]["centerline"])[-1]
        p3 = np.asarray(self.lanes[lane_out]["centerline"])[0]
        reach = 0.55 * float(np.linalg.norm(p3 - p0)) / np.sqrt(2.0)
        points = _bezier(p0, p0 + d_in * reach, p3 - d_out * reach, p3, _CONNECTOR_POINTS)
        speed = min(float(self.lanes[lane_in]["speed"]), float(self.lanes[lane_out]["speed"]))  # type: ignore[arg-type]
        connector = self._add_lane(centerline=points, speed=speed, junction=n, successors=[lane_out])
        self.lanes[lane_in]["successors"].append(connector)  # type: ignore[attr-defined]

    def _arm_frame(self, n: int, r: int) -> tuple[FloatArray, FloatArray, float]:
        """Outward unit vector of arm ``r`` at node ``n``, its left normal, and the road's half width."""
        u = _direction(self.nodes, self.roads[r], n)
        return u, np.array([-u[1], u[0]]), self.roads[r].lanes * self.spec.lane_width_m

    def _junction_polygon(self, n: int, node: _Node) -> FloatArray:
        points = []
        for first, second in zip(node.arms, node.arms[1:] + node.arms[:1], strict=True):
            u1, l1, h1 = self._arm_frame(n, first)
            u2, l2, h2 = self._arm_frame(n, second)
            mouth_left = node.xy + u1 * node.radius_m + l1 * h1
            mouth_right = node.xy + u2 * node.radius_m - l2 * h2
            points += [mouth_left, mouth_right]
        connectors = [np.asarray(lane["centerline"]) for lane in self.lanes if lane.get("junction") == n]
        points += list(np.concatenate(connectors)) if connectors else []
        return convex_hull(np.array(points))

    def _crosswalk(self, n: int, node: _Node, r: int) -> FloatArray:
        u, left, half = self._arm_frame(n, r)
        near, far = node.xy + u * (node.radius_m - 4.0), node.xy + u * (node.radius_m - 1.0)
        return np.stack([near - left * half, far - left * half, far + left * half, near + left * half])

    def _lanes(self) -> tuple[Lane, ...]:
        w = self.spec.lane_width_m
        lanes = []
        # neighbours: lanes of one road direction are listed innermost first; the innermost one's left neighbour
        # is the innermost lane of the opposite direction
        left_of: dict[int, int] = {}
        right_of: dict[int, int] = {}
        for (r, start), ids in self.directed.items():
            road = self.roads[r]
            opposite = self.directed[(r, road.b if start == road.a else road.a)]
            for k, lane_id in enumerate(ids):
                left_of[lane_id] = ids[k - 1] if k > 0 else opposite[0]
                if k + 1 < len(ids):
                    right_of[lane_id] = ids[k + 1]
        for lane_id, fields in enumerate(self.lanes):
            junction = fields["junction"]
            lanes.append(Lane(
                lane_id=lane_id,
                centerline=np.asarray(fields["centerline"], dtype=float),
                width_m=w,
                successors=tuple(fields["successors"]),  # type: ignore[arg-type]
                is_junction=junction is not None,
                speed_limit_mps=float(fields["speed"]),  # type: ignore[arg-type]
                light_group=fields.get("light_group"),  # type: ignore[arg-type]
                stop_sign=bool(fields.get("stop_sign", False)),
                left_neighbor=left_of.get(lane_id),
                right_neighbor=right_of.get(lane_id),
                junction_id=junction,  # type: ignore[arg-type]
                source_id=f"road{lane_id}" if junction is None else f"junction{junction}/{lane_id}",
            ))
        return tuple(lanes)

    def _walkways(self) -> tuple[Walkway, ...]:
        """Sidewalk corner points around every node, joined along roads, around corners and across crosswalks."""
        corner: dict[tuple[int, int, int], FloatArray] = {}  # (node, road, side +1 left / -1 right) -> point
        for n, node in enumerate(self.nodes):
            # at a junction with crosswalks the corners are the crosswalk ends (inside the mouth); around a bend
            # the sidewalk corners lie beyond its curve
            along = node.radius_m - 2.5 if node.control != "none" else node.radius_m + 2.0
            for r in node.arms:
                u, left, half = self._arm_frame(n, r)
                for side in (1, -1):
                    corner[(n, r, side)] = node.xy + u * along + side * left * (half + 2.0)
        edges: list[tuple[tuple[int, int, int], tuple[int, int, int], FloatArray, bool]] = []
        for n, node in enumerate(self.nodes):
            for first, second in zip(node.arms, node.arms[1:] + node.arms[:1], strict=True):
                a, b = corner[(n, first, 1)], corner[(n, second, -1)]
                arc = self._clear_of_lanes(self._arc(node.xy, a, b), node.xy, node.radius_m + 25.0)
                edges.append(((n, first, 1), (n, second, -1), arc, False))
            if node.control != "none":
                for r in node.arms:
                    edges.append(((n, r, 1), (n, r, -1), np.stack([corner[(n, r, 1)], corner[(n, r, -1)]]), True))
        for r, road in enumerate(self.roads):
            for side in (1, -1):
                start, end = (road.a, r, side), (road.b, r, -side)
                edges.append((start, end, np.stack([corner[start], corner[end]]), False))
        directed = []
        for start, end, points, crossing in edges:
            directed.append((start, end, points, crossing))
            directed.append((end, start, points[::-1].copy(), crossing))
        walkways = []
        for index, (_start, end, points, crossing) in enumerate(directed):
            reverse = index ^ 1
            successors = [k for k, other in enumerate(directed) if other[0] == end and k != reverse]
            walkways.append(Walkway(points, tuple(successors or [reverse]), crossing))
        return tuple(walkways)

    def _clear_of_lanes(self, arc: FloatArray, centre: FloatArray, radius: float) -> FloatArray:
        """Move the inner points of a corner arc off the lanes near ``centre`` (turning lanes cut corners): each
        point steps away from the nearest lane point until it is a metre clear of the lane's edge."""
        near = [np.asarray(lane["centerline"]) for lane in self.lanes
                if np.min(np.linalg.norm(np.asarray(lane["centerline"]) - centre, axis=1)) < radius]
        dense = [resample(points) for points in near]
        clearance = 0.5 * self.spec.lane_width_m + 1.0
        arc = arc.copy()
        for k in range(1, len(arc) - 1):  # the ends join other walkways
            for _ in range(10):
                nearest = min((points[np.argmin(np.linalg.norm(points - arc[k], axis=1))] for points in dense),
                              key=lambda q: float(np.linalg.norm(q - arc[k])))
                away = arc[k] - nearest
                distance = float(np.linalg.norm(away))
                if distance >= clearance - 1e-6:
                    break
                arc[k] = nearest + away / max(distance, 1e-9) * clearance
        return arc

    @staticmethod
    def _arc(centre: FloatArray, a: FloatArray, b: FloatArray) -> FloatArray:
        """Counter-clockwise arc around ``centre`` from ``a`` to ``b`` (radius interpolated)."""
        angle_a = np.arctan2(*(a - centre)[::-1])
        angle_b = np.arctan2(*(b - centre)[::-1])
        sweep = (angle_b - angle_a) % (2 * np.pi)
        t = np.linspace(0.0, 1.0, max(int(np.degrees(sweep) / 15.0), 1) + 1)
        radius = (1 - t) * np.linalg.norm(a - centre) + t * np.linalg.norm(b - centre)
        angles = angle_a + t * sweep
        arc: FloatArray = centre + radius[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
        arc[0], arc[-1] = a, b
        return arc


def resample(points: FloatArray) -> FloatArray:
    """A polyline at 0.25 m spacing (for nearest-point queries)."""
    return resample_polyline(points, 0.25)
