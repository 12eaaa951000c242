"""The pedestrian network of an OpenDRIVE map (a CARLA town): its sidewalk lanes and crosswalks.

Every sidewalk lane (lane type Sidewalk) that lies beside a driving lane, reached from the driving lane's
waypoints with ``get_right_lane`` (outward on both sides of a road), is sampled along its centreline from its
start to its end (:mod:`sim.carla.lane_walk`); :func:`sim.maps.walkways.walk_network` joins the sidewalks at
corners and across the crosswalks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sim.carla import import_carla
from sim.carla.lane_walk import LaneKey, lane_key, lane_start, lane_walk
from sim.geometry import FloatArray
from sim.maps.frames import from_carla_xy
from sim.maps.lane_graph import Lane, Walkway
from sim.maps.walkways import crosswalk_axis, walk_network

#: Lanes between a driving lane and its sidewalk (shoulders, parking, bike lanes) looked through.
_MAX_LANES_OUT = 8


def sidewalk_walkways(carla_map: Any, lanes: tuple[Lane, ...], crosswalks: tuple[FloatArray, ...],
                      spacing_m: float = 1.0) -> tuple[Walkway, ...]:
    """Walkways along the sidewalks of ``carla_map`` and across its ``crosswalks`` (polygons in the map frame);
    ``lanes`` are the map's driving lanes, which give each crosswalk its direction."""
    sidewalk = import_carla().LaneType.Sidewalk
    found: dict[LaneKey, Any] = {}
    for waypoint in carla_map.generate_waypoints(2.0 * spacing_m):
        side = waypoint
        for _ in range(_MAX_LANES_OUT):
            side = side.get_right_lane()
            if side is None:
                break
            if side.lane_type == sidewalk:
                found.setdefault(lane_key(side), side)
                break
    sidewalks = [_centreline(waypoint, spacing_m) for _, waypoint in sorted(found.items())]
    lines = [crosswalk_axis(lanes, polygon) for polygon in crosswalks]
    return walk_network([line for line in sidewalks if len(line) >= 2], lines)


def _centreline(waypoint: Any, spacing_m: float) -> FloatArray:
    """The centreline of ``waypoint``'s lane (one lane section), from its start to its end."""
    walk = lane_walk(lane_start(waypoint, spacing_m), spacing_m)
    xy = from_carla_xy(np.array([[w.transform.location.x, w.transform.location.y] for w in walk]))
    keep = np.concatenate([[True], np.linalg.norm(np.diff(xy, axis=0), axis=1) > 1e-3])
    line: FloatArray = xy[keep]
    return line
