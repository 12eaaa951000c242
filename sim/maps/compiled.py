"""A lane graph compiled into flat arrays for the world's kernels.

Lanes are resampled at uniform spacing (at most ``spacing_m``), so the point at arc length ``s`` on lane ``l`` is
found by index arithmetic; successors are a CSR table; a uniform grid over the map lists the centreline segments
near each cell, so "which lanes is this point on" costs a handful of segment tests; junction lanes that cross,
merge or diverge are marked as conflicting; walkways are flat polylines too; light groups carry their junction and
their phase in the junction's split-phase program.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from sim.geometry import FloatArray, cumulative_length, resample_polyline
from sim.maps.lane_graph import LaneGraph
from sim.maps.walkways import crosswalk_axis, walk_network

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

#: Cell size of the spatial grid, metres.
GRID_CELL_M = 2.0
#: The most a located actor may reach beyond a lane's half width (``geometry.locate``'s ``reach``); segments are
#: listed in every cell within half the widest lane plus this.
MAX_QUERY_REACH_M = 2.0
#: Junction lanes whose centrelines come closer than this share of the mean lane width conflict.
CONFLICT_SHARE = 0.7


class MapArrays(NamedTuple):
    """Flat arrays of one map (``L`` lanes, ``P`` lane points, ``G`` light groups, ``W`` walkways)."""

    lane_offset: IntArray  # (L + 1,) first point of each lane
    pts_x: FloatArray  # (P,)
    pts_y: FloatArray
    pts_heading: FloatArray  # (P,) heading of the segment starting at each point (the last repeats)
    lane_length: FloatArray  # (L,)
    lane_ds: FloatArray  # (L,) spacing of the lane's points
    lane_width: FloatArray
    lane_speed: FloatArray
    lane_curve_speed: FloatArray  # (L,) speed that keeps lateral acceleration within CURVE_ACCEL_MPS2 on the lane
    lane_junction: IntArray  # (L,) junction id, -1 outside junctions
    lane_light: IntArray  # (L,) light group at the lane's end, -1 none
    lane_stop: BoolArray  # (L,) stop sign at the lane's end
    succ_offset: IntArray  # (L + 1,)
    succ: IntArray
    conflict: BoolArray  # (L, L) junction lanes that cross, merge or diverge
    seg_lane: IntArray  # (P,) lane of each point
    grid_meta: FloatArray  # (x0, y0, cell, nx, ny)
    grid_offset: IntArray  # (nx * ny + 1,)
    grid_items: IntArray  # point index k of segment k -> k + 1
    spawn_lanes: IntArray  # lanes where traffic may spawn (outside junctions, at least 10 m long)
    light_junction: IntArray  # (G,) junction index of each group (0..J-1)
    light_phase: IntArray  # (G,) phase of the group in its junction's program
    junction_phases: IntArray  # (J,) number of phases per signalized junction
    walk_offset: IntArray  # (W + 1,)
    walk_x: FloatArray
    walk_y: FloatArray
    walk_s: FloatArray  # cumulative length within each walkway
    walk_crossing: BoolArray  # (W,)
    walk_succ_offset: IntArray  # (W + 1,)
    walk_succ: IntArray


_COMPILED: dict[tuple[int, float], tuple[LaneGraph, MapArrays]] = {}


#: Lateral acceleration background vehicles keep to in curves (the expert's default too).
CURVE_ACCEL_MPS2 = 2.0


def _curve_speed(points: FloatArray) -> float:
    """The speed at which the sharpest 3 m of a polyline take ``CURVE_ACCEL_MPS2`` of lateral acceleration."""
    if len(points) < 3:
        return float("inf")
    d = np.diff(points, axis=0)
    step = np.linalg.norm(d, axis=1)
    heading = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    along = np.concatenate([[0.0], np.cumsum(step[:-1] * 0.5 + step[1:] * 0.5)])
    if along[-1] < 1e-6:
        return float("inf")
    window = 3.0
    ahead = np.interp(np.minimum(along + window, along[-1]), along, heading)
    span = np.maximum(np.minimum(along + window, along[-1]) - along, 1e-3)
    curvature = np.max(np.abs(ahead - heading)[span > 1.0] / span[span > 1.0]) if (span > 1.0).any() else 0.0
    return float(np.sqrt(CURVE_ACCEL_MPS2 / max(curvature, 1e-4)))


def compile_map(lane_graph: LaneGraph, spacing_m: float = 1.0) -> MapArrays:
    """Compile ``lane_graph`` (once per graph object and spacing)."""
    key = (id(lane_graph), spacing_m)
    cached = _COMPILED.get(key)
    if cached is None or cached[0] is not lane_graph:
        cached = _COMPILED[key] = (lane_graph, _compile(lane_graph, spacing_m))
    return cached[1]


def _compile(lane_graph: LaneGraph, spacing_m: float) -> MapArrays:
    lanes = lane_graph.lanes
    points, offsets, ds, lengths = [], [0], [], []
    for lane in lanes:
        length = float(cumulative_length(lane.centerline)[-1])
        count = max(int(np.ceil(length / spacing_m)), 1) + 1
        resampled = resample_polyline(lane.centerline, count=count)
        points.append(resampled)
        offsets.append(offsets[-1] + count)
        ds.append(length / (count - 1))
        lengths.append(length)
    pts = np.concatenate(points)
    delta = np.diff(pts, axis=0)
    heading = np.concatenate([np.arctan2(delta[:, 1], delta[:, 0]), [0.0]])
    lane_offset = np.asarray(offsets, dtype=np.int64)
    heading[lane_offset[1:] - 1] = heading[lane_offset[1:] - 2]  # each lane's last point keeps its last heading
    seg_lane = np.repeat(np.arange(len(lanes)), np.diff(lane_offset))
    succ_offset = np.concatenate([[0], np.cumsum([len(lane.successors) for lane in lanes])]).astype(np.int64)
    succ = np.array([s for lane in lanes for s in lane.successors], dtype=np.int64)
    junction_of = _junctions(lane_graph, points)
    conflict = _conflicts(lane_graph, points, junction_of)
    grid = _grid(pts, lane_offset, lane_graph.bounds_m,
                 0.5 * max(lane.width_m for lane in lanes) + MAX_QUERY_REACH_M)
    light_junction, light_phase, junction_phases = _light_programs(lane_graph)
    walk = _walkways(lane_graph)
    spawn = np.array([lane.lane_id for lane in lanes if not lane.is_junction and lengths[lane.lane_id] >= 10.0
                      and lane.lane_type == "vehicle"], dtype=np.int64)
    return MapArrays(
        lane_offset=lane_offset,
        pts_x=np.ascontiguousarray(pts[:, 0]),
        pts_y=np.ascontiguousarray(pts[:, 1]),
        pts_heading=heading,
        lane_length=np.asarray(lengths),
        lane_ds=np.asarray(ds),
        lane_width=np.array([lane.width_m for lane in lanes]),
        lane_speed=np.array([lane.speed_limit_mps for lane in lanes]),
        lane_curve_speed=np.array([_curve_speed(line) for line in points]),
        lane_junction=junction_of,
        lane_light=np.array([-1 if lane.light_group is None else lane.light_group for lane in lanes],
                            dtype=np.int64),
        lane_stop=np.array([lane.stop_sign for lane in lanes], dtype=bool),
        succ_offset=succ_offset,
        succ=succ,
        conflict=conflict,
        seg_lane=seg_lane.astype(np.int64),
        grid_meta=grid[0],
        grid_offset=grid[1],
        grid_items=grid[2],
        spawn_lanes=spawn if len(spawn) else np.array([0], dtype=np.int64),
        light_junction=light_junction,
        light_phase=light_phase,
        junction_phases=junction_phases,
        **walk,  # type: ignore[arg-type]
    )


def _junctions(lane_graph: LaneGraph, points: list[FloatArray]) -> IntArray:
    """Junction of every lane (-1 outside junctions). Junction lanes without a junction id (Argoverse 2 marks
    lanes as "in an intersection" only) are grouped: lanes within a metre of each other share a junction."""
    lanes = lane_graph.lanes
    junction_of = np.array([-1 if not lane.is_junction else (-2 if lane.junction_id is None else lane.junction_id)
                            for lane in lanes], dtype=np.int64)
    loose = [lane.lane_id for lane in lanes if junction_of[lane.lane_id] == -2]
    next_id = int(junction_of.max(initial=-1)) + 1
    parent = {lane: lane for lane in loose}

    def root(lane: int) -> int:
        while parent[lane] != lane:
            parent[lane] = parent[parent[lane]]
            lane = parent[lane]
        return lane

    for i, a in enumerate(loose):
        for b in loose[i + 1:]:
            gap = np.min(np.sum((points[a][:, None, :] - points[b][None, :, :]) ** 2, axis=-1))
            if gap < 1.0:
                parent[root(a)] = root(b)
    ids: dict[int, int] = {}
    for lane in loose:
        junction_of[lane] = ids.setdefault(root(lane), next_id + len(ids))
    return junction_of


def _grid(pts: FloatArray, lane_offset: IntArray, bounds: tuple[float, float, float, float], reach: float
          ) -> tuple[FloatArray, IntArray, IntArray]:
    """Cells of ``GRID_CELL_M`` listing every segment whose bounding box comes within ``reach`` of them."""
    x0, y0 = min(bounds[0], pts[:, 0].min()) - reach, min(bounds[1], pts[:, 1].min()) - reach
    x1, y1 = max(bounds[2], pts[:, 0].max()) + reach, max(bounds[3], pts[:, 1].max()) + reach
    nx, ny = int(np.ceil((x1 - x0) / GRID_CELL_M)), int(np.ceil((y1 - y0) / GRID_CELL_M))
    is_start = np.ones(len(pts), dtype=bool)
    is_start[lane_offset[1:] - 1] = False  # a lane's last point starts no segment
    k = np.flatnonzero(is_start)
    lo = np.minimum(pts[k], pts[k + 1]) - reach
    hi = np.maximum(pts[k], pts[k + 1]) + reach
    c0 = np.floor((lo - [x0, y0]) / GRID_CELL_M).astype(np.int64)
    c1 = np.floor((hi - [x0, y0]) / GRID_CELL_M).astype(np.int64)
    cells, items = [], []
    for seg, (a, b) in enumerate(zip(c0, c1, strict=True)):
        xs, ys = np.arange(a[0], b[0] + 1), np.arange(a[1], b[1] + 1)
        grid_cells = (ys[:, None] * nx + xs[None, :]).ravel()
        cells.append(grid_cells)
        items.append(np.full(len(grid_cells), k[seg]))
    cell_of, item = np.concatenate(cells), np.concatenate(items)
    order = np.argsort(cell_of, kind="stable")
    counts = np.bincount(cell_of, minlength=nx * ny)
    offset = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return np.array([x0, y0, GRID_CELL_M, nx, ny]), offset, item[order].astype(np.int64)


def _conflicts(lane_graph: LaneGraph, points: list[FloatArray], junction_of: IntArray) -> BoolArray:
    lanes = lane_graph.lanes
    conflict = np.zeros((len(lanes), len(lanes)), dtype=bool)
    by_junction: dict[int, list[int]] = {}
    for lane in lanes:
        if junction_of[lane.lane_id] >= 0:
            by_junction.setdefault(int(junction_of[lane.lane_id]), []).append(lane.lane_id)
    for members in by_junction.values():
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                gap = np.sqrt(np.min(np.sum((points[a][:, None, :] - points[b][None, :, :]) ** 2, axis=-1)))
                if gap < CONFLICT_SHARE * 0.5 * (lanes[a].width_m + lanes[b].width_m):
                    conflict[a, b] = conflict[b, a] = True
    return conflict


def _light_programs(lane_graph: LaneGraph) -> tuple[IntArray, IntArray, IntArray]:
    """Junction index (dense) and phase of every light group; phases per junction (split phasing: one group each,
    in group order)."""
    junctions = lane_graph.light_group_junctions()
    dense: dict[int, int] = {}
    phase, phases = [], []
    for junction in junctions:
        if junction not in dense:
            dense[junction] = len(dense)
            phases.append(0)
        phase.append(phases[dense[junction]])
        phases[dense[junction]] += 1
    return (np.array([dense[j] for j in junctions], dtype=np.int64), np.array(phase, dtype=np.int64),
            np.array(phases or [1], dtype=np.int64))


def _walkways(lane_graph: LaneGraph) -> dict[str, NDArray[np.generic]]:
    walkways = list(lane_graph.walkways)
    if not walkways:  # maps without a pedestrian network: each crosswalk between kerbs (sim.maps.walkways)
        walkways = list(walk_network([], [crosswalk_axis(lane_graph.lanes, p) for p in lane_graph.crosswalks]))
    if not walkways:
        return {"walk_offset": np.zeros(1, dtype=np.int64), "walk_x": np.zeros(1), "walk_y": np.zeros(1),
                "walk_s": np.zeros(1), "walk_crossing": np.zeros(0, dtype=bool),
                "walk_succ_offset": np.zeros(1, dtype=np.int64), "walk_succ": np.zeros(1, dtype=np.int64)}
    pts = np.concatenate([w.centerline for w in walkways])
    return {
        "walk_offset": np.concatenate([[0], np.cumsum([len(w.centerline) for w in walkways])]).astype(np.int64),
        "walk_x": np.ascontiguousarray(pts[:, 0]),
        "walk_y": np.ascontiguousarray(pts[:, 1]),
        "walk_s": np.concatenate([cumulative_length(w.centerline) for w in walkways]),
        "walk_crossing": np.array([w.crossing for w in walkways], dtype=bool),
        "walk_succ_offset": np.concatenate([[0], np.cumsum([len(w.successors) for w in walkways])]).astype(np.int64),
        "walk_succ": np.array([s for w in walkways for s in w.successors] or [0], dtype=np.int64),
    }
