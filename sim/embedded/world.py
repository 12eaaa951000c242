"""The embedded world: B scenarios on one map stepped together.

State is structure-of-arrays with a leading batch dimension ``B`` (and an actor dimension ``N``: vehicles, then
pedestrians, then static obstacles). ``step`` is one call into a compiled kernel (:mod:`sim.embedded.kernels`)
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

from sim.embedded.compiled import MapArrays, compile_map
from sim.embedded.dynamics import EgoState
from sim.embedded.kernels import codes, tick
from sim.embedded.placement import Placement, random_successor
from sim.embedded.route_path import RoutePath, lane_point
from sim.embedded.staging import stage_events
from sim.embedded.state import INFRACTIONS, STATUSES, ActorKind, State, WorldConfig, allocate
from sim.embedded.threads import default_threads, run_chunked
from sim.geometry import FloatArray, cumulative_length, interpolate_along
from sim.maps import LaneGraph, get_map
from sim.metrics import Infraction, RouteRecord, RouteStatus
from sim.scenarios import Scenario

#: Vehicles spawn at least this far before the end of their lane (where a stop line may be).
_SPAWN_CLEARANCE_M = 15.0
#: Fewest scenarios worth a thread of their own.
_MIN_CHUNK = 16


class Event(NamedTuple):
    """An infraction or route end, as it happened."""

    env: int
    time_s: float
    kind: str
    x_m: float
    y_m: float
    actor: int


class Vehicles(NamedTuple):
    """Background actors, ``(B, N)`` arrays; ``valid`` marks slots with an actor on the map."""

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
        self.arrays: MapArrays = compile_map(lane_graph)
        self.params = config.params()
        self._junctions = len(self.arrays.junction_phases)
        self._routes: dict[tuple[int, ...], RoutePath] = {}  # built routes by their lanes (scenarios share them)
        self._lane_s: dict[int, FloatArray] = {}  # arc length at each centreline point, by lane
        self.state = allocate(batch_size, lane_graph.light_groups, self._junctions, config, 2, 1, 1)
        self.scenarios: list[Scenario | None] = [None] * batch_size
        self.events: list[Event] = []
        self._threads = config.threads or default_threads()

    # ------------------------------------------------------------------ views of the state
    @property
    def time_s(self) -> FloatArray:
        return self.state.time

    @property
    def ego(self) -> EgoState:
        st = self.state
        return EgoState(st.ego_x, st.ego_y, st.ego_yaw, st.ego_v, st.ego_steer)

    @property
    def ego_accel_mps2(self) -> FloatArray:
        return self.state.ego_accel

    @property
    def progress_s(self) -> FloatArray:
        return self.state.progress

    @property
    def lateral_m(self) -> FloatArray:
        return self.state.lateral

    @property
    def lights(self) -> NDArray[np.int8]:
        return self.state.lights

    @property
    def infractions(self) -> NDArray[np.int64]:
        return self.state.infractions

    @property
    def route_xy(self) -> FloatArray:
        """``(B, P, 2)`` route polylines (points past each route's ``route_points`` repeat its last point)."""
        return np.stack([self.state.route_x, self.state.route_y], axis=-1)

    @property
    def route_s(self) -> FloatArray:
        """``(B, P)`` arc length of the route points."""
        st = self.state
        k = np.minimum(np.arange(st.route_x.shape[1])[None, :], st.route_n[:, None] - 1)
        s: FloatArray = k * st.route_ds[:, None]
        return s

    @property
    def npc_valid(self) -> NDArray[np.bool_]:
        """Which vehicle slots hold a vehicle on the map."""
        valid: NDArray[np.bool_] = self.state.act_valid[:, : self.config.max_vehicles]
        return valid

    @property
    def actor_kind(self) -> NDArray[np.int8]:
        """``(B, N)`` :class:`ActorKind` of every actor slot (where valid)."""
        return self.state.act_kind

    def vehicles(self) -> Vehicles:
        """Every background actor (vehicles, pedestrians, obstacles); see :attr:`actor_kind`."""
        st = self.state
        return Vehicles(np.stack([st.act_x, st.act_y], axis=-1), st.act_yaw, st.act_v, st.act_len, st.act_wid,
                        st.act_valid)

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
        tick.refresh(self.arrays, self.state, self.params, np.asarray(indices, dtype=np.int64))

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
        st = self.state
        need = (max(len(r.points) for r in routes), max(len(r.pieces) for r in routes),
                max(len(r.lines) for r in routes))
        have = (st.route_x.shape[1], st.piece_lane.shape[1], st.line_s.shape[1])
        if all(n <= h for n, h in zip(need, have, strict=True)):
            return
        size = tuple(max(n, h) for n, h in zip(need, have, strict=True))
        grown = allocate(self.batch_size, self.map.light_groups, self._junctions, self.config, *size)
        fields = {}
        for name, old in st._asdict().items():
            new = getattr(grown, name)
            if new.shape != old.shape:
                new[(slice(None),) + tuple(slice(0, k) for k in old.shape[1:])] = old
                fields[name] = new
            else:
                fields[name] = old
        self.state = State(**fields)

    def _reset_one(self, env: int, scenario: Scenario, route: RoutePath) -> None:
        st, cfg = self.state, self.config
        length = route.length_m
        if scenario.end_s_m > length + 1e-6 or scenario.start_s_m >= scenario.end_s_m:
            raise ValueError(f"scenario route spans 0..{length:.1f} m; start {scenario.start_s_m} and end "
                             f"{scenario.end_s_m} must satisfy start < end <= length")
        self.scenarios[env] = scenario
        count = len(route.points)
        st.route_x[env, :count], st.route_y[env, :count] = route.points[:, 0], route.points[:, 1]
        st.route_x[env, count:], st.route_y[env, count:] = route.points[-1, 0], route.points[-1, 1]
        st.route_n[env], st.route_ds[env] = count, route.spacing_m
        st.start_s[env] = st.progress[env] = scenario.start_s_m
        st.end_s[env] = scenario.end_s_m
        st.lateral[env] = 0.0
        pieces = route.pieces
        st.piece_n[env] = len(pieces)
        st.piece_lane[env, : len(pieces)] = [p.lane for p in pieces]
        st.piece_start[env, : len(pieces)] = [p.start_s_m for p in pieces]
        st.piece_end[env, : len(pieces)] = [p.end_s_m for p in pieces]
        st.piece_offset[env, : len(pieces)] = route.offsets
        lines = [line for line in route.lines if line[0] > scenario.start_s_m]
        st.line_n[env], st.line_next[env] = len(lines), 0
        for k, (s, lane, junction_lane) in enumerate(lines):
            st.line_s[env, k], st.line_lane[env, k], st.line_junction_lane[env, k] = s, lane, junction_lane
        st.ego_served[env], st.ego_arrival[env], st.ego_wait_lane[env] = False, 0.0, -1
        start_xy, start_yaw = interpolate_along(route.points[None], cumulative_length(route.points)[None],
                                                np.array([[scenario.start_s_m]]))
        st.ego_x[env], st.ego_y[env] = start_xy[0, 0]
        st.ego_yaw[env] = start_yaw[0, 0]
        st.ego_v[env] = st.ego_steer[env] = st.ego_accel[env] = 0.0
        st.seed[env] = np.uint64(scenario.traffic_seed % 2**63)
        st.time[env] = 0.0
        st.timeout[env] = scenario.timeout_s
        st.status[env] = codes.RUNNING
        phases = self.arrays.junction_phases
        cycle = phases * (cfg.lights.phase_s)
        st.light_offset[env, : len(phases)] = scenario.light_offset_s + np.mod(np.arange(len(phases)) * 0.618034,
                                                                                1.0) * cycle
        st.infractions[env] = 0
        st.last_hit[env], st.last_hit_time[env], st.reg_n[env] = -1, -np.inf, 0
        st.driven[env] = st.outside[env] = st.still[env] = 0.0
        st.ms_section[env], st.ms_ego[env], st.ms_frames[env] = 0, 0.0, 0
        st.ms_traffic[env] = 0.0
        st.min_speed[env] = np.nan
        st.ev_n[env] = 0
        st.trk_n[env] = st.trk_i[env] = 0
        self._spawn(env, scenario, start_xy[0, 0], route)
        stage_events(self.placement(env), scenario, route)

    def _spawn(self, env: int, scenario: Scenario, ego_xy: FloatArray, route: RoutePath) -> None:
        st, cfg, arrays, lanes = self.state, self.config, self.arrays, self.map.lanes
        placement = self.placement(env)
        rng = np.random.default_rng(scenario.traffic_seed)
        st.act_valid[env] = False
        st.act_kind[env] = ActorKind.NONE
        st.veh_respawn[env] = False
        st.veh_parked[env] = False
        st.veh_draws[env] = 0
        st.ped_draws[env] = 0
        st.ped_next[env] = -1
        st.veh_flags[env], st.veh_pending[env], st.veh_meet_s[env] = 0, False, -1.0
        st.veh_brake_decel[env], st.veh_brake_until[env] = 0.0, -np.inf
        st.veh_reveal_at[env] = st.veh_expire[env] = np.inf
        st.light_force[env], st.force_pending[env], st.force_until[env] = -1, False, -np.inf
        st.emg_slot[env], st.emg_since[env], st.emg_done[env], st.ego_yield_emg[env] = -1, np.inf, False, False
        st.stop_n[env], st.stop_next[env], st.stop_since[env], st.ego_stop_target[env] = 0, 0, np.inf, np.inf
        st.ego_merge_wait[env], st.curb_until[env] = False, -np.inf
        st.ped_pending[env] = st.ped_careless[env] = False
        st.ego_nudge[env] = st.ego_offset[env] = st.ego_nudge_need[env] = 0.0
        st.zone_n[env] = 0
        st.act_pass_need[env] = 0.0
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
            st.veh_respawn[env, slot] = True
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
            st.act_valid[env, n], st.act_kind[env, n] = True, ActorKind.PEDESTRIAN
            st.act_len[env, n], st.act_wid[env, n] = 0.5, 0.6
            st.ped_walk[env, q], st.ped_s[env, q] = walk, s
            st.ped_speed[env, q] = float(rng.uniform(1.0, 1.6))
            st.ped_start[env, q] = 0.0
        del walkways

    def placement(self, env: int) -> Placement:
        """Scenario ``env``, to put actors, scripts and mission items into (:class:`Placement`)."""
        return Placement(self.state, self.arrays, self.map, self.config, env)

    # ------------------------------------------------------------------ step
    @property
    def running(self) -> NDArray[np.bool_]:
        running: NDArray[np.bool_] = self.state.status == codes.RUNNING
        return running

    def step(self, actions: FloatArray, *, mask: NDArray[np.bool_] | None = None) -> None:
        """Advance running scenarios by one ``dt_s`` with ego actions ``(B, 2)`` = ``[steer, accel]``.

        :param mask: which scenarios may advance (default: all); the others hold still.
        """
        active = self.running if mask is None else self.running & mask
        actions = np.ascontiguousarray(np.asarray(actions, dtype=np.float64).reshape(self.batch_size, 2))
        run_chunked(lambda first, stop: tick.step(self.arrays, self.state, self.params, actions, active, first,
                                                     stop), self.batch_size, self._threads, _MIN_CHUNK)
        st = self.state
        ended = active & ~self.running
        if st.ev_n.any() or ended.any():
            self._collect_events(np.flatnonzero(st.ev_n), np.flatnonzero(ended))

    def _collect_events(self, with_events: NDArray[np.intp], ended: NDArray[np.intp]) -> None:
        st = self.state
        for env in with_events:
            for k in range(int(st.ev_n[env])):
                self.events.append(Event(int(env), float(st.time[env]), INFRACTIONS[int(st.ev_kind[env, k])].value,
                                         float(st.ego_x[env]), float(st.ego_y[env]), int(st.ev_actor[env, k])))
        for env in ended:
            status = STATUSES[int(st.status[env])]
            self.events.append(Event(int(env), float(st.time[env]), status.value, float(st.ego_x[env]),
                                     float(st.ego_y[env]), -1))

    # ------------------------------------------------------------------ results
    def route_completion(self) -> FloatArray:
        """Fraction of each route completed, in [0, 1] (1 once completed, within the completion tolerance)."""
        st = self.state
        fraction = np.clip((st.progress - st.start_s) / (st.end_s - st.start_s), 0.0, 1.0)
        return np.where(self.ended_with(RouteStatus.COMPLETED), 1.0, fraction)

    def ended_with(self, status: RouteStatus) -> NDArray[np.bool_]:
        """Which routes ended with ``status``."""
        ended: NDArray[np.bool_] = self.state.status == STATUSES.index(status)
        return ended

    def status_names(self) -> NDArray[np.str_]:
        """``(B,)`` how each route ended (:class:`~sim.metrics.RouteStatus` values), ``""`` while it runs."""
        names = np.array([status.value for status in STATUSES] + [""])
        return names[np.where(self.running, len(STATUSES), self.state.status)]

    def route_status(self, env: int) -> RouteStatus | None:
        """How the route in slot ``env`` ended, or ``None`` while it runs."""
        status = int(self.state.status[env])
        return None if status == codes.RUNNING else STATUSES[status]

    def route_record(self, env: int) -> RouteRecord:
        """The Leaderboard record of the route in slot ``env`` (so far, if it still runs)."""
        st = self.state
        route_length = float(st.end_s[env] - st.start_s[env])
        status = self.route_status(env)
        min_speed = st.min_speed[env]
        infractions = {kind: int(n) for kind, n in zip(INFRACTIONS, st.infractions[env], strict=True) if n}
        if np.isfinite(min_speed).any():
            infractions[Infraction.MIN_SPEED] = int(np.isfinite(min_speed).sum())
        return RouteRecord(
            route_completion=float(self.route_completion()[env]),
            infractions=infractions,
            outside_lanes_share=float(min(st.outside[env] / route_length, 1.0)),
            status=RouteStatus.ROUTE_TIMEOUT if status is None else status,
            driven_m=float(st.driven[env]),
            route_length_m=route_length,
            min_speed_percentages=tuple(float(x) for x in min_speed[np.isfinite(min_speed)]),
        )


def make_world(map_name: str, batch_size: int, config: WorldConfig = WorldConfig()) -> World:
    """A world on the registered map ``map_name``."""
    return World(get_map(map_name), batch_size, config)
