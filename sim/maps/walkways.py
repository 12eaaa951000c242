"""A pedestrian network from sidewalk centrelines and crosswalks.

Sidewalk centrelines (undirected polylines) are split where a crosswalk's end meets them, their ends that lie
within ``JOIN_M`` of each other are joined (corners), and every crosswalk becomes a crossing from the sidewalk
point nearest one end, across its axis, to the sidewalk point nearest the other. A crosswalk end that reaches no
sidewalk (within ``REACH_M``) gets a kerb: a point a metre beyond the crosswalk and a short stub of pavement
leading away from the road, so that pedestrians leave the crossing, wait to cross off it, and turn around off the
road. Every polyline is walked in both directions; a walkway leads onto every walkway leaving its end but its own
reverse (a dead end turns around), and a crossing leads onto pavement only.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from sim.geometry import FloatArray, cumulative_length
from sim.maps.lane_graph import Lane, Walkway

#: Sidewalk ends closer than this are one corner.
JOIN_M = 3.0
#: A crosswalk end joins the nearest sidewalk point within this distance.
REACH_M = 6.0
#: A kerb lies this far beyond a crosswalk end that reaches no sidewalk; its stub runs ``STUB_M`` further.
KERB_M = 1.0
STUB_M = 4.0
#: Sidewalk pieces shorter than this are not split off (the crosswalk joins the piece's end instead).
_MIN_PIECE_M = 0.5


def walk_network(sidewalks: Sequence[FloatArray], crosswalk_lines: Sequence[FloatArray]) -> tuple[Walkway, ...]:
    """Directed walkways over ``sidewalks`` (``(P, 2)`` centrelines) and ``crosswalk_lines`` (``(2, 2)``: the line
    a pedestrian walks across each crosswalk, end to end)."""
    paths = [np.asarray(p, dtype=float) for p in sidewalks if len(p) >= 2 and cumulative_length(p)[-1] > 1e-3]
    cuts: list[list[float]] = [[] for _ in paths]  # arc lengths where crosswalks join each path
    ends: list[tuple[FloatArray, FloatArray, tuple[int, float] | None]] = []  # (axis end, outward unit, join)
    for line in crosswalk_lines:
        a, b = np.asarray(line[0], dtype=float), np.asarray(line[-1], dtype=float)
        across = (b - a) / max(float(np.linalg.norm(b - a)), 1e-9)
        for end, outward in ((a, -across), (b, across)):
            join = _nearest(paths, end)
            if join is not None:
                cuts[join[0]].append(join[1])
            ends.append((end, outward, join))
    pieces: list[FloatArray] = []
    for path, at in zip(paths, cuts, strict=True):
        pieces += _split(path, at)
    polylines: list[tuple[FloatArray, bool]] = [(piece, False) for piece in pieces]
    for k in range(0, len(ends), 2):
        kerbs: list[tuple[FloatArray, FloatArray]] = []  # (where the crossing starts or stops, crosswalk end)
        for end, outward, join in (ends[k], ends[k + 1]):
            if join is None:  # a kerb beyond the crosswalk and a stub of pavement away from the road
                kerb = end + KERB_M * outward
                polylines.append((np.stack([kerb, kerb + STUB_M * outward]), False))
                kerbs.append((kerb, end))
            else:
                kerbs.append((_point_at(paths[join[0]], join[1]), end))
        (start, a), (stop, b) = kerbs
        polylines.append((np.stack([start, a, b, stop]), True))
    return _directed(polylines)


def crosswalk_axis(lanes: Sequence[Lane], polygon: FloatArray) -> FloatArray:
    """The line a pedestrian walks across a crosswalk polygon: through its centre, across the nearest road lane
    (junction lanes run every way), from one end of the polygon to the other."""
    centre = polygon.mean(axis=0)
    best, along = np.inf, np.array([1.0, 0.0])
    for lane in lanes:
        if lane.is_junction:
            continue
        points = lane.centerline
        seg = np.diff(points, axis=0)
        t = np.clip(np.sum((centre - points[:-1]) * seg, axis=1) / np.maximum(np.sum(seg * seg, axis=1), 1e-12),
                    0.0, 1.0)
        dist = np.linalg.norm(points[:-1] + seg * t[:, None] - centre, axis=1)
        k = int(np.argmin(dist))
        if dist[k] < best:
            best, along = float(dist[k]), seg[k]
    across = np.array([-along[1], along[0]]) / max(float(np.linalg.norm(along)), 1e-9)
    reach = (polygon - centre) @ across
    line: FloatArray = np.stack([centre + across * reach.min(), centre + across * reach.max()])
    return line


def _nearest(paths: list[FloatArray], point: FloatArray) -> tuple[int, float] | None:
    """The path and arc length of the path point nearest ``point``, if within ``REACH_M``."""
    best: tuple[float, int, float] | None = None
    for index, path in enumerate(paths):
        seg = np.diff(path, axis=0)
        t = np.clip(np.sum((point - path[:-1]) * seg, axis=1) / np.maximum(np.sum(seg * seg, axis=1), 1e-12),
                    0.0, 1.0)
        dist = np.linalg.norm(path[:-1] + seg * t[:, None] - point, axis=1)
        k = int(np.argmin(dist))
        if dist[k] <= REACH_M and (best is None or dist[k] < best[0]):
            best = (float(dist[k]), index, float(cumulative_length(path)[k] + t[k] * np.linalg.norm(seg[k])))
    return None if best is None else (best[1], best[2])


def _point_at(path: FloatArray, s_m: float) -> FloatArray:
    s = cumulative_length(path)
    s_m = _snap(s_m, float(s[-1]))
    return np.array([np.interp(s_m, s, path[:, 0]), np.interp(s_m, s, path[:, 1])])


def _snap(s_m: float, length_m: float) -> float:
    """A cut this close to a path's end joins the end itself."""
    return 0.0 if s_m < _MIN_PIECE_M else length_m if s_m > length_m - _MIN_PIECE_M else s_m


