"""Import OpenDRIVE maps (CARLA towns) into the lane graph through CARLA's offline parser.

``carla.Map(name, xodr_text)`` parses the file without a server. Each driving lane (a lane of one road section),
found from CARLA's topology and followed with ``Waypoint.next`` across lane ends, becomes a :class:`~sim.maps.Lane`
whose centreline is sampled from CARLA's waypoints, converted to the map frame (:mod:`sim.maps.frames`).
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
from sim.carla.sidewalks import sidewalk_walkways
from sim.geometry import FloatArray
from sim.maps.frames import from_carla_xy
from sim.maps.lane_graph import Lane, LaneGraph

LIGHT, STOP, SPEED = "1000001", "206", "274"
DEFAULT_SPEED_LIMIT_MPS = 30.0 / 3.6
_Key = tuple[int, int, int]  # road, section, lane


def load_opendrive(path: Path, *, name: str | None = None, spacing_m: float = 1.0) -> LaneGraph:
    """Read an ``.xodr`` file into a lane graph (``name`` defaults to the file's stem).

    :raises ValueError: naming the file when CARLA cannot parse it or it has no driving lanes.
    """
    carla = import_carla()
    path = Path(path)
    name = name or path.stem
    try:
        carla_map = carla.Map(name, path.read_text())
        topology = carla_map.get_topology()
    except (RuntimeError, OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: CARLA could not parse the OpenDRIVE map ({error})") from error
    if not topology:
        raise ValueError(f"{path}: no driving lanes in the OpenDRIVE map")

    # every driving lane (one road section's lane) from its start, following CARLA's own `next` at lane ends
    starts: dict[_Key, Any] = {}
    points: dict[_Key, list[Any]] = {}
    following: dict[_Key, set[_Key]] = {}
    queue = deque(waypoint for pair in topology for waypoint in pair)
    while queue:
        waypoint = queue.popleft()
        key = _key(waypoint)
        if key in starts:
            continue
        back = waypoint.previous_until_lane_start(spacing_m)
        start = back[-1] if back and _key(back[-1]) == key else waypoint
        starts[key] = start
        walk = [start, *start.next_until_lane_end(spacing_m)]
        # `next_until_lane_end` runs on across lane sections where the lane continues under another id
        changes = [i for i, w in enumerate(walk) if _key(w) != key]
        points[key] = walk[:changes[0]] if changes else walk
        ahead = [walk[changes[0]]] if changes else _next_lanes(walk[-1], key, spacing_m)
        following[key] = {_key(w) for w in ahead}
        queue.extend(ahead)
    keys = sorted(starts)
    index = {key: i for i, key in enumerate(keys)}
    successors = [{index[other] for other in following[key]} for key in keys]

    centerlines, widths = [], []
    for key in keys:
        waypoints = points[key]
        # end each lane where its successors start (the last sample may lie up to one spacing short of it)
        ends = [starts[other] for other in following[key]]
        tail = [ends[0]] if ends and all(_gap(ends[0], w) < 0.1 for w in ends) else []
        xy = from_carla_xy(np.array([[w.transform.location.x, w.transform.location.y] for w in waypoints + tail]))
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


def _next_lanes(end: Any, key: _Key, spacing_m: float) -> list[Any]:
    """Waypoints on the lanes that follow the lane ``key``, from (near) its ``end``.

    Small steps, so that a lane shorter than the sampling spacing is not stepped over.
    """
    step = 0.1
    found, frontier = [], [end]
    for _ in range(int(spacing_m / step) + 5):  # the last sampled waypoint may lie short of the lane's end
        ahead = [w for point in frontier for w in point.next(step)]
        found += [w for w in ahead if _key(w) != key]
        frontier = [w for w in ahead if _key(w) == key][:1]
        if not frontier:
            break
    return found


def _gap(a: Any, b: Any) -> float:
    return float(a.transform.location.distance(b.transform.location))


def _key(waypoint: Any) -> _Key:
    return int(waypoint.road_id), int(waypoint.section_id), int(waypoint.lane_id)


def _neighbor(waypoint: Any, index: dict[_Key, int]) -> int | None:
    if waypoint is None:
        return None
    return index.get(_key(waypoint))


def _speed_limits(carla_map: Any, keys: list[_Key], successors: list[set[int]]) -> list[float]:
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


def _controls(carla_map: Any, keys: list[_Key], index: dict[_Key, int], starts: dict[_Key, Any],
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


def _controlled_lanes(carla_map: Any, landmark: Any, index: dict[_Key, int], starts: dict[_Key, Any],
                      predecessors: list[list[int]]) -> list[int]:
    lanes = []
    for low, high in landmark.get_lane_validities():
        for lane_id in range(min(low, high), max(low, high) + 1):
            if lane_id == 0:
                continue
            waypoint = carla_map.get_waypoint_xodr(int(landmark.road_id), lane_id, float(landmark.s))
            if waypoint is None or _key(waypoint) not in index:
                continue
            lane = index[_key(waypoint)]
            lanes += predecessors[lane] if starts[_key(waypoint)].is_junction else [lane]
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
