"""CARLA Leaderboard route files, and routes densified onto a lane graph.

Route XML comes in two formats: Leaderboard 1.0 (``<route id town><waypoint x y z pitch roll yaw/>…``) and 2.0
(``<route id town><waypoints><position x y z/>…</waypoints><scenarios>…``). Coordinates are CARLA's (left-handed)
and are converted to the map frame on reading. A route is densified the way the Leaderboard does it: each
waypoint is located on a lane (matching its heading where the file gives one, else the direction to the next
waypoint) and consecutive waypoints are joined by the shortest lane path; :func:`lane_route` turns the path into
a scenario's route (lane ids, start and end).

A 2.0 route's ``<scenarios>`` are read as they are (:class:`RouteScenario`); :func:`route_events` turns the types
we stage into :mod:`sim.scenarios.events` at their trigger's place along the route and names the others as
unsupported, so none is dropped silently.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from sim.geometry import FloatArray, cumulative_length
from sim.maps.frames import from_carla_xy, from_carla_yaw
from sim.maps.lane_graph import LaneGraph, LanePath, LanePiece, LanePosition
from sim.scenarios.events import EVENT_TYPES, ScenarioEvent, describe


@dataclass(frozen=True)
class RouteScenario:
    """One ``<scenario name type>`` of a 2.0 route: its trigger point (map frame, heading in radians) and its
    parameters as the file gives them (``<distance value="40"/>`` → ``{"distance": "40"}``; an interval
    ``<source_dist_interval from="30" to="65"/>`` → ``"30..65"``)."""

    name: str
    type: str
    trigger_xy: FloatArray
    trigger_yaw_rad: float
    params: dict[str, str]


@dataclass(frozen=True)
class RouteSpec:
    """A route as a file gives it: map-frame waypoints ``(N, 2)`` and, for 1.0 files, their headings ``(N,)``."""

    route_id: str
    town: str
    waypoints: FloatArray
    headings: FloatArray | None
    source: Path
    scenarios: tuple[RouteScenario, ...] = ()


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
        scenarios = tuple(_read_scenario(path, route_id, e) for e in element.findall("scenarios/scenario"))
        routes.append(RouteSpec(route_id, town, from_carla_xy(xy), headings, path, scenarios))
    if not routes:
        raise ValueError(f"{path}: no <route> elements")
    return routes


def densify(graph: LaneGraph, route: RouteSpec) -> LanePath:
    """Join a route's waypoints by shortest lane paths on ``graph`` (:func:`densify_waypoints`).

    :raises ValueError: naming the file, route and waypoint when a waypoint is off the map or cannot be reached
        from the previous one.
    """
    return densify_waypoints(graph, route.waypoints, route.headings, where=f"{route.source}: route {route.route_id}")


#: A waypoint farther than this from every lane's centreline (among lanes in its direction) is off the map.
OFF_MAP_M = 5.0
#: What placing a waypoint on a lane whose centreline passes beside it costs, in metres of driving per metre to
#: the side, and on a lane running against its heading, in metres (half that for a lane across it): they decide
#: between the lanes a waypoint lies on where these lead on equally well.
LATERAL_COST = 5.0
HEADING_COST_M = 20.0


def densify_waypoints(graph: LaneGraph, waypoints: FloatArray, headings_rad: FloatArray | None = None, *,
                      where: str = "waypoints") -> LanePath:
    """Join waypoints ``(N, 2)`` (map frame, metres) by shortest lane paths on ``graph`` (lane changes allowed).

    Each waypoint goes on the nearest lane whose direction is within 90 degrees of its heading (``headings_rad``
    ``(N,)`` where given, else the direction to the next waypoint) or on another lane it lies on (within half the
    lane's width of its centreline). Which one is chosen with the whole route in mind, as CARLA's route planner
    does: the lanes of the shortest path through all the waypoints, each metre from a waypoint to its lane's
    centreline costing ``LATERAL_COST`` metres and a lane against its heading ``HEADING_COST_M`` (a Viterbi
    choice). Where junction connectors overlap, a waypoint goes on the one the route comes from the previous
    waypoint and goes on to the next by, not on the nearest; where roads cross without meeting (an overpass), on
    the one the route drives even when the file's heading names the other.

    :raises ValueError: starting with ``where``, naming the waypoint by its index when it lies more than
        ``OFF_MAP_M`` from such a lane or cannot be reached from the waypoint before it.
    """
    points = np.asarray(waypoints, dtype=np.float64)
    if headings_rad is None:
        chords = np.diff(points, axis=0)
        headings_rad = np.arctan2(chords[:, 1], chords[:, 0])
        headings_rad = np.concatenate([headings_rad, headings_rad[-1:]])
    candidates, placing = zip(*(_lanes_under(graph, points, headings_rad, i, where) for i in range(len(points))),
                              strict=True)
    # cost: the cheapest path to each candidate of the waypoint; links: for each waypoint after the first, the
    # candidate before that cheapest path comes from and the lanes from there to each candidate
    cost = placing[0]
    links: list[list[tuple[int, list[int]]]] = []
    for i in range(1, len(points)):
        before, here = candidates[i - 1], candidates[i]
        goals = [(int(lane), float(s_m)) for lane, s_m in zip(here.lane, here.s_m, strict=True)]
        reached = np.full(len(goals), np.inf)
        link: list[tuple[int, list[int]]] = [(-1, [])] * len(goals)
        for j in np.flatnonzero(np.isfinite(cost)):
            paths = graph.shortest_paths(int(before.lane[j]), goals, start_s_m=float(before.s_m[j]))
            for k, found in enumerate(paths):
                if found is not None and cost[j] + found[0] < reached[k]:
                    reached[k], link[k] = cost[j] + found[0], (int(j), found[1])
        if not np.isfinite(reached).any():
            raise ValueError(f"{where}: waypoint {i} cannot be reached from waypoint {i - 1} on map "
                             f"{graph.name!r}")
        cost = reached + placing[i]
        links.append(link)
    chosen = [int(np.argmin(cost))]
    for link in reversed(links):
        chosen.append(link[chosen[-1]][0])
    chosen.reverse()
    first = candidates[0]
    pieces = [LanePiece(int(first.lane[chosen[0]]), float(first.s_m[chosen[0]]), float(first.s_m[chosen[0]]))]
    for i in range(1, len(points)):
        last = pieces[-1]
        lanes = links[i - 1][chosen[i]][1]
        leg = graph.leg(lanes, last.end_s_m, float(candidates[i].s_m[chosen[i]]))
        pieces[-1] = LanePiece(last.lane, last.start_s_m, leg[0].end_s_m)  # the leg starts where the last ended
        pieces += leg[1:]
    return LanePath(tuple(pieces))


def _lanes_under(graph: LaneGraph, points: FloatArray, headings_rad: FloatArray, i: int,
                 where: str) -> tuple[LanePosition, FloatArray]:
    """The lanes waypoint ``i`` may go on (:func:`densify_waypoints`), and what placing it on each costs.

    :raises ValueError: when it is off the map.
    """
    point, heading_rad = points[i], float(headings_rad[i])
    ahead, ahead_heading_rad = graph.lanes_near(point, heading_rad, within_m=OFF_MAP_M)
    if not len(ahead.lane):
        distance_m = abs(float(graph.locate(points[i : i + 1], headings_rad[i : i + 1]).lateral_m[0]))
        raise ValueError(f"{where}: waypoint {i} at ({point[0]:.1f}, {point[1]:.1f}) is off map {graph.name!r}: "
                         f"{distance_m:.1f} m from the nearest lane in its direction (at most {OFF_MAP_M} m)")
    near, near_heading_rad = graph.lanes_near(point, within_m=OFF_MAP_M)
    half_width_m = np.array([graph.lanes[lane].width_m / 2 for lane in near.lane])
    under = (np.abs(near.lateral_m) <= half_width_m) & (near.lane != ahead.lane[0])
    lanes = LanePosition(*(np.concatenate([a[:1], b[under]]) for a, b in zip(ahead, near, strict=True)))
    lane_heading_rad = np.concatenate([ahead_heading_rad[:1], near_heading_rad[under]])
    cost = LATERAL_COST * np.abs(lanes.lateral_m) + HEADING_COST_M * (1 - np.cos(lane_heading_rad - heading_rad)) / 2
    return lanes, cost


def lane_route(graph: LaneGraph, path: LanePath) -> tuple[tuple[int, ...], float, float]:
    """A densified path as a scenario's route: its lane ids, and where it starts and ends as arc lengths along
    the path those lane ids stand for (:meth:`~sim.maps.LaneGraph.route_path`).

    That path changes lanes where it enters a lane, not where ``path`` does, so arc lengths differ after a lane
    change; the end is placed by its distance before the last lane's end. A path that changes lanes on its first
    lane (which the world would do at once) begins on the lane it changes to, as far along it (by fraction of
    length) as it starts on the first.
    """
    lanes = list(path.lanes)
    start_s_m = path.pieces[0].start_s_m
    while len(lanes) > 1 and lanes[1] not in graph.lanes[lanes[0]].successors:  # a lane change: start beside
        start_s_m *= graph.lanes[lanes[1]].length_m / graph.lanes[lanes[0]].length_m
        lanes.pop(0)
    route = graph.route_path(lanes)
    last_length_m = graph.lanes[lanes[-1]].length_m
    total_m = float(cumulative_length(route.polyline(graph))[-1])
    end_s_m = total_m - (last_length_m - max(path.pieces[-1].end_s_m, route.pieces[-1].start_s_m))
    return tuple(lanes), start_s_m, end_s_m


def _read_scenario(path: Path, route_id: str, element: ET.Element) -> RouteScenario:
    name, kind = element.get("name"), element.get("type")
    trigger = element.find("trigger_point")
    if name is None or kind is None or trigger is None:
        raise ValueError(f"{path}: route {route_id}: a <scenario> lacks its name, type or <trigger_point>")
    try:
        xy = from_carla_xy(np.array([[float(trigger.attrib["x"]), float(trigger.attrib["y"])]]))[0]
        yaw = float(from_carla_yaw(np.array([float(trigger.attrib.get("yaw", 0.0))]))[0])
    except (KeyError, ValueError) as error:
        raise ValueError(f"{path}: route {route_id}: scenario {name}: the trigger point lacks a numeric x/y "
                         f"({error})") from error
    params = {}
    for child in element:
        if child.tag == "trigger_point":
            continue
        if "value" in child.attrib:
            params[child.tag] = child.attrib["value"]
        elif "from" in child.attrib and "to" in child.attrib:
            params[child.tag] = f"{child.attrib['from']}..{child.attrib['to']}"
    return RouteScenario(name, kind, xy, yaw, params)


#: A flow's route-XML parameters (the Leaderboard's flows also give their source and sink points, which we place
#: by the junction's lanes instead).
_FLOW = {"flow_speed": "flow_speed_mps", "source_dist_interval": "source_dist_interval_m"}
#: Route-XML parameters of the staged types, and the event fields they set.
_PARAMETERS: dict[str, dict[str, str]] = {
    "PedestrianCrossing": {},
    "DynamicObjectCrossing": {"distance": "distance_m", "direction": "direction"},
    "VehicleTurningRoutePedestrian": {},
    "HardBreakRoute": {},
    "OppositeVehicleRunningRedLight": {"direction": "direction"},
    "OppositeVehicleTakingPriority": {"direction": "direction"},
    "ParkingCutIn": {"direction": "direction"},
    "ParkedObstacle": {"distance": "distance_m"},
    "Accident": {"distance": "distance_m"},
    "ConstructionObstacle": {"distance": "distance_m"},
    "StaticCutIn": {"distance": "distance_m", "direction": "direction"},
    "ParkingCrossingPedestrian": {"distance": "distance_m", "direction": "direction"},
    "VehicleOpensDoorTwoWays": {"distance": "distance_m", "direction": "direction"},
    "HazardAtSideLane": {"distance": "distance_m", "bicycle_speed": "bicycle_speed_kmh",
                         "bicycle_drive_distance": "bicycle_drive_distance_m"},
    "EnterActorFlow": _FLOW,
    "HighwayExit": _FLOW,
    "HighwayCutIn": {},
    "ControlLoss": {},
    "SequentialLaneChange": {},
    "SignalizedJunctionLeftTurn": {"flow_speed": "flow_speed_mps", "source_dist_interval": "source_dist_interval_m"},
    "SignalizedJunctionRightTurn": {"flow_speed": "flow_speed_mps", "source_dist_interval": "source_dist_interval_m"},
    "NonSignalizedJunctionLeftTurn": {"flow_speed": "flow_speed_mps",
                                      "source_dist_interval": "source_dist_interval_m"},
    "NonSignalizedJunctionRightTurn": _FLOW,
    "SignalizedJunctionLeftTurnEnterFlow": _FLOW,
    "NonSignalizedJunctionLeftTurnEnterFlow": _FLOW,
    "InterurbanActorFlow": _FLOW,
    "InterurbanAdvancedActorFlow": _FLOW,
    "CrossingBicycleFlow": _FLOW,
    "VehicleTurningRoute": {},
    "BlockedIntersection": {},
    "PriorityAtJunction": {},
    "VanillaSignalizedTurnEncounterGreenLight": {},
    "VanillaSignalizedTurnEncounterRedLight": {},
    "VanillaNonSignalizedTurn": {},
    "VanillaNonSignalizedTurnEncounterStopsign": {},
    "T_Junction": {},
    "YieldToEmergencyVehicle": {"distance": "distance_m"},
    "InvadingTurn": {"distance": "distance_m", "offset": "offset"},
    "ParkingExit": {"direction": "direction", "front_vehicle_distance": "front_vehicle_distance_m",
                    "behind_vehicle_distance": "behind_vehicle_distance_m"},
}
#: Leaderboard types staged as another (the ``…TwoWays`` variants pass through the oncoming lane, which our
#: obstacle events do wherever the lane to the left is the oncoming one).
_ALIASES = {"ParkedObstacleTwoWays": "ParkedObstacle", "AccidentTwoWays": "Accident",
            "ConstructionObstacleTwoWays": "ConstructionObstacle",
            # the bicycles are the same; the ego keeps behind them or passes them where the road lets it
            "HazardAtSideLaneTwoWays": "HazardAtSideLane",
            # a flow in the lane the ego enters, whatever its speed (the files give it) and however many lanes run
            # beside it (ours flow in one)
            "EnterActorFlowV2": "EnterActorFlow", "MergerIntoSlowTraffic": "EnterActorFlow",
            "MergerIntoSlowTrafficV2": "EnterActorFlow",
            # Bench2Drive's ``…Long`` variants are the same situations on longer routes
            "VanillaSignalizedTurnEncounterGreenLightLong": "VanillaSignalizedTurnEncounterGreenLight",
            "VanillaSignalizedTurnEncounterRedLightLong": "VanillaSignalizedTurnEncounterRedLight",
            "VanillaNonSignalizedTurnEncounterStopsignLong": "VanillaNonSignalizedTurnEncounterStopsign"}


def route_events(route: RouteSpec, polyline: FloatArray) -> tuple[tuple[ScenarioEvent, ...], tuple[str, ...]]:
    """The route's scenarios as events on ``polyline`` (the densified route, map frame) and the ones we do not
    stage, as ``"name (type)"``.

    Each trigger point goes to the nearest place along the polyline (to 1 cm). Parameters we have no field for
    are ignored (model names, for instance); a parameter we map but cannot read is an error.

    :raises ValueError: naming the file, route and scenario when a parameter is invalid.
    """
    events: list[ScenarioEvent] = []
    unsupported = []
    for scenario in route.scenarios:
        kind = _ALIASES.get(scenario.type, scenario.type)
        if kind not in EVENT_TYPES:
            unsupported.append(f"{scenario.name} ({scenario.type})")
            continue
        fields: dict[str, object] = {"trigger_s_m": round(project_onto(polyline, scenario.trigger_xy)[0], 2),
                                     "name": scenario.name}
        for param, field in _PARAMETERS[kind].items():
            if param in scenario.params:
                value = scenario.params[param]  # a range ("from..to") is a pair
                fields[field] = tuple(value.split("..", 1)) if isinstance(value, str) and ".." in value else value
        try:
            events.append(EVENT_TYPES[kind].model_validate(fields))  # type: ignore[arg-type]
        except ValidationError as error:
            raise ValueError(f"{route.source}: route {route.route_id}: scenario {scenario.name}: "
                             f"{describe(error)}") from error
    return tuple(events), tuple(unsupported)


def project_onto(polyline: FloatArray, xy: FloatArray) -> tuple[float, float]:
    """The point of ``polyline`` nearest to ``xy``: its arc length and its distance from ``xy`` (metres)."""
    s = cumulative_length(polyline)
    a, b = polyline[:-1], polyline[1:]
    d = b - a
    length2 = np.maximum(np.sum(d * d, axis=1), 1e-12)
    t = np.clip(np.sum((xy - a) * d, axis=1) / length2, 0.0, 1.0)
    distance = np.linalg.norm(a + t[:, None] * d - xy, axis=1)
    k = int(np.argmin(distance))
    return float(s[k] + t[k] * np.sqrt(length2[k])), float(distance[k])
