"""Import Argoverse 2 vector maps (``log_map_archive_*.json``) into the lane graph.

AV2 gives each lane segment its left and right boundaries (city frame: right-handed, metres), successors,
predecessors, neighbours, an intersection flag and a type (VEHICLE, BUS, BIKE). The centreline is the mean of the
two boundaries resampled to the same arc-length fractions; the width is their median distance. Links to lanes
outside the archived local map are dropped. Pedestrian crossings (two edges) become crosswalk polygons and
drivable areas become drivable polygons. AV2 maps carry no speed limits: lanes get ``DEFAULT_SPEED_LIMIT_MPS``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sim.geometry import FloatArray, cumulative_length, resample_polyline
from sim.maps.lane_graph import Lane, LaneGraph

#: 25 mph, the default urban limit in the US cities AV2 was recorded in.
DEFAULT_SPEED_LIMIT_MPS = 11.18
_LANE_TYPES = {"VEHICLE": "vehicle", "BUS": "bus", "BIKE": "bike"}


def load_av2_map(path: Path, *, name: str | None = None, spacing_m: float = 1.0) -> LaneGraph:
    """Read an AV2 vector map archive into a lane graph (``name`` defaults to the file's stem).

    :raises ValueError: naming the file and the field when the JSON is not a valid AV2 map.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable AV2 map archive ({error})") from error
    segments = _field(data, "lane_segments", path)
    if not isinstance(segments, dict) or not segments:
        raise ValueError(f"{path}: 'lane_segments' must be a non-empty mapping of lane id to lane segment")
    ids = sorted(segments, key=int)
    index = {int(lane_id): i for i, lane_id in enumerate(ids)}
    lanes = []
    for i, lane_id in enumerate(ids):
        segment = segments[lane_id]
        where = f"lane_segments.{lane_id}"
        left = _polyline(_field(segment, "left_lane_boundary", path, where), path, where)
        right = _polyline(_field(segment, "right_lane_boundary", path, where), path, where)
        count = max(len(left), len(right), int(np.ceil(cumulative_length(left)[-1] / spacing_m)) + 1)
        left, right = resample_polyline(left, count=count), resample_polyline(right, count=count)
        lane_type = _field(segment, "lane_type", path, where)
        if lane_type not in _LANE_TYPES:
            raise ValueError(f"{path}: {where}.lane_type is {lane_type!r}; expected one of {sorted(_LANE_TYPES)}")
        lanes.append(Lane(
            lane_id=i,
            centerline=0.5 * (left + right),
            width_m=float(np.median(np.linalg.norm(left - right, axis=1))),
            successors=tuple(sorted(index[s] for s in _field(segment, "successors", path, where) if s in index)),
            is_junction=bool(_field(segment, "is_intersection", path, where)),
            speed_limit_mps=DEFAULT_SPEED_LIMIT_MPS,
            left_neighbor=index.get(segment.get("left_neighbor_id")),
            right_neighbor=index.get(segment.get("right_neighbor_id")),
            left_boundary=left,
            right_boundary=right,
            lane_type=_LANE_TYPES[lane_type],
            source_id=str(lane_id),
        ))
    crosswalks = tuple(
        np.concatenate([_polyline(_field(c, "edge1", path, f"pedestrian_crossings.{k}"), path, k),
                        _polyline(_field(c, "edge2", path, f"pedestrian_crossings.{k}"), path, k)[::-1]])
        for k, c in data.get("pedestrian_crossings", {}).items()
    )
    drivable = tuple(_polyline(_field(area, "area_boundary", path, f"drivable_areas.{k}"), path, k)
                     for k, area in data.get("drivable_areas", {}).items())
    every = np.concatenate([lane.centerline for lane in lanes] + list(drivable) + list(crosswalks))
    low, high = every.min(axis=0) - 5.0, every.max(axis=0) + 5.0
    return LaneGraph(
        name=name or path.stem,
        lanes=tuple(lanes),
        bounds_m=(float(low[0]), float(low[1]), float(high[0]), float(high[1])),
        drivable_polygons=drivable,
        crosswalks=crosswalks,
    )


def _field(mapping: Any, key: str, path: Path, where: str = "") -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise ValueError(f"{path}: missing field '{f'{where}.' if where else ''}{key}'")
    return mapping[key]


def _polyline(points: Any, path: Path, where: str) -> FloatArray:
    try:
        xy = np.array([[float(p["x"]), float(p["y"])] for p in points])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: {where}: points must be objects with numeric x and y ({error})") from error
    if len(xy) < 2 or not np.all(np.isfinite(xy)):
        raise ValueError(f"{path}: {where}: a polyline needs at least 2 finite points")
    return xy

