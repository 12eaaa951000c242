"""A CARLA world's scene: what a CARLA client reads of the server each tick, written into a
:class:`~sim.scene.records.Scene` over the town's lane graph, so that the observation, the privileged facts and the
infractions are the scene's own readers (:mod:`sim.scene`), the same as in the embedded simulator.

A :class:`Snapshot` holds what the client read, in CARLA's own types and frame (``carla.Transform``,
``carla.BoundingBox``, ``carla.Vector3D``; left-handed, yaw in degrees clockwise): the ego, every other actor
(ground truth, as privileged experts read it through the scenario runner's data provider) and the traffic lights'
states by OpenDRIVE signal id. :class:`CarlaScene` turns it into the scene of one ego (``B = 1``):

- poses become map-frame box centres (the bounding box's offset from the actor's origin applied);
- ``vehicle.*`` actors take the vehicle slots; each is placed on the lane it drives (the lane under its centre
  that it heads along, preferring the lane it was on or one that follows it), with its position and lateral offset
  on that lane; the lanes it takes next come from its planned points when the client knows them (the Traffic
  Manager's next actions) and otherwise continue straightest. A vehicle standing still is parked when it is
  off its lane's centre by more than :data:`PARKED_OFFSET_M`, on no lane, or has nothing to wait for (no junction,
  light or stop sign and nobody in its lane within :data:`WAIT_REACH_M` ahead). Emergency vehicles (ambulance,
  fire truck, police car) carry the emergency flag; the first one seen is the scenario's emergency vehicle;
- ``walker.*`` actors take the pedestrian slots (whether one is on the road is the scene's occupancy's to say);
- everything else with a bounding box (``static.*`` props, parked cars placed as props) takes the obstacle slots;
- a vehicle that stops at a stop sign's line is served there, as in the embedded world's traffic (first come,
  first served at all-way stops);
- traffic lights map to the lane graph's light groups by their OpenDRIVE signal id
  (:attr:`~sim.maps.LaneGraph.light_sources`); ``Off`` and ``Unknown`` read as green.

Actors keep their slot for as long as they are seen (the collision rules count once per actor slot). Slots are
finite: actors beyond them are left out, the farthest from the ego first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.maps import LaneGraph
from sim.maps.compiled import MapArrays, compile_map
from sim.maps.frames import from_carla_yaw
from sim.scene import codes
from sim.scene.kernels.geometry import locate
from sim.scene.kernels.view import read_scene
from sim.scene.params import Params
from sim.scene.records import ActorKind, Scene, allocate_scene
from sim.scene.route_path import RoutePath, write_route
from sim.scene.source import SceneViews

#: A vehicle standing still farther than this from its lane's centre (or on no lane) is parked.
PARKED_OFFSET_M = 1.0
#: A vehicle standing still with nothing to wait for this close ahead of its front (its lane's end at a junction,
#: a light or a stop sign; someone in its lane) is parked.
WAIT_REACH_M = 12.0
#: A vehicle is on a lane that heads within this angle of its own heading.
HEADING_TOLERANCE_RAD = math.radians(50.0)
#: Below this speed a vehicle stands still.
STANDING_MPS = 0.1
#: Type ids of emergency vehicles (CARLA 0.9.15/0.9.16 blueprints).
EMERGENCY_TYPES = ("vehicle.ford.ambulance", "vehicle.carlamotors.firetruck", "vehicle.dodge.charger_police",
                   "vehicle.dodge.charger_police_2020")
_LIGHT_STATES = {"Red": codes.RED, "Yellow": codes.YELLOW, "Green": codes.GREEN, "Off": codes.GREEN,
                 "Unknown": codes.GREEN}


@dataclass(frozen=True)
class ActorView:
    """One actor as the client reads it.

    :param actor_id: the server's actor id (keeps the actor in its slot).
    :param type_id: its blueprint (``vehicle.*``, ``walker.*``, ``static.*``, ...).
    :param transform: ``carla.Transform`` of its origin.
    :param bounding_box: ``carla.BoundingBox`` relative to the origin (extent: half sizes).
    :param velocity: ``carla.Vector3D``, m/s.
    :param planned: ``carla.Location`` points on its way ahead, when known (the Traffic Manager's next actions).
    """

    actor_id: int
    type_id: str
    transform: Any
    bounding_box: Any
    velocity: Any
    planned: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """What the client read of the world in one tick.

    :param time_s: since the route's start.
    :param ego: the ego vehicle (its ``planned`` is not used).
    :param ego_acceleration: ``carla.Vector3D``, m/s².
    :param ego_steer_rad: the front wheels' angle, left positive (:func:`steer_from_carla`).
    :param actors: every other actor.
    :param lights: traffic-light states (``carla.TrafficLightState`` or its name) by OpenDRIVE signal id.
    """

    time_s: float
    ego: ActorView
    ego_acceleration: Any
    ego_steer_rad: float
    actors: Sequence[ActorView]
    lights: Mapping[str, Any]


def steer_from_carla(wheel_angle_deg: float) -> float:
    """CARLA's front-wheel steering angle (degrees, positive to the right) as the scene's (radians, left +)."""
    return -math.radians(wheel_angle_deg)


def box_pose(transform: Any, bounding_box: Any) -> tuple[float, float, float, float, float]:
    """Map-frame ``(x, y, yaw, length, width)`` of an actor's box: its centre (the box's offset from the actor's
    origin applied), heading and full sizes."""
    centre = transform.transform(bounding_box.location)
    yaw = float(from_carla_yaw(transform.rotation.yaw))
    return float(centre.x), -float(centre.y), yaw, 2.0 * float(bounding_box.extent.x), \
        2.0 * float(bounding_box.extent.y)


def _along(vector: Any, yaw_rad: float) -> float:
    """A CARLA vector's component along a map-frame heading."""
    return float(vector.x) * math.cos(yaw_rad) - float(vector.y) * math.sin(yaw_rad)


