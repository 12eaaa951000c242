"""The embedded world: B scenarios on one map stepped together.

The world fills a scene (:mod:`sim.scene.records`, what every reader sees) and keeps its own state beside it
(:mod:`sim.embedded.state`, what moves things): structure-of-arrays with a leading batch dimension ``B`` (and an
actor dimension ``N``: vehicles, then pedestrians, then static obstacles). ``step`` is one call into a compiled
kernel (:mod:`sim.embedded.kernels`)
that loops over scenarios in parallel and over each scenario's actors inside; ``reset`` builds routes and spawns
actors per scenario in Python. A finished scenario stays frozen until it is reset.

What the world simulates:

- the ego: kinematic bicycle with steering/acceleration limits and actuator rate limits;
- vehicles: IDM along their lanes, a random successor at every junction, stopping at red lights and stop signs,
  first-come-first-served at all-way stops, not entering a junction while a conflicting junction lane is
  occupied or someone who goes on (no stop sign, no red light) gets there first (within 3 s), keeping distance
  to whatever occupies their lanes (vehicles, the ego, pedestrians, obstacles);
  vehicles that leave the map come back elsewhere, out of the ego's sight; parked vehicles stand still;
- pedestrians: walking the map's walkways (sidewalks, corners, crosswalks), waiting at a crosswalk while a
  vehicle approaches it and while a moving vehicle is in their way (standing ones they walk around); or, when a
  scenario places them, walking their own path (e.g. jaywalking) after a delay;
- traffic lights with a split-phase program per junction (phase offsets per junction and scenario);
- Leaderboard 2.0 infractions: collisions by actor type (once per actor within 5 s, none within 3 m of a counted
  one the ego has not left by 5 m; a pedestrian walking around the standing ego is not a collision), red lights
  (crossing the stop line on red), stop signs (crossing without having stood below 0.1 m/s within 4 m of the
  line), off-road distance, route deviation (> 30 m: the route ends), agent blocked (< 0.1 m/s for 180 s: ends),
  minimum speed against the surrounding background traffic per quarter of the route, route timeout, an emergency
  vehicle held up behind the ego; and the robotaxi mission's curbside stops (``missed_curbside_stop``);
- scenario events (:mod:`sim.embedded.staging`): scripted vehicles and pedestrians set off at a trigger (hidden
  until then, timed to meet the ego, running red lights, taking priority, braking hard, cutting in, invading the
  ego's lane, an emergency vehicle passing it), junction lights held by an event, static obstacles, and what the
  privileged expert needs to handle them (passing obstacles, keeping right, pulling over, stopping at the curb).

Frames and units: map frame (right-handed, metres), seconds, radians; speeds in m/s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from sim.embedded.config import WorldConfig
from sim.embedded.kernels import tick
from sim.embedded.placement import Placement, random_successor
from sim.embedded.staging import stage_events
from sim.embedded.state import State, allocate
from sim.geometry import FloatArray, cumulative_length, interpolate_along
from sim.maps import LaneGraph, get_map
from sim.maps.compiled import MapArrays, compile_map
from sim.metrics import RouteRecord, RouteStatus
from sim.scenarios import Scenario
from sim.scene import codes, outcome
from sim.scene.outcome import Event
from sim.scene.records import STATUSES, ActorKind, Scene, allocate_scene
from sim.scene.route_path import RoutePath, lane_point, write_route
from sim.scene.source import SceneViews
from sim.threads import default_threads, run_chunked

#: Vehicles spawn at least this far before the end of their lane (where a stop line may be).
_SPAWN_CLEARANCE_M = 15.0
#: Fewest scenarios worth a thread of their own.
_MIN_CHUNK = 16


class Vehicles(NamedTuple):
    """Background actors, ``(B, N)`` arrays; ``valid`` marks slots with an actor on the map."""

    xy: FloatArray
    yaw: FloatArray
    speed_mps: FloatArray
    length_m: FloatArray
    width_m: FloatArray
    valid: NDArray[np.bool_]


class World(SceneViews):
    """A batch of scenarios on one map.

    :param lane_graph: the map every scenario in the batch uses.
    :param batch_size: number of scenarios stepped together.
    :param config: world parameters.
    """

    def __init__(self, lane_graph: LaneGraph, batch_size: int, config: WorldConfig = WorldConfig()) -> None:
        self.map = lane_graph
        self.config = config
        self.batch_size = batch_size
        self.arrays: MapArrays = compile_map(lane_graph)
        self.params = config.params()
        self._junctions = len(self.arrays.junction_phases)
        self._routes: dict[tuple[int, ...], RoutePath] = {}  # built routes by their lanes (scenarios share them)
        self._lane_s: dict[int, FloatArray] = {}  # arc length at each centreline point, by lane
        self.scene: Scene = allocate_scene(batch_size, config.max_vehicles, config.max_pedestrians, config.max_statics,
                                           lane_graph.light_groups, 2, 1, 1)
        self.state: State = allocate(batch_size, self._junctions, lane_graph.light_groups, config)
        self.scenarios: list[Scenario | None] = [None] * batch_size
        self.events: list[Event] = []
        self._threads = config.threads or default_threads()

    # ------------------------------------------------------------------ views of the state
    @property
    def time_s(self) -> FloatArray:
        return self.scene.time_s

    @property
    def ego_accel_mps2(self) -> FloatArray:
        return self.scene.ego.accel_mps2

    @property
    def lights(self) -> NDArray[np.int8]:
        return self.scene.lights

    @property
    def infractions(self) -> NDArray[np.int64]:
        return self.scene.outcome.infractions

    @property
    def npc_valid(self) -> NDArray[np.bool_]:
        """Which vehicle slots hold a vehicle on the map."""
        valid: NDArray[np.bool_] = self.scene.actors.valid[:, : self.config.max_vehicles]
        return valid

    @property
    def actor_kind(self) -> NDArray[np.int8]:
        """``(B, N)`` :class:`ActorKind` of every actor slot (where valid)."""
        return self.scene.actors.kind

    def vehicles(self) -> Vehicles:
        """Every background actor (vehicles, pedestrians, obstacles); see :attr:`actor_kind`."""
        sc = self.scene
        return Vehicles(np.stack([sc.actors.x_m, sc.actors.y_m], axis=-1), sc.actors.yaw_rad, sc.actors.speed_mps,
                        sc.actors.length_m, sc.actors.width_m,
                        sc.actors.valid)

    # ------------------------------------------------------------------ reset
    def reset(self, scenarios: Sequence[Scenario], envs: Sequence[int] | None = None) -> None:
        """Start ``scenarios`` in the given env slots (all slots, in order, by default)."""
        indices = list(range(self.batch_size)) if envs is None else [int(e) for e in envs]
        if len(indices) != len(scenarios):
            raise ValueError(f"{len(scenarios)} scenarios for {len(indices)} env slots")
        routes = [self._route(scenario) for scenario in scenarios]
        self._fit(routes)
        for env, scenario, route in zip(indices, scenarios, routes, strict=True):
            self._reset_one(env, scenario, route)
        reset = set(indices)
        self.events = [e for e in self.events if e.env not in reset]
        tick.refresh(self.arrays, self.scene, self.state, self.params, np.asarray(indices, dtype=np.int64))

    def _route(self, scenario: Scenario) -> RoutePath:
        cfg = self.config
        if scenario.map_name != self.map.name:
            raise ValueError(f"scenario is on map {scenario.map_name!r}, this world runs {self.map.name!r}")
        for what, asked, slots in (("vehicles", scenario.traffic_vehicles, cfg.max_vehicles),
                                   ("pedestrians", scenario.pedestrians, cfg.max_pedestrians)):
            if asked > slots:
                raise ValueError(f"scenario asks for {asked} {what}; the world has {slots} slots "
                                 f"(WorldConfig.max_{what})")
        route = self._routes.get(scenario.route)
        if route is None:
            route = self._routes[scenario.route] = RoutePath.build(self.map, scenario.route)
        return route

    def _lane_point(self, lane: int, s_m: float) -> FloatArray:
        """The point ``s_m`` along lane ``lane``'s centreline."""
        arc = self._lane_s.get(lane)
        if arc is None:
            arc = self._lane_s[lane] = cumulative_length(self.map.lanes[lane].centerline)
        points = self.map.lanes[lane].centerline
        return np.array([np.interp(s_m, arc, points[:, 0]), np.interp(s_m, arc, points[:, 1])])

    def _fit(self, routes: list[RoutePath]) -> None:
        """Grow the route buffers when a route needs more room (keeping every running scenario)."""
        sc = self.scene
        need = (max(len(r.points) for r in routes), max(len(r.pieces) for r in routes),
                max(len(r.lines) for r in routes))
        have = (sc.route.x_m.shape[1], sc.route.piece_lane.shape[1], sc.route.line_s_m.shape[1])
        if all(n <= h for n, h in zip(need, have, strict=True)):
            return
        size = tuple(max(n, h) for n, h in zip(need, have, strict=True))
        cfg = self.config
        grown = allocate_scene(self.batch_size, cfg.max_vehicles, cfg.max_pedestrians, cfg.max_statics,
                               self.map.light_groups, *size).route
        for old, new in zip(sc.route, grown, strict=True):
            new[(slice(None),) + tuple(slice(0, k) for k in old.shape[1:])] = old
        self.scene = sc._replace(route=grown)

    def _reset_one(self, env: int, scenario: Scenario, route: RoutePath) -> None:
        st, sc, cfg = self.state, self.scene, self.config
        length = route.length_m
        if scenario.end_s_m > length + 1e-6 or scenario.start_s_m >= scenario.end_s_m:
            raise ValueError(f"scenario route spans 0..{length:.1f} m; start {scenario.start_s_m} and end "
                             f"{scenario.end_s_m} must satisfy start < end <= length")
        self.scenarios[env] = scenario
        write_route(sc, env, route, scenario.start_s_m, scenario.end_s_m)
        sc.junction.ego_served[env], sc.junction.ego_arrival_s[env], sc.junction.ego_wait_lane[env] = False, 0.0, -1
        start_xy, start_yaw = interpolate_along(route.points[None], cumulative_length(route.points)[None],
                                                np.array([[scenario.start_s_m]]))
        sc.ego.x_m[env], sc.ego.y_m[env] = start_xy[0, 0]
        sc.ego.yaw_rad[env] = start_yaw[0, 0]
        sc.ego.speed_mps[env] = sc.ego.steer_rad[env] = sc.ego.accel_mps2[env] = 0.0
        st.seed[env] = np.uint64(scenario.traffic_seed % 2**63)
        sc.time_s[env] = 0.0
        sc.outcome.timeout_s[env] = scenario.timeout_s
        sc.outcome.status[env] = codes.RUNNING
        phases = self.arrays.junction_phases
        cycle = phases * (cfg.lights.phase_s)
        st.program.offset_s[env, : len(phases)] = scenario.light_offset_s + np.mod(np.arange(len(phases)) * 0.618034,
                                                                                1.0) * cycle
        sc.outcome.infractions[env] = 0
        sc.outcome.last_hit[env], sc.outcome.last_hit_s[env], sc.outcome.hit_n[env] = -1, -np.inf, 0
        sc.outcome.driven_m[env] = sc.outcome.outside_m[env] = sc.outcome.still_s[env] = 0.0
        sc.outcome.ms_section[env], sc.outcome.ms_ego_sum_mps[env], sc.outcome.ms_frames[env] = 0, 0.0, 0
        sc.outcome.ms_traffic_sum_mps[env] = 0.0
        sc.outcome.min_speed_pct[env] = np.nan
        sc.outcome.ev_n[env] = 0
        st.tracks.n[env] = st.tracks.i[env] = 0
        self._spawn(env, scenario, start_xy[0, 0], route)
        stage_events(self.placement(env), scenario, route)

    def _spawn(self, env: int, scenario: Scenario, ego_xy: FloatArray, route: RoutePath) -> None:
        st, sc, cfg, arrays, lanes = self.state, self.scene, self.config, self.arrays, self.map.lanes
        placement = self.placement(env)
        rng = np.random.default_rng(scenario.traffic_seed)
        sc.actors.valid[env] = False
        sc.actors.kind[env] = ActorKind.NONE
        sc.vehicles.background[env] = False
        sc.vehicles.parked[env] = False
        st.traffic.draws[env] = 0
        st.pedestrians.draws[env] = 0
        st.pedestrians.next[env] = -1
        sc.vehicles.flags[env], st.traffic.pending[env], st.traffic.meet_s_m[env] = 0, False, -1.0
        st.traffic.brake_decel_mps2[env], st.traffic.brake_until_s[env] = 0.0, -np.inf
        st.traffic.reveal_at_s[env] = st.traffic.expire_m[env] = np.inf
        st.program.force[env], st.program.force_pending[env], st.program.force_until_s[env] = -1, False, -np.inf
        st.program.then[env], st.program.then_hold_s[env] = -1, 0.0
        st.control_loss.start_m[env] = st.control_loss.end_m[env] = np.inf
        sc.emergency.slot[env], sc.emergency.since_s[env], sc.emergency.done[env], sc.facts.yield_emergency[env] \
            = -1, np.inf, False, False
        sc.mission.stop_n[env], sc.mission.stop_next[env], sc.mission.stop_since_s[env], \
            sc.facts.stop_target_m[env] = 0, 0, np.inf, np.inf
        sc.facts.merge_wait[env], sc.mission.curb_until_m[env] = False, -np.inf
        st.pedestrians.pending[env] = st.pedestrians.careless[env] = False
        sc.facts.nudge_m[env] = sc.facts.offset_m[env] = sc.facts.nudge_need_m[env] = 0.0
        sc.facts.creep_lane[env] = -1
        sc.mission.zone_n[env] = 0
        sc.facts.pass_need_m[env] = 0.0
        taken = np.empty((scenario.traffic_vehicles + 1, 2))
        taken[0] = ego_xy
        arc = cumulative_length(route.points)
        ahead = route.points[(arc > scenario.start_s_m) & (arc < scenario.start_s_m + 15.0)]
        slot = 0
        for _ in range(50 * max(scenario.traffic_vehicles, 1)):
            if slot >= scenario.traffic_vehicles:
                break
            lane = int(rng.choice(arrays.spawn_lanes))
            s = float(rng.uniform(0.0, max(float(arrays.lane_length[lane]) - _SPAWN_CLEARANCE_M, 0.0)))
            xy = self._lane_point(lane, s)
            if np.min(np.sum((taken[:slot + 1] - xy) ** 2, axis=1)) < 12.0**2:
                continue
            if len(ahead) and np.min(np.sum((ahead - xy) ** 2, axis=1)) < 4.0**2:
                continue
            taken[slot + 1] = xy
            following = random_successor(rng, lanes[lane].successors)
            factor = float(rng.uniform(0.7, 1.0))
            placement.set_vehicle(slot, (lane, following, random_successor(rng, lanes[following].successors)
                                          if following >= 0 else -1),
                              s_m=s, speed_mps=factor * lanes[lane].speed_limit_mps * float(rng.uniform(0.3, 0.8)),
                              desired_factor=factor, desired_cap=np.inf, length_m=float(rng.uniform(4.2, 5.0)),
                              width_m=float(rng.uniform(1.8, 2.1)))
            sc.vehicles.background[env, slot] = True
            slot += 1
        walkways = self.map.walkways or ()
        count = len(arrays.walk_crossing)
        for q in range(scenario.pedestrians if count else 0):
            for _ in range(50):
                walk = int(rng.integers(count))
                first, last = arrays.walk_offset[walk], arrays.walk_offset[walk + 1]
                s = float(rng.uniform(0.0, arrays.walk_s[last - 1]))
                points = np.stack([arrays.walk_x[first:last], arrays.walk_y[first:last]], axis=-1)
                xy = lane_point(points, s)
                if np.linalg.norm(xy - ego_xy) >= 8.0:
                    break
            n = cfg.max_vehicles + q
            sc.actors.valid[env, n], sc.actors.kind[env, n] = True, ActorKind.PEDESTRIAN
            sc.actors.length_m[env, n], sc.actors.width_m[env, n] = 0.5, 0.6
            st.pedestrians.walk[env, q], st.pedestrians.s_m[env, q] = walk, s
            st.pedestrians.speed_mps[env, q] = float(rng.uniform(1.0, 1.6))
            st.pedestrians.start_s[env, q] = 0.0
        del walkways

    def placement(self, env: int) -> Placement:
        """Scenario ``env``, to put actors, scripts and mission items into (:class:`Placement`)."""
        return Placement(self.scene, self.state, self.arrays, self.map, self.config, self.params, env)

    # ------------------------------------------------------------------ step
    @property
    def running(self) -> NDArray[np.bool_]:
        running: NDArray[np.bool_] = self.scene.outcome.status == codes.RUNNING
        return running

    def step(self, actions: FloatArray, *, mask: NDArray[np.bool_] | None = None) -> None:
        """Advance running scenarios by one ``dt_s`` with ego actions ``(B, 2)`` = ``[steer, accel]``.

        :param mask: which scenarios may advance (default: all); the others hold still.
        """
        active = self.running if mask is None else self.running & mask
        actions = np.ascontiguousarray(np.asarray(actions, dtype=np.float64).reshape(self.batch_size, 2))
        run_chunked(lambda first, stop: tick.step(self.arrays, self.scene, self.state, self.params, actions, active,
                                                     first, stop), self.batch_size, self._threads, _MIN_CHUNK)
        sc = self.scene
        ended = active & ~self.running
        if sc.outcome.ev_n.any() or ended.any():
            self._collect_events(np.flatnonzero(sc.outcome.ev_n), np.flatnonzero(ended))

    def _collect_events(self, with_events: NDArray[np.intp], ended: NDArray[np.intp]) -> None:
        self.events += outcome.step_events(self.scene, with_events, ended)

    # ------------------------------------------------------------------ results
    def route_completion(self) -> FloatArray:
        """Fraction of each route completed, in [0, 1] (1 once completed, within the completion tolerance)."""
        return outcome.route_completion(self.scene)

    def ended_with(self, status: RouteStatus) -> NDArray[np.bool_]:
        """Which routes ended with ``status``."""
        ended: NDArray[np.bool_] = self.scene.outcome.status == STATUSES.index(status)
        return ended

    def status_names(self) -> NDArray[np.str_]:
        """``(B,)`` how each route ended (:class:`~sim.metrics.RouteStatus` values), ``""`` while it runs."""
        return outcome.status_names(self.scene)

    def route_status(self, env: int) -> RouteStatus | None:
        """How the route in slot ``env`` ended, or ``None`` while it runs."""
        return outcome.route_status(self.scene, env)

    def route_record(self, env: int) -> RouteRecord:
        """The Leaderboard record of the route in slot ``env`` (so far, if it still runs)."""
        return outcome.route_record(self.scene, env)


def make_world(map_name: str, batch_size: int, config: WorldConfig = WorldConfig()) -> World:
    """A world on the registered map ``map_name``."""
    return World(get_map(map_name), batch_size, config)
