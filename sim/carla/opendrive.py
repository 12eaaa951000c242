"""Import OpenDRIVE maps (CARLA towns) into the lane graph through CARLA's offline parser.

``carla.Map(name, xodr_text)`` parses the file without a server, in a child process (a map that crashes the native
parser is an error, not the caller's death). Each driving lane (a lane of one road section),
found from CARLA's topology and waypoints and followed with ``Waypoint.next`` across lane ends
(:mod:`sim.carla.lane_walk`), becomes a :class:`~sim.maps.Lane` whose centreline is sampled from CARLA's
waypoints, converted to the map frame (:mod:`sim.maps.frames`).
Successors are the lanes ``next`` reaches from a lane's end (CARLA's topology pairs also link lanes that split
mid-lane, which are lane changes, not successions); neighbours come from
``get_left_lane``/``get_right_lane``; speed limits from speed-sign landmarks (type 274, km/h), inherited along
successors where a road has none; traffic lights (type 1000001) and stop signs (type 206) control the lanes they
are valid for: the lane's own end, or, when the sign stands on a junction connector, the ends of the lanes that
lead into it. Crosswalks come from ``get_crosswalks``; the drivable area is the union of the lanes' quads; the
pedestrian network is the town's sidewalk lanes joined across its crosswalks (:mod:`sim.carla.sidewalks`).
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from sim.carla import import_carla
from sim.carla.crash_guard import run_guarded
from sim.carla.lane_walk import LaneKey, following_lanes, lane_key, lane_start, lane_walk
from sim.carla.sidewalks import sidewalk_walkways
from sim.geometry import FloatArray
from sim.maps.frames import from_carla_xy
from sim.maps.lane_graph import Lane, LaneGraph

LIGHT, STOP, SPEED = "1000001", "206", "274"
DEFAULT_SPEED_LIMIT_MPS = 30.0 / 3.6


def load_opendrive(path: Path, *, name: str | None = None, spacing_m: float = 1.0) -> LaneGraph:
    """Read an ``.xodr`` file into a lane graph (``name`` defaults to the file's stem), in a child process
    (:func:`sim.carla.crash_guard.run_guarded`): a map that crashes CARLA's native parser fails with an error.

    :raises ValueError: naming the file when CARLA cannot parse it, crashes on it, or it has no driving lanes.
    """
    path = Path(path)
    return run_guarded(f"the carla parser crashed on {path}", _read_opendrive, path, name=name, spacing_m=spacing_m)


def _read_opendrive(path: Path, *, name: str | None, spacing_m: float) -> LaneGraph:
    """:func:`load_opendrive` in this process."""
    carla = import_carla()
    name = name or path.stem
    try:
        carla_map = carla.Map(name, path.read_text())
        # the topology's pairs start and end lanes, but leave out a lane that leads nowhere and that no pair ends;
        # waypoints sampled along every lane list those
        seeds = [*(waypoint for pair in carla_map.get_topology() for waypoint in pair),
                 *carla_map.generate_waypoints(spacing_m)]
    except (RuntimeError, OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: CARLA could not parse the OpenDRIVE map ({error})") from error
    if not seeds:
        raise ValueError(f"{path}: no driving lanes in the OpenDRIVE map")

    # every driving lane (one road section's lane) from its start, following CARLA's own `next` at lane ends
    starts: dict[LaneKey, Any] = {}
    points: dict[LaneKey, list[Any]] = {}
    following: dict[LaneKey, set[LaneKey]] = {}
    queue = deque(seeds)
    while queue:
        waypoint = queue.popleft()
        key = lane_key(waypoint)
        if key in starts:
            continue
        starts[key] = lane_start(waypoint, spacing_m)
        points[key] = lane_walk(starts[key], spacing_m)
        ahead = following_lanes(points[key][-1])
        following[key] = {lane_key(w) for w in ahead}
        queue.extend(ahead)
    keys = sorted(starts)
    index = {key: i for i, key in enumerate(keys)}
    successors = [{index[other] for other in following[key]} for key in keys]

    centerlines, widths = [], []
    for key in keys:
        waypoints = points[key]
        # end each lane where its successors start: that point replaces the walk's end (within millimetres of it)
        ends = [starts[other] for other in following[key]]
        if ends and all(_gap(ends[0], w) < 0.1 for w in ends):
            line = [*waypoints[:max(len(waypoints) - 1, 1)], ends[0]]
        else:
            line = waypoints
        xy = from_carla_xy(np.array([[w.transform.location.x, w.transform.location.y] for w in line]))
        keep = np.concatenate([[True], np.linalg.norm(np.diff(xy, axis=0), axis=1) > 1e-3])
        xy = xy[keep]
        if len(xy) < 2:  # a lane shorter than the spacing: extend along its heading
            yaw = -np.radians(waypoints[0].transform.rotation.yaw)
            xy = np.stack([xy[0], xy[0] + 0.1 * np.array([np.cos(yaw), np.sin(yaw)])])
        centerlines.append(xy)
        widths.append(float(np.median([w.lane_width for w in waypoints])))

    speed = _speed_limits(carla_map, keys, successors)
    light_of, stop_at = _controls(carla_map, keys, index, starts, successors)
    light_groups = sorted(set(light_of.values()))
    group_index = {landmark: i for i, landmark in enumerate(light_groups)}

    lanes = []
    for i, key in enumerate(keys):
        start = starts[key]
        lanes.append(Lane(
            lane_id=i,
            centerline=centerlines[i],
            width_m=widths[i],
            successors=tuple(sorted(successors[i])),
            is_junction=bool(start.is_junction),
            speed_limit_mps=speed[i],
            light_group=group_index[light_of[i]] if i in light_of else None,
            stop_sign=i in stop_at,
            left_neighbor=_neighbor(start.get_left_lane(), index),
            right_neighbor=_neighbor(start.get_right_lane(), index),
            junction_id=int(start.junction_id) if start.is_junction else None,
            source_id=f"road {key[0]} section {key[1]} lane {key[2]}",
        ))
    polygons = tuple(quad for lane in lanes for quad in _lane_quads(lane))
    crosswalks = _crosswalks(carla_map)
    every = np.concatenate([np.concatenate(lane.boundaries()) for lane in lanes]
                           + [c for c in crosswalks])
    low, high = every.min(axis=0) - 5.0, every.max(axis=0) + 5.0
    return LaneGraph(
        name=name,
        lanes=tuple(lanes),
        bounds_m=(float(low[0]), float(low[1]), float(high[0]), float(high[1])),
        drivable_polygons=polygons,
        light_groups=len(light_groups),
        crosswalks=crosswalks,
        walkways=sidewalk_walkways(carla_map, tuple(lanes), crosswalks, spacing_m),
        light_sources=tuple(light_groups),
    )


def _gap(a: Any, b: Any) -> float:
    return float(a.transform.location.distance(b.transform.location))


def _neighbor(waypoint: Any, index: dict[LaneKey, int]) -> int | None:
    if waypoint is None:
        return None
    return index.get(lane_key(waypoint))


def _speed_limits(carla_map: Any, keys: list[LaneKey], successors: list[set[int]]) -> list[float]:
    """Per lane: the speed sign on its road, else the nearest upstream lane's limit, else 30 km/h."""
    by_road: dict[int, float] = {}
    for landmark in carla_map.get_all_landmarks_of_type(SPEED):
        by_road.setdefault(int(landmark.road_id), float(landmark.value) / 3.6)
    speed: list[float | None] = [by_road.get(key[0]) for key in keys]
    queue = deque(i for i, value in enumerate(speed) if value is not None)
    while queue:
        lane = queue.popleft()
        for succ in successors[lane]:
            if speed[succ] is None:
                speed[succ] = speed[lane]
                queue.append(succ)
    return [DEFAULT_SPEED_LIMIT_MPS if value is None else value for value in speed]


def _controls(carla_map: Any, keys: list[LaneKey], index: dict[LaneKey, int], starts: dict[LaneKey, Any],
              successors: list[set[int]]) -> tuple[dict[int, str], set[int]]:
    """Lanes whose end a traffic light controls (lane -> light landmark id), and lanes ending at a stop sign."""
    predecessors: list[list[int]] = [[] for _ in keys]
    for lane, succs in enumerate(successors):
        for succ in succs:
            predecessors[succ].append(lane)
    light_of: dict[int, str] = {}
    stop_at: set[int] = set()
    for kind in (LIGHT, STOP):
        for landmark in carla_map.get_all_landmarks_of_type(kind):
            for lane in _controlled_lanes(carla_map, landmark, index, starts, predecessors):
                if kind == LIGHT:
                    light_of.setdefault(lane, str(landmark.id))
                else:
                    stop_at.add(lane)
    return light_of, stop_at


def _controlled_lanes(carla_map: Any, landmark: Any, index: dict[LaneKey, int], starts: dict[LaneKey, Any],
                      predecessors: list[list[int]]) -> list[int]:
    lanes = []
    for low, high in landmark.get_lane_validities():
        for lane_id in range(min(low, high), max(low, high) + 1):
            if lane_id == 0:
                continue
            waypoint = carla_map.get_waypoint_xodr(int(landmark.road_id), lane_id, float(landmark.s))
            if waypoint is None or lane_key(waypoint) not in index:
                continue
            lane = index[lane_key(waypoint)]
            lanes += predecessors[lane] if starts[lane_key(waypoint)].is_junction else [lane]
    return lanes


def _lane_quads(lane: Lane) -> list[FloatArray]:
    left, right = lane.boundaries()
    return [np.stack([left[i], left[i + 1], right[i + 1], right[i]]) for i in range(len(left) - 1)]


def _crosswalks(carla_map: Any) -> tuple[FloatArray, ...]:
    """CARLA lists crosswalk vertices flat, each polygon closed by repeating its first vertex."""
    points = [(p.x, p.y) for p in carla_map.get_crosswalks()]
    polygons: list[FloatArray] = []
    current: list[tuple[float, float]] = []
    for point in points:
        if current and np.allclose(point, current[0]):
            if len(current) >= 3:
                polygons.append(from_carla_xy(np.array(current)))
            current = []
        else:
            current.append(point)
    return tuple(polygons)
