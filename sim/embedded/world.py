"""The embedded world: B scenarios on one map stepped together as arrays.

State is held as structure-of-arrays with a leading batch dimension ``B`` (and an actor dimension ``A`` for
background vehicles). ``step`` runs no Python loop over the batch or the actors; ``reset`` builds routes and
spawns traffic per scenario. A finished scenario stays frozen until it is reset.

Frames and units: map frame (right-handed, metres), seconds, radians; speeds in m/s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from sim.embedded.dynamics import BicycleParams, EgoState, IdmParams, bicycle_step, idm_acceleration
from sim.embedded.traffic import LightState, LightTiming, light_states, path_leaders
from sim.geometry import (
    FloatArray,
    box_corners,
    boxes_overlap,
    cumulative_length,
    interpolate_along,
    project_onto_polylines,
    resample_polyline,
)
from sim.maps import LaneGraph, get_map
from sim.metrics import Infraction, RouteRecord, RouteStatus
from sim.scenario import Scenario

INFRACTIONS = tuple(Infraction)
_INDEX = {kind: i for i, kind in enumerate(INFRACTIONS)}
_RUNNING = -1
STATUSES = tuple(RouteStatus)


@dataclass(frozen=True)
class WorldConfig:
    """Physical and rule parameters of the embedded world.

    :param dt_s: simulation step (CARLA's Leaderboard runs at 20 Hz).
    :param max_vehicles: background-vehicle slots per scenario (scenarios ask for at most this many).
    :param path_spacing_m: resolution of route and traffic paths.
    :param ego_length_m: ego box length.
    :param ego_width_m: ego box width.
    :param route_deviation_m: the route fails when the ego is farther than this from it.
    :param blocked_s: the route fails when the ego stands still this long (outside a red light queue too).
    :param completion_tolerance_m: the route counts as completed this close to its end.
    """

    dt_s: float = 0.05
    max_vehicles: int = 8
    path_spacing_m: float = 1.0
    ego_length_m: float = 4.6
    ego_width_m: float = 2.0
    route_deviation_m: float = 8.0
    blocked_s: float = 90.0
    completion_tolerance_m: float = 1.5
    bicycle: BicycleParams = field(default_factory=BicycleParams)
    idm: IdmParams = field(default_factory=IdmParams)
    lights: LightTiming = field(default_factory=LightTiming)


class Event(NamedTuple):
    """An infraction or route end, as it happened."""

    env: int
    time_s: float
    kind: str
    x_m: float
    y_m: float
    actor: int


class Vehicles(NamedTuple):
    """Background vehicles, ``(B, A)`` arrays; ``valid`` marks slots with a vehicle on the map."""

    xy: FloatArray
    yaw: FloatArray
    speed_mps: FloatArray
    length_m: FloatArray
    width_m: FloatArray
    valid: NDArray[np.bool_]


class World:
    """A batch of scenarios on one map.

    :param lane_graph: the map every scenario in the batch uses.
    :param batch_size: number of scenarios stepped together.
    :param config: world parameters.
    """

    def __init__(self, lane_graph: LaneGraph, batch_size: int, config: WorldConfig = WorldConfig()) -> None:
        self.map = lane_graph
        self.config = config
        self.batch_size = batch_size
        b, a = batch_size, config.max_vehicles
        longest = _longest_path_m(lane_graph)
        self.path_points = int(np.ceil(longest / config.path_spacing_m)) + 2
        p = self.path_points
        self._stop_lines = lane_graph.stop_lines()
        self.scenarios: list[Scenario | None] = [None] * b
        self.time_s = np.zeros(b)
        self.ego = EgoState(*(np.zeros(b) for _ in range(5)))
        self.ego_accel_mps2 = np.zeros(b)
        self.route_xy = np.zeros((b, p, 2))
        self.route_s = np.zeros((b, p))
        self.start_s = np.zeros(b)
        self.end_s = np.ones(b)
        self.progress_s = np.zeros(b)
        self.lateral_m = np.zeros(b)
        self.route_stop_s = np.full(b, np.inf)
        self.route_stop_group = np.zeros(b, dtype=np.intp)
        self.light_offset_s = np.zeros(b)
        self.timeout_s = np.ones(b)
        self.lights = np.zeros((b, max(lane_graph.light_groups, 1)), dtype=np.int8)
        self.npc_path_xy = np.zeros((b, a, p, 2))
        self.npc_path_s = np.zeros((b, a, p))
        self.npc_s = np.zeros((b, a))
        self.npc_speed = np.zeros((b, a))
        self.npc_desired_speed = np.ones((b, a))
        self.npc_length = np.full((b, a), 4.5)
        self.npc_width = np.full((b, a), 1.9)
        self.npc_valid = np.zeros((b, a), dtype=bool)
        self.npc_stop_s = np.full((b, a), np.inf)
        self.npc_stop_group = np.zeros((b, a), dtype=np.intp)
        self.npc_xy = np.zeros((b, a, 2))
        self.npc_yaw = np.zeros((b, a))
        self.infractions = np.zeros((b, len(INFRACTIONS)), dtype=np.int64)
        self.collided = np.zeros((b, a), dtype=bool)
        self.outside_m = np.zeros(b)
        self.driven_m = np.zeros(b)
        self.still_s = np.zeros(b)
        self.status = np.full(b, _RUNNING, dtype=np.int64)
        self.events: list[Event] = []

    # ------------------------------------------------------------------ reset
    def reset(self, scenarios: Sequence[Scenario], envs: Sequence[int] | None = None) -> None:
        """Start ``scenarios`` in the given env slots (all slots, in order, by default)."""
        indices = list(range(self.batch_size)) if envs is None else list(envs)
        if len(indices) != len(scenarios):
            raise ValueError(f"{len(scenarios)} scenarios for {len(indices)} env slots")
        for env, scenario in zip(indices, scenarios, strict=True):
            self._reset_one(env, scenario)
        reset = set(indices)
        self.events = [e for e in self.events if e.env not in reset]
        self._update_npc_poses()
        self.lights = light_states(self.time_s, self.light_offset_s, self.map.light_groups, self.config.lights)
        self._project_ego()

    def _reset_one(self, env: int, scenario: Scenario) -> None:
        cfg = self.config
        if scenario.map_name != self.map.name:
            raise ValueError(f"scenario is on map {scenario.map_name!r}, this world runs {self.map.name!r}")
        if scenario.traffic_vehicles > cfg.max_vehicles:
            raise ValueError(f"scenario asks for {scenario.traffic_vehicles} vehicles; the world has "
                             f"{cfg.max_vehicles} slots (WorldConfig.max_vehicles)")
        self.scenarios[env] = scenario
        xy, s = self._path_arrays(scenario.route)
        if scenario.end_s_m > s[-1] + 1e-6 or scenario.start_s_m >= scenario.end_s_m:
            raise ValueError(f"scenario route spans 0..{s[-1]:.1f} m; start {scenario.start_s_m} and end "
                             f"{scenario.end_s_m} must satisfy start < end <= length")
        self.route_xy[env], self.route_s[env] = xy, s
        self.start_s[env] = self.progress_s[env] = scenario.start_s_m
        self.end_s[env] = scenario.end_s_m
        stop_s, group = self._stop_on_path(scenario.route)
        self.route_stop_s[env], self.route_stop_group[env] = stop_s, group
        start_xy, start_yaw = interpolate_along(xy[None], s[None], np.array([[scenario.start_s_m]]))
        for array, value in zip(self.ego, (start_xy[0, 0, 0], start_xy[0, 0, 1], start_yaw[0, 0], 0.0, 0.0),
                                strict=True):
            array[env] = value
        self.ego_accel_mps2[env] = 0.0
        self.time_s[env] = 0.0
        self.light_offset_s[env] = scenario.light_offset_s
        self.timeout_s[env] = scenario.timeout_s
        self.infractions[env] = 0
        self.collided[env] = False
        self.outside_m[env] = self.driven_m[env] = self.still_s[env] = 0.0
        self.status[env] = _RUNNING
        self._spawn_traffic(env, scenario, start_xy[0, 0])

    def _spawn_traffic(self, env: int, scenario: Scenario, ego_xy: FloatArray) -> None:
        rng = np.random.default_rng(scenario.traffic_seed)
        self.npc_valid[env] = False
        lanes = self.map.lanes
        entry_lanes = [lane.lane_id for lane in lanes if not lane.is_junction]
        taken = [ego_xy]
        slot = 0
        for _ in range(50 * max(scenario.traffic_vehicles, 1)):
            if slot >= scenario.traffic_vehicles:
                break
            first = int(rng.choice(entry_lanes))
            path = [first]
            while lanes[path[-1]].successors:
                path.append(int(rng.choice(lanes[path[-1]].successors)))
            s0 = float(rng.uniform(0.0, 0.9 * lanes[first].length_m))
            pos, _ = interpolate_along(lanes[first].centerline[None], cumulative_length(lanes[first].centerline)[None],
                                       np.array([[s0]]))
            if min(np.linalg.norm(pos[0, 0] - other) for other in taken) < 12.0:
                continue
            taken.append(pos[0, 0])
            desired = rng.uniform(7.0, 10.0)
            self._set_vehicle(env, slot, tuple(path), s_m=s0, speed_mps=rng.uniform(0.3, 0.8) * desired,
                              desired_speed_mps=desired, length_m=rng.uniform(4.2, 5.0),
                              width_m=rng.uniform(1.8, 2.1))
            slot += 1

    def place_vehicle(self, env: int, slot: int, lane_ids: tuple[int, ...], *, s_m: float, speed_mps: float,
                      desired_speed_mps: float, length_m: float = 4.5, width_m: float = 1.9) -> None:
        """Put a background vehicle in ``slot`` of scenario ``env``, at arc length ``s_m`` along ``lane_ids``.

        It drives the lane path with IDM (``desired_speed_mps = 0`` keeps it parked) and leaves the map at its end.
        """
        self._set_vehicle(env, slot, lane_ids, s_m=s_m, speed_mps=speed_mps, desired_speed_mps=desired_speed_mps,
                          length_m=length_m, width_m=width_m)
        self._update_npc_poses()

    def _set_vehicle(self, env: int, slot: int, lane_ids: tuple[int, ...], *, s_m: float, speed_mps: float,
                     desired_speed_mps: float, length_m: float, width_m: float) -> None:
        xy, s = self._path_arrays(lane_ids)
        self.npc_path_xy[env, slot], self.npc_path_s[env, slot] = xy, s
        self.npc_s[env, slot] = s_m
        self.npc_speed[env, slot] = speed_mps
        self.npc_desired_speed[env, slot] = desired_speed_mps
        self.npc_length[env, slot], self.npc_width[env, slot] = length_m, width_m
        self.npc_stop_s[env, slot], self.npc_stop_group[env, slot] = self._stop_on_path(lane_ids)
        self.npc_valid[env, slot] = True
        self.collided[env, slot] = False

    def _path_arrays(self, lane_ids: tuple[int, ...]) -> tuple[FloatArray, FloatArray]:
        points = resample_polyline(self.map.path_polyline(lane_ids), self.config.path_spacing_m)
        if len(points) > self.path_points:
            raise ValueError(f"path over lanes {lane_ids} is longer than this world's path buffers")
        padded = np.concatenate([points, np.repeat(points[-1:], self.path_points - len(points), axis=0)])
        return padded, cumulative_length(padded)

    def _stop_on_path(self, lane_ids: tuple[int, ...]) -> tuple[float, int]:
        """Arc length of the first light-controlled stop line on a lane path, and its light group."""
        offset = 0.0
        for lane_id in lane_ids:
            lane = self.map.lanes[lane_id]
            if lane.light_group is not None:
                return offset + lane.length_m, lane.light_group
            offset += lane.length_m
        return float("inf"), 0

    # ------------------------------------------------------------------ step
    @property
    def running(self) -> NDArray[np.bool_]:
        running: NDArray[np.bool_] = self.status == _RUNNING
        return running

    def step(self, actions: FloatArray, *, mask: NDArray[np.bool_] | None = None) -> None:
        """Advance running scenarios by one ``dt_s`` with ego actions ``(B, 2)`` = ``[steer, accel]``.

        :param mask: which scenarios may advance (default: all); the others hold still.
        """
        cfg = self.config
        active = self.running if mask is None else self.running & mask
        actions = np.asarray(actions, dtype=np.float64).reshape(self.batch_size, 2)
        npc_accel = self._npc_accelerations()
        new_ego, accel = bicycle_step(self.ego, actions[:, 0], actions[:, 1], cfg.dt_s, cfg.bicycle)
        self.ego = EgoState(*(np.where(active, new, old) for new, old in zip(new_ego, self.ego, strict=True)))
        self.ego_accel_mps2 = np.where(active, accel, 0.0)
        npc_active = self.npc_valid & active[:, None]
        new_speed = np.maximum(self.npc_speed + npc_accel * cfg.dt_s, 0.0)
        self.npc_s = np.where(npc_active, self.npc_s + 0.5 * (self.npc_speed + new_speed) * cfg.dt_s, self.npc_s)
        self.npc_speed = np.where(npc_active, new_speed, self.npc_speed)
        self.npc_valid &= self.npc_s < self.npc_path_s[:, :, -1] - 0.5
        self.time_s = np.where(active, self.time_s + cfg.dt_s, self.time_s)
        self._update_npc_poses()
        self.lights = light_states(self.time_s, self.light_offset_s, self.map.light_groups, cfg.lights)
        previous_s = self.progress_s.copy()
        self._project_ego()
        self._detect(active, previous_s)

    def _npc_accelerations(self) -> FloatArray:
        b, a = self.npc_s.shape
        cfg = self.config
        others_xy = np.concatenate([self.npc_xy, np.stack([self.ego.x_m, self.ego.y_m], -1)[:, None]], axis=1)
        others_yaw = np.concatenate([self.npc_yaw, self.ego.yaw_rad[:, None]], axis=1)
        others_speed = np.concatenate([self.npc_speed, self.ego.speed_mps[:, None]], axis=1)
        others_length = np.concatenate([self.npc_length, np.full((b, 1), cfg.ego_length_m)], axis=1)
        others_width = np.concatenate([self.npc_width, np.full((b, 1), cfg.ego_width_m)], axis=1)
        candidate = np.concatenate([self.npc_valid, np.ones((b, 1), dtype=bool)], axis=1)
        candidate = np.repeat(candidate[:, None, :], a, axis=1) & ~np.eye(a, a + 1, dtype=bool)[None]
        gap, leader, leader_speed = path_leaders(
            self.npc_path_xy.reshape(b * a, -1, 2), self.npc_path_s.reshape(b * a, -1), self.npc_s.reshape(-1),
            np.repeat(others_xy, a, axis=0), np.repeat(others_yaw, a, axis=0),
            np.repeat(others_speed, a, axis=0), 0.5 * np.repeat(others_width, a, axis=0),
            candidate.reshape(b * a, a + 1),
        )
        leader_length = np.repeat(others_length, a, axis=0)[np.arange(b * a), leader]
        bumper_gap = (gap - 0.5 * (self.npc_length.reshape(-1) + leader_length)).reshape(b, a)
        leader_speed = leader_speed.reshape(b, a)
        stop_gap = self.npc_stop_s - self.npc_s - 0.5 * self.npc_length
        light = np.take_along_axis(self.lights, self.npc_stop_group, axis=1)
        can_stop = stop_gap > self.npc_speed**2 / (2.0 * cfg.idm.comfort_decel_mps2)
        must_stop = (stop_gap > -0.5) & ((light == LightState.RED) | ((light == LightState.YELLOW) & can_stop))
        stop_gap = np.where(must_stop, np.maximum(stop_gap, 0.0), np.inf)
        use_stop = stop_gap < bumper_gap
        return idm_acceleration(self.npc_speed, self.npc_desired_speed, np.where(use_stop, stop_gap, bumper_gap),
                                np.where(use_stop, 0.0, leader_speed), cfg.idm)

    def _update_npc_poses(self) -> None:
        b, a, p, _ = self.npc_path_xy.shape
        xy, yaw = interpolate_along(self.npc_path_xy.reshape(b * a, p, 2), self.npc_path_s.reshape(b * a, p),
                                    self.npc_s.reshape(b * a, 1))
        self.npc_xy, self.npc_yaw = xy.reshape(b, a, 2), yaw.reshape(b, a)

    def _project_ego(self) -> None:
        seg_start = self.route_s[:, :-1]
        window = (seg_start >= self.progress_s[:, None] - 5.0) & (seg_start <= self.progress_s[:, None] + 15.0)
        ego_xy = np.stack([self.ego.x_m, self.ego.y_m], axis=-1)
        s, lateral = project_onto_polylines(self.route_xy, self.route_s, ego_xy, window)
        self.progress_s = np.maximum(self.progress_s, np.minimum(s, self.end_s))
        self.lateral_m = lateral

    def _detect(self, active: NDArray[np.bool_], previous_s: FloatArray) -> None:
        cfg = self.config
        ego_xy = np.stack([self.ego.x_m, self.ego.y_m], axis=-1)
        ego_box = box_corners(ego_xy, self.ego.yaw_rad, np.full(self.batch_size, cfg.ego_length_m),
                              np.full(self.batch_size, cfg.ego_width_m))
        npc_box = box_corners(self.npc_xy, self.npc_yaw, self.npc_length, self.npc_width)
        hit = boxes_overlap(ego_box[:, None], npc_box) & self.npc_valid & active[:, None] & ~self.collided
        self.collided |= hit
        self._record(Infraction.COLLISION_VEHICLE, hit.sum(axis=1), ego_xy, np.argmax(hit, axis=1))
        light = self.lights[np.arange(self.batch_size), self.route_stop_group]
        ran_red = active & (previous_s < self.route_stop_s) & (self.progress_s >= self.route_stop_s)
        ran_red &= light == LightState.RED
        self._record(Infraction.RED_LIGHT, ran_red.astype(np.int64), ego_xy)
        step_m = np.where(active, np.abs(self.ego.speed_mps) * cfg.dt_s, 0.0)
        self.driven_m += step_m
        lane_width = self.map.lanes[0].width_m
        self.outside_m += np.where(np.abs(self.lateral_m) > lane_width, step_m, 0.0)
        self.still_s = np.where(active & (self.ego.speed_mps < 0.1), self.still_s + cfg.dt_s, 0.0)
        ends = (
            (self.progress_s >= self.end_s - cfg.completion_tolerance_m, RouteStatus.COMPLETED),
            (np.abs(self.lateral_m) > cfg.route_deviation_m, RouteStatus.ROUTE_DEVIATION),
            (self.still_s >= cfg.blocked_s, RouteStatus.AGENT_BLOCKED),
            (self.time_s >= self.timeout_s, RouteStatus.ROUTE_TIMEOUT),
        )
        for condition, status in ends:
            now = active & condition & (self.status == _RUNNING)
            self.status[now] = STATUSES.index(status)
            for env in np.flatnonzero(now):
                self.events.append(Event(int(env), float(self.time_s[env]), status.value, float(ego_xy[env, 0]),
                                         float(ego_xy[env, 1]), -1))

    def _record(self, kind: Infraction, counts: NDArray[np.int64], ego_xy: FloatArray,
                actor: NDArray[np.intp] | None = None) -> None:
        self.infractions[:, _INDEX[kind]] += counts
        for env in np.flatnonzero(counts):
            self.events.append(Event(int(env), float(self.time_s[env]), kind.value, float(ego_xy[env, 0]),
                                     float(ego_xy[env, 1]), -1 if actor is None else int(actor[env])))

    # ------------------------------------------------------------------ views
    def vehicles(self) -> Vehicles:
        return Vehicles(self.npc_xy, self.npc_yaw, self.npc_speed, self.npc_length, self.npc_width, self.npc_valid)

    def route_completion(self) -> FloatArray:
        """Fraction of each route completed, in [0, 1] (1 once completed, within the completion tolerance)."""
        fraction = np.clip((self.progress_s - self.start_s) / (self.end_s - self.start_s), 0.0, 1.0)
        return np.where(self.ended_with(RouteStatus.COMPLETED), 1.0, fraction)

    def ended_with(self, status: RouteStatus) -> NDArray[np.bool_]:
        """Which routes ended with ``status``."""
        ended: NDArray[np.bool_] = self.status == STATUSES.index(status)
        return ended

    def status_names(self) -> NDArray[np.str_]:
        """``(B,)`` how each route ended (:class:`~sim.metrics.RouteStatus` values), ``""`` while it runs."""
        names = np.array([status.value for status in STATUSES] + [""])
        return names[np.where(self.running, len(STATUSES), self.status)]

    def route_status(self, env: int) -> RouteStatus | None:
        """How the route in slot ``env`` ended, or ``None`` while it runs."""
        return None if self.status[env] == _RUNNING else STATUSES[int(self.status[env])]

    def route_record(self, env: int) -> RouteRecord:
        """The Leaderboard record of the route in slot ``env`` (so far, if it still runs)."""
        route_length = self.end_s[env] - self.start_s[env]
        status = self.route_status(env)
        return RouteRecord(
            route_completion=float(self.route_completion()[env]),
            infractions={kind: int(n) for kind, n in zip(INFRACTIONS, self.infractions[env], strict=True) if n},
            outside_lanes_share=float(min(self.outside_m[env] / route_length, 1.0)),
            status=RouteStatus.ROUTE_TIMEOUT if status is None else status,
            driven_m=float(self.driven_m[env]),
            route_length_m=float(route_length),
        )


def _longest_path_m(lane_graph: LaneGraph) -> float:
    """Length of the longest lane path (lanes without cycles) in a map; the size of path buffers."""
    lanes = lane_graph.lanes

    def longest_from(lane_id: int, seen: frozenset[int]) -> float:
        tails = [longest_from(s, seen | {s}) for s in lanes[lane_id].successors if s not in seen]
        return lanes[lane_id].length_m + max(tails, default=0.0)

    return max(longest_from(lane.lane_id, frozenset({lane.lane_id})) for lane in lanes)


def make_world(map_name: str, batch_size: int, config: WorldConfig = WorldConfig()) -> World:
    """A world on the registered map ``map_name``."""
    return World(get_map(map_name), batch_size, config)