class CarlaScene(SceneViews):
    """The scene of one ego in a CARLA world: a :class:`~sim.scene.source.SceneSource` the observation and the expert
    read, filled from :class:`Snapshot` s.

    :param lane_graph: the town's lane graph (the OpenDRIVE map the server runs, :mod:`sim.carla.opendrive`).
    :param params: the rules the scene is read by (the ego's size and steering limit among them).
    :param vehicles: vehicle slots; ``pedestrians`` and ``statics`` likewise.
    """

    batch_size = 1

    def __init__(self, lane_graph: LaneGraph, params: Params, *, vehicles: int = 64, pedestrians: int = 64,
                 statics: int = 32, route_points: int = 4096, pieces: int = 256, lines: int = 64) -> None:
        self.map = lane_graph
        self.params = params
        self.arrays: MapArrays = compile_map(lane_graph)
        self.slots = (vehicles, pedestrians, statics)
        self.scene: Scene = allocate_scene(1, vehicles, pedestrians, statics, lane_graph.light_groups, route_points,
                                           pieces, lines)
        self._light_group = {source: group for group, source in enumerate(lane_graph.light_sources)}
        self._slot_of: dict[int, int] = {}
        self._lane_of: dict[int, tuple[int, int, float, float]] = {}  # actor id: lane, next lane, where, when
        self._started = False
        self._looked = False

    # ------------------------------------------------------------------ a route
    def start(self, route: RoutePath, *, timeout_s: float, start_m: float = 0.0, end_m: float | None = None) -> None:
        """Begin a route: the ego drives ``route`` from ``start_m`` to ``end_m`` (default: its end) within
        ``timeout_s``. Everything read of the last route is forgotten; the mission (curbside stops) is empty
        until the caller writes it into :attr:`scene`."""
        sc = self.scene
        end = route.length_m if end_m is None else end_m
        if not 0.0 <= start_m < end <= route.length_m + 1e-6:
            raise ValueError(f"route spans 0..{route.length_m:.1f} m; start {start_m} and end {end} must satisfy "
                             f"0 <= start < end <= length")
        if len(route.points) > sc.route.x_m.shape[1] or len(route.pieces) > sc.route.piece_lane.shape[1] \
                or len(route.lines) > sc.route.line_s_m.shape[1]:
            raise ValueError(f"route of {len(route.points)} points, {len(route.pieces)} lanes and {len(route.lines)} "
                             f"stop lines does not fit this scene (route_points, pieces, lines)")
        fresh = allocate_scene(1, *self.slots, self.map.light_groups, sc.route.x_m.shape[1],
                               sc.route.piece_lane.shape[1], sc.route.line_s_m.shape[1])
        write_route(fresh, 0, route, start_m, end)
        fresh.outcome.timeout_s[0] = timeout_s
        self.scene = fresh
        self._slot_of.clear()
        self._lane_of.clear()
        self._started, self._looked = True, False

    # ------------------------------------------------------------------ a tick
    def update(self, snapshot: Snapshot) -> None:
        """Fill the scene from ``snapshot`` and read it: the first update of a route looks only (as a world does
        after a reset); every later one also counts infractions and ends the route where it ends."""
        if not self._started:
            raise RuntimeError("CarlaScene.update before start(route)")
        sc = self.scene
        sc.time_s[0] = snapshot.time_s
        sc.outcome.ev_n[0] = 0
        self._ego(snapshot)
        self._actors(snapshot.actors)
        self._lights(snapshot.lights)
        read_scene(self.arrays, sc, self.params, 0, self._looked)
        self._looked = True

    def _ego(self, snapshot: Snapshot) -> None:
        ego, view = self.scene.ego, snapshot.ego
        x, y, yaw, _, _ = box_pose(view.transform, view.bounding_box)
        ego.x_m[0], ego.y_m[0], ego.yaw_rad[0] = x, y, yaw
        ego.speed_mps[0] = max(_along(view.velocity, yaw), 0.0)
        ego.steer_rad[0] = snapshot.ego_steer_rad
        ego.accel_mps2[0] = _along(snapshot.ego_acceleration, yaw)

    def _actors(self, views: Sequence[ActorView]) -> None:
        sc = self.scene
        v_slots, p_slots, s_slots = self.slots
        ranges = {ActorKind.VEHICLE: range(0, v_slots), ActorKind.PEDESTRIAN: range(v_slots, v_slots + p_slots),
                  ActorKind.STATIC: range(v_slots + p_slots, v_slots + p_slots + s_slots)}
        ex, ey = sc.ego.x_m[0], sc.ego.y_m[0]
        by_kind: dict[int, list[tuple[ActorView, tuple[float, float, float, float, float]]]] = {k: [] for k in ranges}
        for view in views:
            pose = box_pose(view.transform, view.bounding_box)
            by_kind[_kind(view.type_id)].append((view, pose))
        seen: set[int] = set()
        placed: list[tuple[int, ActorView]] = []
        for kind, found in by_kind.items():
            found.sort(key=lambda item: (item[1][0] - ex) ** 2 + (item[1][1] - ey) ** 2)
            held = set(self._slot_of.values())
            free = [n for n in ranges[kind] if n not in held]
            for view, pose in found:
                slot = self._slot_of.get(view.actor_id)
                if slot is None or slot not in ranges[kind]:
                    if not free:
                        continue
                    slot = self._slot_of[view.actor_id] = free.pop(0)
                seen.add(view.actor_id)
                self._place(slot, kind, view, pose)
                if kind == ActorKind.VEHICLE:
                    placed.append((slot, view))
        for actor_id in [a for a in self._slot_of if a not in seen]:
            slot = self._slot_of.pop(actor_id)
            self._lane_of.pop(actor_id, None)
            sc.actors.valid[0, slot] = False
            sc.actors.kind[0, slot] = ActorKind.NONE
        taken = set(self._slot_of.values())
        for slot in range(sc.actors.valid.shape[1]):
            if slot not in taken:
                sc.actors.valid[0, slot] = False
        for slot, view in placed:  # once everyone is where they are now
            self._vehicle(slot, view)

    def _place(self, slot: int, kind: int, view: ActorView, pose: tuple[float, float, float, float, float]) -> None:
        sc = self.scene
        x, y, yaw, length, width = pose
        speed = max(_along(view.velocity, yaw), 0.0) if kind == ActorKind.VEHICLE else \
            math.hypot(float(view.velocity.x), float(view.velocity.y))
        sc.actors.kind[0, slot] = kind
        sc.actors.x_m[0, slot], sc.actors.y_m[0, slot], sc.actors.yaw_rad[0, slot] = x, y, yaw
        sc.actors.speed_mps[0, slot] = speed
        sc.actors.length_m[0, slot], sc.actors.width_m[0, slot] = length, width
        sc.actors.valid[0, slot] = True

    def _vehicle(self, v: int, view: ActorView) -> None:
        sc, m, p = self.scene, self.arrays, self.params
        x, y, yaw = sc.actors.x_m[0, v], sc.actors.y_m[0, v], sc.actors.yaw_rad[0, v]
        speed, length = sc.actors.speed_mps[0, v], sc.actors.length_m[0, v]
        lane, s, lateral = self._lane_under(view.actor_id, x, y, yaw, speed)
        emergency = view.type_id in EMERGENCY_TYPES
        sc.vehicles.flags[0, v] = codes.EMERGENCY if emergency else 0
        if emergency and sc.emergency.slot[0] < 0:
            sc.emergency.slot[0] = v
        parked = speed < STANDING_MPS and (lane < 0 or abs(lateral) > PARKED_OFFSET_M
                                            or not self._waits(v, lane, s, length))
        sc.vehicles.parked[0, v] = parked
        sc.vehicles.background[0, v] = not parked and not emergency
        if lane < 0:
            sc.vehicles.lanes[0, v] = (-1, -1, -1)
            sc.vehicles.lane_s_m[0, v], sc.vehicles.offset_m[0, v] = 0.0, 0.0
            sc.vehicles.served_lane[0, v] = -1
            if not parked:  # moving off every lane: seen where it is, as an obstacle would be
                sc.vehicles.parked[0, v] = True
            return
        if self._lane_of.get(view.actor_id, (-1, -1, 0.0, 0.0))[0] != lane:
            sc.vehicles.served_lane[0, v] = -1
        following = self._next_lanes(lane, view.planned)
        self._lane_of[view.actor_id] = (lane, following[0], s, float(sc.time_s[0]))
        sc.vehicles.lanes[0, v] = (lane, *following)
        sc.vehicles.lane_s_m[0, v], sc.vehicles.offset_m[0, v] = s, lateral
        # stopping at a stop sign's line serves it (the embedded world's traffic rule)
        end_gap = m.lane_length[lane] - s - 0.5 * length
        if m.lane_stop[lane] and following[0] >= 0 and m.lane_junction[lane] < 0 \
                and m.lane_junction[following[0]] >= 0 and sc.vehicles.served_lane[0, v] != lane \
                and end_gap < p.idm.min_gap_m + 1.5 and speed < 0.3:
            sc.vehicles.served_lane[0, v] = lane
            sc.vehicles.arrival_s[0, v] = sc.time_s[0]

    def _waits(self, v: int, lane: int, s: float, length: float) -> bool:
        """Whether a vehicle standing at ``s`` on ``lane`` has something to wait for within :data:`WAIT_REACH_M`
        of its front: its lane's end at a junction, a light or a stop sign, or someone ahead of it on its lane."""
        m, sc = self.arrays, self.scene
        front = s + 0.5 * length
        if m.lane_length[lane] - front < WAIT_REACH_M and (
                m.lane_light[lane] >= 0 or m.lane_stop[lane]
                or any(m.lane_junction[other] >= 0 for other in self.map.lanes[lane].successors)):
            return True
        x, y, yaw = sc.actors.x_m[0, v], sc.actors.y_m[0, v], sc.actors.yaw_rad[0, v]
        others = [(sc.ego.x_m[0], sc.ego.y_m[0])] + [
            (sc.actors.x_m[0, n], sc.actors.y_m[0, n]) for n in np.flatnonzero(sc.actors.valid[0]) if n != v]
        for ox, oy in others:
            ahead = (ox - x) * math.cos(yaw) + (oy - y) * math.sin(yaw)
            beside = -(ox - x) * math.sin(yaw) + (oy - y) * math.cos(yaw)
            if 0.0 < ahead < 0.5 * length + WAIT_REACH_M and abs(beside) < 0.5 * self.map.lanes[lane].width_m:
                return True
        return False

    def _lane_under(self, actor_id: int, x: float, y: float, yaw: float, speed: float) -> tuple[int, float, float]:
        """The lane a vehicle at ``(x, y)`` heading ``yaw`` drives on (-1: none), its position along it and its
        lateral offset (left +).

        Lanes overlap where they join, so a vehicle seen before stays on its lane until, driving on at ``speed`` from
        where it was, it has passed the lane's end; then it is on the lane it was to take next."""
        located = self.scene.located
        count = locate(self.arrays, x, y, 0.5, located.lane[0], located.s_m[0], located.lat_m[0],
                       located.heading_rad[0], located.dist_m[0])
        before, planned, s_before, t_before = self._lane_of.get(actor_id, (-1, -1, 0.0, 0.0))
        passed = before >= 0 and s_before + speed * (float(self.scene.time_s[0]) - t_before) \
            > self.arrays.lane_length[before]
        best, best_key = -1, (4, math.inf)
        for j in range(count):
            lane = int(located.lane[0, j])
            turn = abs(math.remainder(yaw - float(located.heading_rad[0, j]), math.tau))
            if turn > HEADING_TOLERANCE_RAD:
                continue
            if lane == before:
                rank = 2 if passed else 0
            elif lane == planned and planned >= 0:
                rank = 0 if passed else 1
            else:
                rank = 1 if before >= 0 and lane in self.map.lanes[before].successors else 3
            key = (rank, abs(float(located.lat_m[0, j])))
            if key < best_key:
                best, best_key = j, key
        if best < 0:
            return -1, 0.0, 0.0
        return int(located.lane[0, best]), float(located.s_m[0, best]), float(located.lat_m[0, best])

    def _next_lanes(self, lane: int, planned: Sequence[Any]) -> tuple[int, int]:
        """The two lanes a vehicle on ``lane`` takes next: the successors most of its planned points lie on (heading
        along them, where the points are transforms), else the successor that continues straightest."""
        chain = [lane]
        votes: dict[int, int] = {}
        located = self.scene.located
        for point in planned:
            location = getattr(point, "location", point)
            rotation = getattr(point, "rotation", None)
            count = locate(self.arrays, float(location.x), -float(location.y), 0.5, located.lane[0], located.s_m[0],
                           located.lat_m[0], located.heading_rad[0], located.dist_m[0])
            for j in range(count):
                heading = float(located.heading_rad[0, j])
                if rotation is None or abs(math.remainder(float(from_carla_yaw(rotation.yaw)) - heading,
                                                          math.tau)) < HEADING_TOLERANCE_RAD:
                    votes[int(located.lane[0, j])] = votes.get(int(located.lane[0, j]), 0) + 1
        while len(chain) < 3 and chain[-1] >= 0:
            successors = [other for other in self.map.lanes[chain[-1]].successors if votes.get(other)]
            if not successors:
                break
            chain.append(max(successors, key=lambda other: votes[other]))
        while len(chain) < 3:
            chain.append(self._straightest(chain[-1]) if chain[-1] >= 0 else -1)
        return chain[1], chain[2]

    def _straightest(self, lane: int) -> int:
        successors = self.map.lanes[lane].successors
        if not successors:
            return -1
        end = self.map.lanes[lane].centerline
        heading = math.atan2(end[-1, 1] - end[-2, 1], end[-1, 0] - end[-2, 0])

        def turn(other: int) -> float:
            line = self.map.lanes[other].centerline
            return abs(math.remainder(math.atan2(line[-1, 1] - line[0, 1], line[-1, 0] - line[0, 0]) - heading,
                                      math.tau))

        return min(successors, key=turn)

    def _lights(self, states: Mapping[str, Any]) -> None:
        lights = self.scene.lights
        for source, state in states.items():
            group = self._light_group.get(str(source))
            if group is not None:
                name = state if isinstance(state, str) else getattr(state, "name", str(state))
                lights[0, group] = _LIGHT_STATES.get(name, codes.GREEN)


def _kind(type_id: str) -> int:
    if type_id.startswith("vehicle."):
        return int(ActorKind.VEHICLE)
    if type_id.startswith("walker."):
        return int(ActorKind.PEDESTRIAN)
    return int(ActorKind.STATIC)