def _split(path: FloatArray, at: list[float]) -> list[FloatArray]:
    s = cumulative_length(path)
    length = float(s[-1])
    marks = [0.0]
    for cut in sorted(_snap(c, length) for c in at):
        if cut - marks[-1] >= _MIN_PIECE_M and length - cut >= _MIN_PIECE_M:
            marks.append(cut)
    marks.append(length)
    pieces = []
    for lo, hi in pairwise(marks):
        inner = path[(s > lo + 1e-6) & (s < hi - 1e-6)]
        pieces.append(np.concatenate([[_point_at(path, lo)], inner, [_point_at(path, hi)]]))
    return pieces


def _directed(polylines: list[tuple[FloatArray, bool]]) -> tuple[Walkway, ...]:
    """Both directions of every polyline; ends within ``JOIN_M`` become one node (each end moved onto its node,
    the node's mean point, where it lies apart from it)."""
    if not polylines:
        return ()
    points = np.array([p[end] for p, _ in polylines for end in (0, -1)])
    node = _clusters(points, JOIN_M)
    centre = np.zeros((int(node.max(initial=-1)) + 1, 2))
    np.add.at(centre, node, points)
    centre /= np.maximum(np.bincount(node, minlength=len(centre)), 1)[:, None]
    lines: list[tuple[FloatArray, int, int, bool]] = []  # (points, start node, end node, crossing)
    for k, (points_k, crossing) in enumerate(polylines):
        first, last = node[2 * k], node[2 * k + 1]
        line = points_k
        if np.linalg.norm(line[0] - centre[first]) > 1e-6:
            line = np.concatenate([[centre[first]], line])
        if np.linalg.norm(line[-1] - centre[last]) > 1e-6:
            line = np.concatenate([line, [centre[last]]])
        lines += [(line, first, last, crossing), (line[::-1].copy(), last, first, crossing)]
    leaving: dict[int, list[int]] = {}
    for index, (_, first, _, _) in enumerate(lines):
        leaving.setdefault(int(first), []).append(index)
    walkways = []
    for index, (line, _, last, crossing) in enumerate(lines):
        onward = [k for k in leaving.get(int(last), []) if k != index ^ 1 and not (crossing and lines[k][3])]
        walkways.append(Walkway(line, tuple(onward or [index ^ 1]), crossing))
    return tuple(walkways)


def _clusters(points: FloatArray, radius_m: float) -> np.ndarray:
    """Cluster index of every point: points within ``radius_m`` of each other (transitively) share one."""
    parent = list(range(len(points)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = np.argsort(points[:, 0]) if len(points) else np.zeros(0, dtype=np.int64)
    for a_pos, a in enumerate(order):
        for b in order[a_pos + 1:]:
            if points[b, 0] - points[a, 0] > radius_m:
                break
            if np.linalg.norm(points[a] - points[b]) <= radius_m:
                parent[root(int(a))] = root(int(b))
    roots = [root(i) for i in range(len(points))]
    dense = {r: k for k, r in enumerate(dict.fromkeys(roots))}
    return np.array([dense[r] for r in roots], dtype=np.int64)
