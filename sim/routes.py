"""CARLA Leaderboard route files, and routes densified onto a lane graph.

Route XML comes in two formats: Leaderboard 1.0 (``<route id town><waypoint x y z pitch roll yaw/>…``) and 2.0
(``<route id town><waypoints><position x y z/>…</waypoints><scenarios>…``). Coordinates are CARLA's (left-handed)
and are converted to the map frame on reading. A route is densified the way the Leaderboard does it: each
waypoint is located on a lane (matching its heading where the file gives one, else the direction to the next
waypoint) and consecutive waypoints are joined by the shortest lane path.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.geometry import FloatArray
from sim.maps.frames import from_carla_xy, from_carla_yaw
from sim.maps.lane_graph import LaneGraph, LanePath, LanePiece


@dataclass(frozen=True)
class RouteSpec:
    """A route as a file gives it: map-frame waypoints ``(N, 2)`` and, for 1.0 files, their headings ``(N,)``."""

    route_id: str
    town: str
    waypoints: FloatArray
    headings: FloatArray | None
    source: Path


def read_routes(path: Path) -> list[RouteSpec]:
    """Read every ``<route>`` of a Leaderboard 1.0 or 2.0 route file.

    :raises ValueError: naming the file (and route) when the XML or a required field is malformed.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as error:
        raise ValueError(f"{path}: not a readable route XML file ({error})") from error
    routes = []
    for element in root.iter("route"):
        route_id, town = element.get("id"), element.get("town")
        if route_id is None or town is None:
            raise ValueError(f"{path}: a <route> lacks its 'id' or 'town' attribute")
        points = element.findall("waypoint") or element.findall("waypoints/position")
        if len(points) < 2:
            raise ValueError(f"{path}: route {route_id} has {len(points)} waypoints; a route needs at least 2")
        try:
            xy = np.array([[float(p.attrib["x"]), float(p.attrib["y"])] for p in points])
            yaw = [p.attrib["yaw"] for p in points if "yaw" in p.attrib]
            headings = from_carla_yaw(np.array([float(v) for v in yaw])) if len(yaw) == len(points) else None
        except (KeyError, ValueError) as error:
            raise ValueError(f"{path}: route {route_id}: a waypoint lacks a numeric x/y ({error})") from error
        routes.append(RouteSpec(route_id, town, from_carla_xy(xy), headings, path))
    if not routes:
        raise ValueError(f"{path}: no <route> elements")
    return routes


def densify(graph: LaneGraph, route: RouteSpec) -> LanePath:
    """Join a route's waypoints by shortest lane paths on ``graph`` (lane changes allowed).

    :raises ValueError: naming the route when a waypoint cannot be reached from the previous one.
    """
    points = route.waypoints
    headings = route.headings
    if headings is None:
        chords = np.diff(points, axis=0)
        headings = np.arctan2(chords[:, 1], chords[:, 0])
        headings = np.concatenate([headings, headings[-1:]])
    located = graph.locate(points, headings)
    pieces = [LanePiece(int(located.lane[0]), float(located.s_m[0]), float(located.s_m[0]))]
    for i in range(1, len(points)):
        last = pieces[-1]
        try:
            lanes = graph.shortest_path(last.lane, int(located.lane[i]), start_s_m=last.end_s_m,
                                        goal_s_m=float(located.s_m[i]))
        except ValueError as error:
            raise ValueError(f"{route.source}: route {route.route_id}: waypoint {i} cannot be reached from "
                             f"waypoint {i - 1} on map {graph.name!r}") from error
        leg = graph.leg(lanes, last.end_s_m, float(located.s_m[i]))
        pieces[-1] = LanePiece(last.lane, last.start_s_m, leg[0].end_s_m)  # the leg starts where the last ended
        pieces += leg[1:]
    return LanePath(tuple(pieces))
