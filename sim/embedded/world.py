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
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from sim.embedded.compiled import MapArrays, compile_map
from sim.embedded.dynamics import BicycleParams, EgoState, IdmParams
from sim.embedded.kernels import codes, tick
from sim.embedded.staging import stage_events
from sim.embedded.threads import default_threads, run_chunked
from sim.embedded.traffic import LightTiming
from sim.geometry import FloatArray, cumulative_length, interpolate_along, resample_polyline, wrap_angle
from sim.maps import LaneGraph, get_map
from sim.metrics import Infraction, RouteRecord, RouteStatus
from sim.scenarios import Scenario

INFRACTIONS = tuple(Infraction)
_INDEX = {kind: i for i, kind in enumerate(INFRACTIONS)}
STATUSES = tuple(RouteStatus)
_RUNNING = codes.RUNNING
assert [INFRACTIONS.index(k) for k in (Infraction.COLLISION_PEDESTRIAN, Infraction.COLLISION_VEHICLE,
                                       Infraction.COLLISION_STATIC, Infraction.RED_LIGHT, Infraction.STOP_SIGN,
                                       Infraction.YIELD_TO_EMERGENCY, Infraction.MISSED_CURBSIDE_STOP)] \
    == [codes.INF_PEDESTRIAN, codes.INF_VEHICLE, codes.INF_STATIC, codes.INF_RED, codes.INF_STOP,
        codes.INF_EMERGENCY, codes.INF_MISSED_STOP]
assert [STATUSES.index(s) for s in (RouteStatus.COMPLETED, RouteStatus.ROUTE_DEVIATION, RouteStatus.AGENT_BLOCKED,
                                    RouteStatus.ROUTE_TIMEOUT)] \
    == [codes.COMPLETED, codes.DEVIATION, codes.BLOCKED, codes.TIMEOUT]


class ActorKind:
    """Actor types (``World.actor_kind``)."""

    NONE = codes.NONE
    VEHICLE = codes.VEHICLE
    PEDESTRIAN = codes.PEDESTRIAN
    STATIC = codes.STATIC


@dataclass(frozen=True)
class WorldConfig:
    """Physical and rule parameters of the embedded world.

    :param dt_s: simulation step (CARLA's Leaderboard runs at 20 Hz).
    :param max_vehicles: vehicle slots per scenario (scenarios ask for at most this many).
    :param max_pedestrians: pedestrian slots per scenario.
    :param max_statics: static-obstacle slots per scenario; a static slot may instead hold an actor of any kind
        that follows a recorded track (:meth:`World.place_track`, a non-reactive log replay).
    :param track_points: samples per recorded track (0: the world holds no tracks).
    :param ego_length_m: ego box length.
    :param ego_width_m: ego box width.
    :param route_deviation_m: the route fails when the ego is farther than this from it (Leaderboard: 30 m).
    :param blocked_s: the route fails when the ego stands below 0.1 m/s this long (Leaderboard: 180 s).
    :param completion_tolerance_m: the route counts as completed this close to its end.
    :param horizon_m: how far ahead vehicles look for leaders and stop lines.
    :param stop_speed_mps: a stop at a stop sign means standing below this speed ...
    :param stop_distance_m: ... with the front bumper within this distance of the line.
    :param min_speed_radius_m: background vehicles this close to the ego are the "surrounding traffic" of the
        minimum-speed test (the Leaderboard's background activity lives around the ego).
    :param threads: threads that step disjoint parts of the batch (default: one per CPU, at most 8); results do
        not depend on it.
    """

    dt_s: float = 0.05
    max_vehicles: int = 8
    max_pedestrians: int = 4
    max_statics: int = 6
    track_points: int = 0
    ego_length_m: float = 4.6
    ego_width_m: float = 2.0
    route_deviation_m: float = 30.0
    blocked_s: float = 180.0
    completion_tolerance_m: float = 1.5
    horizon_m: float = 50.0
    stop_speed_mps: float = 0.1
    stop_distance_m: float = 4.0
    min_speed_radius_m: float = 50.0
    threads: int | None = None
    bicycle: BicycleParams = BicycleParams()
    idm: IdmParams = IdmParams()
    lights: LightTiming = field(default_factory=LightTiming)

    def params(self) -> codes.Params:
        lights = self.lights
        return codes.Params(
            dt=self.dt_s, ego_length=self.ego_length_m, ego_width=self.ego_width_m, bicycle=self.bicycle,
            idm=self.idm, route_deviation=self.route_deviation_m, blocked_s=self.blocked_s,
            completion_tol=self.completion_tolerance_m, green_s=lights.green_s, yellow_s=lights.yellow_s,
            all_red_s=lights.all_red_s, horizon=self.horizon_m, collision_time_s=5.0, collision_area_m=3.0,
            collision_forget_m=5.0, stop_speed=self.stop_speed_mps, stop_distance=self.stop_distance_m,
            min_speed_radius=self.min_speed_radius_m)


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


class State(NamedTuple):
    """Every array the kernels read and write (see :mod:`sim.embedded.kernels`)."""

    seed: NDArray[np.uint64]
    time: FloatArray
    timeout: FloatArray
    status: NDArray[np.int64]
    ego_x: FloatArray
    ego_y: FloatArray
    ego_yaw: FloatArray
    ego_v: FloatArray
    ego_steer: FloatArray
    ego_accel: FloatArray
    route_x: FloatArray
    route_y: FloatArray
    route_n: NDArray[np.int64]
    route_ds: FloatArray
    start_s: FloatArray
    end_s: FloatArray
    progress: FloatArray
    lateral: FloatArray
    piece_lane: NDArray[np.int64]
    piece_start: FloatArray
    piece_end: FloatArray
    piece_offset: FloatArray
    piece_n: NDArray[np.int64]
    line_s: FloatArray
    line_lane: NDArray[np.int64]
    line_junction_lane: NDArray[np.int64]
    line_n: NDArray[np.int64]
    line_next: NDArray[np.int64]
    ego_served: NDArray[np.bool_]
    ego_arrival: FloatArray
    ego_wait_lane: NDArray[np.int64]
    light_offset: FloatArray
    lights: NDArray[np.int8]
    light_force: NDArray[np.int8]  # (B, G) a scenario event's light states (-1: the program's) ...
    force_pending: NDArray[np.bool_]  # ... set when the route progress reaches force_trigger ...
    force_trigger: FloatArray
    force_hold: FloatArray  # ... for this long
    force_until: FloatArray
    act_kind: NDArray[np.int8]
    act_x: FloatArray
    act_y: FloatArray
    act_yaw: FloatArray
    act_v: FloatArray
    act_len: FloatArray
    act_wid: FloatArray
    act_valid: NDArray[np.bool_]
    veh_lane: NDArray[np.int64]
    veh_s: FloatArray
    veh_desired: FloatArray
    veh_parked: NDArray[np.bool_]
    veh_offset: FloatArray
    veh_served: NDArray[np.int64]
    veh_arrival: FloatArray
    veh_draws: NDArray[np.int64]
    veh_respawn: NDArray[np.bool_]
    veh_flags: NDArray[np.int64]  # codes.HIDDEN | IGNORE_LIGHTS | IGNORE_PRIORITY | FOLLOW_ROUTE
    veh_pending: NDArray[np.bool_]  # an event armed for this vehicle, set off at veh_trigger (route progress)
    veh_trigger: FloatArray
    veh_meet_s: FloatArray  # when revealed: where on its lanes (from the first's start) it meets the ego, or -1
    veh_meet_route: FloatArray  # ... and where that is on the ego's route
    veh_brake_decel: FloatArray  # set off: brake this hard (0: not at all) ...
    veh_brake_hold: FloatArray  # ... and stand this long
    veh_brake_until: FloatArray
    veh_reveal_at: FloatArray  # a hidden vehicle set off before its lanes begin appears at this time
    veh_expire: FloatArray  # an event's vehicle leaves when the ego's route progress reaches this
    ped_walk: NDArray[np.int64]
    ped_next: NDArray[np.int64]
    ped_s: FloatArray
    ped_speed: FloatArray
    ped_start: FloatArray
    ped_draws: NDArray[np.int64]
    ped_path_x: FloatArray
    ped_path_y: FloatArray
    ped_path_s: FloatArray
    ped_path_n: NDArray[np.int64]
    ped_pending: NDArray[np.bool_]  # an event armed for this pedestrian, set off at ped_trigger (route progress)
    ped_careless: NDArray[np.bool_]  # walks on whoever comes (an event's hazard), instead of stopping for vehicles
    ped_trigger: FloatArray
    ped_meet_route: FloatArray  # where on the ego's route it meets the ego ...
    ped_meet_walk: FloatArray  # ... after walking this far
    occ_lane: NDArray[np.int64]
    occ_s: FloatArray
    occ_half: FloatArray
    occ_speed: FloatArray
    occ_actor: NDArray[np.int64]
    occ_kind: NDArray[np.int64]
    occ_n: NDArray[np.int64]
    loc_lane: NDArray[np.int64]
    loc_s: FloatArray
    loc_lat: FloatArray
    loc_heading: FloatArray
    loc_dist: FloatArray
    ego_leader_gap: FloatArray
    ego_leader_speed: FloatArray
    ego_speed_limit: FloatArray
    ego_line_kind: NDArray[np.int64]
    ego_line_state: NDArray[np.int64]
    ego_line_dist: FloatArray
    ego_must_stop: NDArray[np.bool_]
    ego_give_way: NDArray[np.bool_]  # (part of ego_must_stop) giving way at the junction entry ahead
    ego_nudge: FloatArray  # lateral offset (left +) the ego's path takes to pass obstacles ahead, 0: none
    ego_offset: FloatArray  # the offset now, moving towards ego_nudge
    ego_nudge_need: FloatArray  # the offset that would clear obstacles ahead (0: none), taken or not
    ego_nudge_end: FloatArray  # route s where the pass ends
    act_pass_need: FloatArray  # (B, N) obstacles ahead: the ego's leftward offset that clears them (0: none)
    ego_side_gap: FloatArray  # off its lane: the gap to whoever is ahead in the corridor it drives ...
    ego_side_speed: FloatArray  # ... and their speed along the route
    ego_yield_emg: NDArray[np.bool_]  # an emergency vehicle comes from behind: the ego pulls over (ego_nudge < 0)
    emg_slot: NDArray[np.int64]  # the scenario's emergency vehicle (-1: none) ...
    emg_since: FloatArray  # ... held up close behind the ego since (inf: not)
    emg_done: NDArray[np.bool_]  # ... got past, or the failure to yield is counted
    stop_s: FloatArray  # (B, MAX_STOPS) the robotaxi mission's curbside stops: route s of each ...
    stop_tol: FloatArray  # ... how far from it the ego may stand ...
    stop_dwell: FloatArray  # ... for how long ...
    stop_lat: FloatArray  # ... its centre at most this far left of the lane's centre (at the curb) ...
    stop_offset: FloatArray  # ... and the offset the ego's path takes for it
    stop_n: NDArray[np.int64]
    stop_next: NDArray[np.int64]  # the next stop to serve
    stop_since: FloatArray  # standing there since (inf: not)
    ego_stop_target: FloatArray  # route s of the next curbside stop (inf: none)
    ego_merge_wait: NDArray[np.bool_]  # off its lane at the curb: someone comes along the lane, wait to pull in
    curb_until: FloatArray  # route s up to which the ego may be off its lanes (leaving a parking place)
    ego_stop_dist: FloatArray
    ego_jlane: NDArray[np.int64]
    ego_japproach: NDArray[np.int64]
    ego_jdist: FloatArray
    appr_actor: NDArray[np.int64]
    appr_lane: NDArray[np.int64]
    appr_tte: FloatArray
    appr_rude: NDArray[np.bool_]
    appr_n: NDArray[np.int64]
    infractions: NDArray[np.int64]
    last_hit: NDArray[np.int64]
    last_hit_time: FloatArray
    reg_x: FloatArray
    reg_y: FloatArray
    reg_n: NDArray[np.int64]
    driven: FloatArray
    zone_start: FloatArray  # (B, MAX_ZONES) stretches of the route where driving on an oncoming lane is allowed
    zone_end: FloatArray
    zone_n: NDArray[np.int64]
    outside: FloatArray
    still: FloatArray
    ms_section: NDArray[np.int64]
    ms_ego: FloatArray
    ms_frames: NDArray[np.int64]
    ms_traffic: FloatArray
    min_speed: FloatArray
    ev_n: NDArray[np.int64]
    ev_kind: NDArray[np.int64]
    ev_actor: NDArray[np.int64]
    trk_n: NDArray[np.int64]  # (B, S) samples of static slot j's recorded track (0: none, the slot stands) ...
    trk_i: NDArray[np.int64]  # ... the sample at or before the time last looked up ...
    trk_t: FloatArray  # (B, S, T) ... times (from the scenario's start), increasing ...
    trk_x: FloatArray  # ... and poses and speeds
    trk_y: FloatArray
    trk_yaw: FloatArray
    trk_v: FloatArray


_PED_PATH_POINTS = 8
#: Stretches per route where a scenario allows driving on an oncoming lane.
_MAX_ZONES = 4
#: Curbside stops per route (the robotaxi mission).
_MAX_STOPS = 4
#: Vehicles spawn at least this far before the end of their lane (where a stop line may be).
_SPAWN_CLEARANCE_M = 15.0
#: Fewest scenarios worth a thread of their own.
_MIN_CHUNK = 16


def _allocate(b: int, lights: int, junctions: int, config: WorldConfig, route_points: int, pieces: int,
              lines: int) -> State:
    v, p, s = config.max_vehicles, config.max_pedestrians, config.max_statics
    n = v + p + s
    occ = v + codes.MAX_LOCATED * (1 + 2 * p + s + v)  # pedestrians: where they are and will be

    def f(*shape: int, fill: float = 0.0) -> FloatArray:
        return np.full(shape, fill, dtype=np.float64)

    def i(*shape: int, fill: int = 0) -> NDArray[np.int64]:
        return np.full(shape, fill, dtype=np.int64)

    def z(*shape: int) -> NDArray[np.bool_]:
        return np.zeros(shape, dtype=bool)

    return State(
        seed=np.zeros(b, dtype=np.uint64), time=f(b), timeout=f(b, fill=1.0), status=i(b, fill=_RUNNING),
        ego_x=f(b), ego_y=f(b), ego_yaw=f(b), ego_v=f(b), ego_steer=f(b), ego_accel=f(b),
        route_x=f(b, route_points), route_y=f(b, route_points), route_n=i(b, fill=2), route_ds=f(b, fill=1.0),
        start_s=f(b), end_s=f(b, fill=1.0), progress=f(b), lateral=f(b),
        piece_lane=i(b, pieces), piece_start=f(b, pieces), piece_end=f(b, pieces), piece_offset=f(b, pieces),
        piece_n=i(b), line_s=f(b, lines), line_lane=i(b, lines), line_junction_lane=i(b, lines, fill=-1),
        line_n=i(b), line_next=i(b), ego_served=z(b), ego_arrival=f(b), ego_wait_lane=i(b, fill=-1),
        light_offset=f(b, max(junctions, 1)), lights=np.zeros((b, lights), dtype=np.int8),
        light_force=np.full((b, lights), -1, dtype=np.int8), force_pending=z(b), force_trigger=f(b),
        force_hold=f(b), force_until=f(b, fill=-np.inf),
        act_kind=np.zeros((b, n), dtype=np.int8), act_x=f(b, n), act_y=f(b, n), act_yaw=f(b, n), act_v=f(b, n),
        act_len=f(b, n, fill=1.0), act_wid=f(b, n, fill=1.0), act_valid=z(b, n),
        veh_lane=i(b, v, 3, fill=-1), veh_s=f(b, v), veh_desired=f(b, v), veh_parked=z(b, v), veh_offset=f(b, v),
        veh_served=i(b, v, fill=-1), veh_arrival=f(b, v), veh_draws=i(b, v), veh_respawn=z(b, v),
        veh_flags=i(b, v), veh_pending=z(b, v), veh_trigger=f(b, v), veh_meet_s=f(b, v, fill=-1.0),
        veh_meet_route=f(b, v), veh_brake_decel=f(b, v), veh_brake_hold=f(b, v), veh_brake_until=f(b, v, fill=-np.inf),
        veh_reveal_at=f(b, v, fill=np.inf), veh_expire=f(b, v, fill=np.inf),
        ped_walk=i(b, p, fill=-1), ped_next=i(b, p, fill=-1), ped_s=f(b, p), ped_speed=f(b, p), ped_start=f(b, p),
        ped_draws=i(b, p), ped_path_x=f(b, p, _PED_PATH_POINTS), ped_path_y=f(b, p, _PED_PATH_POINTS),
        ped_path_s=f(b, p, _PED_PATH_POINTS), ped_path_n=i(b, p, fill=2),
        ped_pending=z(b, p), ped_careless=z(b, p), ped_trigger=f(b, p), ped_meet_route=f(b, p), ped_meet_walk=f(b, p),
        occ_lane=i(b, occ), occ_s=f(b, occ), occ_half=f(b, occ), occ_speed=f(b, occ), occ_actor=i(b, occ),
        occ_kind=i(b, occ), occ_n=i(b),
        loc_lane=i(b, codes.MAX_LOCATED), loc_s=f(b, codes.MAX_LOCATED), loc_lat=f(b, codes.MAX_LOCATED),
        loc_heading=f(b, codes.MAX_LOCATED), loc_dist=f(b, codes.MAX_LOCATED),
        ego_leader_gap=f(b, fill=np.inf), ego_leader_speed=f(b), ego_speed_limit=f(b, fill=10.0),
        ego_line_kind=i(b), ego_line_state=i(b, fill=-1), ego_line_dist=f(b, fill=np.inf), ego_must_stop=z(b),
        ego_give_way=z(b),
        ego_nudge=f(b), ego_offset=f(b), ego_nudge_need=f(b), ego_nudge_end=f(b),
        act_pass_need=f(b, n), ego_side_gap=f(b, fill=np.inf), ego_side_speed=f(b),
        ego_yield_emg=z(b), emg_slot=i(b, fill=-1), emg_since=f(b, fill=np.inf), emg_done=z(b),
        stop_s=f(b, _MAX_STOPS), stop_tol=f(b, _MAX_STOPS), stop_dwell=f(b, _MAX_STOPS), stop_lat=f(b, _MAX_STOPS),
        stop_offset=f(b, _MAX_STOPS), stop_n=i(b), stop_next=i(b), stop_since=f(b, fill=np.inf),
        ego_stop_target=f(b, fill=np.inf), ego_merge_wait=z(b), curb_until=f(b, fill=-np.inf),
        ego_stop_dist=f(b, fill=np.inf), ego_jlane=i(b, fill=-1), ego_japproach=i(b, fill=-1),
        ego_jdist=f(b, fill=np.inf), appr_actor=i(b, v + 1), appr_lane=i(b, v + 1), appr_tte=f(b, v + 1),
        appr_rude=z(b, v + 1), appr_n=i(b),
        infractions=i(b, len(INFRACTIONS)), last_hit=i(b, fill=-1), last_hit_time=f(b, fill=-np.inf),
        reg_x=f(b, codes.MAX_REGISTERED), reg_y=f(b, codes.MAX_REGISTERED), reg_n=i(b),
        zone_start=f(b, _MAX_ZONES), zone_end=f(b, _MAX_ZONES), zone_n=i(b),
        driven=f(b), outside=f(b), still=f(b),
        ms_section=i(b), ms_ego=f(b), ms_frames=i(b), ms_traffic=f(b),
        min_speed=f(b, codes.MIN_SPEED_SECTIONS, fill=np.nan),
        ev_n=i(b), ev_kind=i(b, codes.MAX_EVENTS), ev_actor=i(b, codes.MAX_EVENTS),
        trk_n=i(b, s), trk_i=i(b, s), trk_t=f(b, s, max(config.track_points, 1)),
        trk_x=f(b, s, max(config.track_points, 1)), trk_y=f(b, s, max(config.track_points, 1)),
        trk_yaw=f(b, s, max(config.track_points, 1)), trk_v=f(b, s, max(config.track_points, 1)),
    )


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
        self._routes: dict[tuple[int, ...], _Route] = {}  # built routes by their lanes (scenarios share them)
        self._lane_s: dict[int, FloatArray] = {}  # arc length at each centreline point, by lane
        self.state = _allocate(batch_size, lane_graph.light_groups, self._junctions, config, 2, 1, 1)
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

    def _route(self, scenario: Scenario) -> _Route:
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
            route = self._routes[scenario.route] = _Route.build(self.map, scenario.route)
        return route

    def _lane_point(self, lane: int, s_m: float) -> FloatArray:
        """The point ``s_m`` along lane ``lane``'s centreline."""
        arc = self._lane_s.get(lane)
        if arc is None:
            arc = self._lane_s[lane] = cumulative_length(self.map.lanes[lane].centerline)
        points = self.map.lanes[lane].centerline
        return np.array([np.interp(s_m, arc, points[:, 0]), np.interp(s_m, arc, points[:, 1])])

    def _fit(self, routes: list[_Route]) -> None:
        """Grow the route buffers when a route needs more room (keeping every running scenario)."""
        st = self.state
        need = (max(len(r.points) for r in routes), max(len(r.pieces) for r in routes),
                max(len(r.lines) for r in routes))
        have = (st.route_x.shape[1], st.piece_lane.shape[1], st.line_s.shape[1])
        if all(n <= h for n, h in zip(need, have, strict=True)):
            return
        size = tuple(max(n, h) for n, h in zip(need, have, strict=True))
        grown = _allocate(self.batch_size, self.map.light_groups, self._junctions, self.config, *size)
        fields = {}
        for name, old in st._asdict().items():
            new = getattr(grown, name)
            if new.shape != old.shape:
                new[(slice(None),) + tuple(slice(0, k) for k in old.shape[1:])] = old
                fields[name] = new
            else:
                fields[name] = old
        self.state = State(**fields)

    def _reset_one(self, env: int, scenario: Scenario, route: _Route) -> None:
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
        st.status[env] = _RUNNING
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
        stage_events(self, env, scenario, route)

    def _spawn(self, env: int, scenario: Scenario, ego_xy: FloatArray, route: _Route) -> None:
        st, cfg, arrays, lanes = self.state, self.config, self.arrays, self.map.lanes
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
            following = _pick(rng, lanes[lane].successors)
            factor = float(rng.uniform(0.7, 1.0))
            self._set_vehicle(env, slot, (lane, following, _pick(rng, lanes[following].successors)
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
                xy = _lane_point(points, s)
                if np.linalg.norm(xy - ego_xy) >= 8.0:
                    break
            n = cfg.max_vehicles + q
            st.act_valid[env, n], st.act_kind[env, n] = True, ActorKind.PEDESTRIAN
            st.act_len[env, n], st.act_wid[env, n] = 0.5, 0.6
            st.ped_walk[env, q], st.ped_s[env, q] = walk, s
            st.ped_speed[env, q] = float(rng.uniform(1.0, 1.6))
            st.ped_start[env, q] = 0.0
        del walkways

    def _set_vehicle(self, env: int, slot: int, lanes: tuple[int, int, int], *, s_m: float, speed_mps: float,
                     desired_factor: float, desired_cap: float, length_m: float, width_m: float,
                     parked: bool = False, lateral_offset_m: float = 0.0) -> None:
        st = self.state
        st.veh_lane[env, slot] = lanes
        st.veh_s[env, slot] = s_m
        st.act_v[env, slot] = speed_mps
        st.veh_desired[env, slot] = min(desired_factor, desired_cap / max(self.map.lanes[lanes[0]].speed_limit_mps,
                                                                           1e-3))
        st.act_len[env, slot], st.act_wid[env, slot] = length_m, width_m
        st.veh_parked[env, slot] = parked
        st.veh_offset[env, slot] = lateral_offset_m
        st.veh_served[env, slot] = -1
        st.act_valid[env, slot] = True
        st.act_kind[env, slot] = ActorKind.VEHICLE

    # ------------------------------------------------------------------ placing actors (scenario events)
    def place_vehicle(self, env: int, slot: int, lane_ids: tuple[int, ...], *, s_m: float, speed_mps: float,
                      desired_speed_mps: float, length_m: float = 4.5, width_m: float = 1.9,
                      lateral_offset_m: float = 0.0) -> None:
        """Put a vehicle in ``slot`` of scenario ``env`` at arc length ``s_m`` along ``lane_ids`` (its first lane
        and the ones it takes next; beyond them it picks successors at random).

        It drives with IDM at up to ``desired_speed_mps``; ``desired_speed_mps = 0`` parks it (it stands still,
        ``lateral_offset_m`` to the left of the lane's centre, and occupies the lanes it overlaps).
        """
        lanes = self.map.lanes
        path = list(lane_ids)
        while path and s_m > lanes[path[0]].length_m and len(path) > 1:
            s_m -= lanes[path[0]].length_m
            path.pop(0)
        rng = np.random.default_rng([self.state.seed[env], slot])
        while len(path) < 3:
            path.append(_pick(rng, lanes[path[-1]].successors) if path[-1] >= 0 else -1)
        parked = desired_speed_mps <= 0.0
        self._set_vehicle(env, slot, (path[0], path[1], path[2]), s_m=s_m, speed_mps=0.0 if parked else speed_mps,
                          desired_factor=np.inf, desired_cap=desired_speed_mps, length_m=length_m, width_m=width_m,
                          parked=parked, lateral_offset_m=lateral_offset_m)
        self.state.veh_respawn[env, slot] = False
        tick.refresh(self.arrays, self.state, self.params, np.array([env], dtype=np.int64))

    def place_pedestrian(self, env: int, slot: int, path_xy: FloatArray, *, speed_mps: float = 1.4,
                         start_time_s: float = 0.0) -> None:
        """Put a pedestrian in pedestrian ``slot`` of scenario ``env``, walking the polyline ``path_xy`` (at most
        8 points; e.g. across the road off a crosswalk) from ``start_time_s`` on, and standing at its end."""
        points = np.asarray(path_xy, dtype=np.float64)
        if not 2 <= len(points) <= _PED_PATH_POINTS:
            raise ValueError(f"a pedestrian path has 2..{_PED_PATH_POINTS} points, got {len(points)}")
        st = self.state
        n = self.config.max_vehicles + slot
        st.ped_walk[env, slot], st.ped_next[env, slot] = -1, -1
        st.ped_path_x[env, slot, : len(points)], st.ped_path_y[env, slot, : len(points)] = points[:, 0], points[:, 1]
        st.ped_path_s[env, slot, : len(points)] = cumulative_length(points)
        st.ped_path_n[env, slot] = len(points)
        st.ped_s[env, slot], st.ped_speed[env, slot], st.ped_start[env, slot] = 0.0, speed_mps, start_time_s
        st.act_valid[env, n], st.act_kind[env, n] = True, ActorKind.PEDESTRIAN
        st.act_len[env, n], st.act_wid[env, n] = 0.5, 0.6
        tick.refresh(self.arrays, self.state, self.params, np.array([env], dtype=np.int64))

    def arm_vehicle(self, env: int, slot: int, *, trigger_s_m: float, hidden: bool = False,
                    ignore_lights: bool = False, ignore_priority: bool = False, follow_route: bool = False,
                    meet_s_m: float = -1.0, meet_route_s_m: float = 0.0, brake_decel_mps2: float = 0.0,
                    hold_s: float = 0.0, cut_in_speed_mps: float = 0.0, emergency: bool = False,
                    keep_offset: bool = False, no_curb_yield: bool = False, leave_at_s_m: float = np.inf) -> None:
        """Script the vehicle placed in ``slot`` (:meth:`place_vehicle`) for an event set off when the ego's route
        progress reaches ``trigger_s_m``.

        :param hidden: the vehicle is not there until the trigger; with ``meet_s_m >= 0`` it then appears where,
            at its speed, it reaches ``meet_s_m`` (arc length from the start of its first lane) when the ego, at
            its speed then, reaches ``meet_route_s_m`` on its route.
        :param ignore_lights: drive through red lights.
        :param ignore_priority: ignore stop signs, yielding and the blocked-junction rule.
        :param follow_route: take the ego route's next lane at each junction (where the route goes on).
        :param brake_decel_mps2: at the trigger, brake this hard to a standstill, stand ``hold_s`` and go on.
        :param cut_in_speed_mps: a parked vehicle that, at the trigger, pulls out into its lane and drives on at
            up to this speed.
        :param emergency: an emergency vehicle (it ignores lights, priority and speed limits, keeping the speed it
            was placed with): the ego must let it pass, pulling
            over to the right; it passes on the left (``yield_to_emergency_vehicle`` when held up behind the ego).
        :param keep_offset: drive with the placed lateral offset (e.g. into the oncoming lane) instead of moving
            back to the lane's centre.
        :param no_curb_yield: driving the ego's route, it does not brake for the ego pulling out of the curb into
            its lane (the ego must wait for a gap).
        :param leave_at_s_m: the vehicle leaves the world when the ego's route progress reaches this (its part is
            over: the Leaderboard's scenarios destroy their actors at their end).
        """
        st = self.state
        ignore_lights, ignore_priority = ignore_lights or emergency, ignore_priority or emergency
        st.veh_flags[env, slot] = ((codes.HIDDEN if hidden else 0) | (codes.IGNORE_LIGHTS if ignore_lights else 0)
                                   | (codes.IGNORE_PRIORITY if ignore_priority else 0)
                                   | (codes.FOLLOW_ROUTE if follow_route else 0)
                                   | (codes.CUT_IN if cut_in_speed_mps > 0.0 else 0)
                                   | (codes.EMERGENCY if emergency else 0)
                                   | (codes.KEEP_OFFSET if keep_offset else 0)
                                   | (codes.NO_CURB_YIELD if no_curb_yield else 0))
        if emergency:  # it drives at its speed whatever the limit
            st.veh_desired[env, slot] = st.act_v[env, slot]
            if st.emg_slot[env] >= 0:
                raise ValueError("at most one emergency vehicle per scenario")
            st.emg_slot[env] = slot
        if cut_in_speed_mps > 0.0:
            limit = self.map.lanes[int(st.veh_lane[env, slot, 0])].speed_limit_mps
            st.veh_desired[env, slot] = cut_in_speed_mps / max(limit, 1e-3)
        st.veh_pending[env, slot], st.veh_trigger[env, slot] = True, trigger_s_m
        st.veh_meet_s[env, slot], st.veh_meet_route[env, slot] = meet_s_m, meet_route_s_m
        st.veh_brake_decel[env, slot], st.veh_brake_hold[env, slot] = brake_decel_mps2, hold_s
        st.veh_brake_until[env, slot] = -np.inf
        st.veh_expire[env, slot] = leave_at_s_m
        if hidden:
            st.act_valid[env, slot] = False
        tick.refresh(self.arrays, self.state, self.params, np.array([env], dtype=np.int64))

    def arm_pedestrian(self, env: int, slot: int, *, trigger_s_m: float, meet_route_s_m: float,
                       meet_walk_m: float) -> None:
        """Hold the pedestrian placed in ``slot`` (:meth:`place_pedestrian`) until the ego's route progress reaches
        ``trigger_s_m``, then start it so that it has walked ``meet_walk_m`` when the ego, at its speed then,
        reaches ``meet_route_s_m`` on its route. It walks on whoever comes (it is the event's hazard)."""
        st = self.state
        st.ped_pending[env, slot], st.ped_trigger[env, slot] = True, trigger_s_m
        st.ped_careless[env, slot] = True
        st.ped_meet_route[env, slot], st.ped_meet_walk[env, slot] = meet_route_s_m, meet_walk_m
        st.ped_start[env, slot] = np.inf

    def add_curbside_stop(self, env: int, s_m: float, *, tolerance_m: float, dwell_s: float, lateral_max_m: float,
                          offset_m: float) -> None:
        """Add a stop to the robotaxi mission of scenario ``env`` (stops are served in the order added): the ego
        must stand (below 0.3 m/s) with its centre within ``tolerance_m`` of route arc length ``s_m`` and at most
        ``lateral_max_m`` left of the route (negative: right of it, at the curb) for ``dwell_s`` seconds; driving
        more than 3 m past the tolerance without that is ``missed_curbside_stop``. The expert's path takes
        ``offset_m`` for it."""
        st = self.state
        k = int(st.stop_n[env])
        if k >= st.stop_s.shape[1]:
            raise ValueError(f"at most {st.stop_s.shape[1]} curbside stops per scenario")
        if k and s_m <= st.stop_s[env, k - 1]:
            raise ValueError(f"curbside stops go in route order: {s_m:.1f} m after {st.stop_s[env, k - 1]:.1f} m")
        st.stop_s[env, k], st.stop_tol[env, k], st.stop_dwell[env, k] = s_m, tolerance_m, dwell_s
        st.stop_lat[env, k], st.stop_offset[env, k] = lateral_max_m, offset_m
        st.stop_n[env] = k + 1
        tick.refresh(self.arrays, self.state, self.params, np.array([env], dtype=np.int64))

    def park_ego(self, env: int, lateral_m: float, *, leave_by_s_m: float) -> None:
        """Start the ego of scenario ``env`` ``lateral_m`` to the left of its route (negative: right, in a parking
        place at the curb); it may drive off its lanes until its route progress reaches ``leave_by_s_m``."""
        st = self.state
        yaw = st.ego_yaw[env]
        st.ego_x[env] -= lateral_m * np.sin(yaw)
        st.ego_y[env] += lateral_m * np.cos(yaw)
        st.curb_until[env] = leave_by_s_m
        tick.refresh(self.arrays, self.state, self.params, np.array([env], dtype=np.int64))

    def perturb_ego(self, env: int, lateral_m: float, yaw_rad: float) -> None:
        """Move the ego of scenario ``env``, standing at its start, ``lateral_m`` to the left of its route
        (negative: right) and turn it ``yaw_rad`` to the left: a perturbed start, from which a driver has to
        find its way back to the route (augmentation of imitation data, as ChauffeurNet's perturbed
        trajectories).

        :raises ValueError: once the scenario has started, or for a shift that would leave the ego's lane.
        """
        st = self.state
        if st.time[env] != 0.0:
            raise ValueError(f"scenario {env}: perturb the ego before the first step (t = {st.time[env]:.1f} s)")
        if abs(lateral_m) > 1.5:
            raise ValueError(f"scenario {env}: a lateral shift of {lateral_m:.2f} m leaves the lane (at most 1.5 m)")
        yaw = st.ego_yaw[env]
        st.ego_x[env] -= lateral_m * np.sin(yaw)
        st.ego_y[env] += lateral_m * np.cos(yaw)
        st.ego_yaw[env] = wrap_angle(yaw + yaw_rad)
        tick.refresh(self.arrays, self.state, self.params, np.array([env], dtype=np.int64))

    def hold_lights(self, env: int, states: dict[int, int], *, trigger_s_m: float, hold_s: float) -> None:
        """From when the ego's route progress reaches ``trigger_s_m`` and for ``hold_s`` seconds, light groups
        ``states`` keys show the given states (:class:`sim.embedded.traffic.LightState` values) instead of their
        program's (as the Leaderboard's junction scenarios set a junction's lights); then the program resumes."""
        st = self.state
        st.light_force[env] = -1
        for group, state in states.items():
            st.light_force[env, group] = state
        st.force_pending[env], st.force_trigger[env], st.force_hold[env] = True, trigger_s_m, hold_s
        st.force_until[env] = -np.inf

    def allow_oncoming_lane(self, env: int, start_s_m: float, end_s_m: float) -> None:
        """Let the ego of scenario ``env`` drive on an oncoming lane between these route arc lengths without it
        counting as outside its lanes (the Leaderboard's scenarios switch the wrong-direction test off while the
        ego passes their obstacles)."""
        st = self.state
        count = int(st.zone_n[env])
        if count >= st.zone_start.shape[1]:
            raise ValueError(f"at most {st.zone_start.shape[1]} oncoming-lane stretches per scenario")
        st.zone_start[env, count], st.zone_end[env, count] = start_s_m, end_s_m
        st.zone_n[env] = count + 1

    def place_static(self, env: int, slot: int, xy: tuple[float, float], yaw_rad: float, *, length_m: float,
                     width_m: float) -> None:
        """Put a static obstacle (cone, barrier, debris) in static ``slot`` of scenario ``env``."""
        st = self.state
        n = self.config.max_vehicles + self.config.max_pedestrians + slot
        st.act_x[env, n], st.act_y[env, n], st.act_yaw[env, n] = xy[0], xy[1], yaw_rad
        st.act_len[env, n], st.act_wid[env, n], st.act_v[env, n] = length_m, width_m, 0.0
        st.act_valid[env, n], st.act_kind[env, n] = True, ActorKind.STATIC
        tick.refresh(self.arrays, self.state, self.params, np.array([env], dtype=np.int64))

    def place_track(self, env: int, slot: int, kind: int, track: FloatArray, *, length_m: float,
                    width_m: float) -> None:
        """Put an actor that replays a recorded track in static ``slot`` of scenario ``env``: ``track`` is
        ``(T, 5)`` samples ``[time_s, x_m, y_m, yaw_rad, speed_mps]`` with time from the scenario's start,
        increasing. The actor is there from the first sample to the last (interpolated in between: an actor unseen
        for a while is two tracks) and goes where the record has it, whatever the ego does; a vehicle
        (``kind`` :attr:`ActorKind.VEHICLE`) is traffic to follow, a pedestrian one to yield to, as in the record.

        :raises ValueError: when the world has too few track points, or times do not increase.
        """
        st = self.state
        track = np.asarray(track, dtype=np.float64)
        count = len(track)
        if track.ndim != 2 or track.shape[1] != 5 or count == 0:
            raise ValueError(f"a track is (T, 5) samples [time, x, y, yaw, speed], got shape {track.shape}")
        if count > self.config.track_points:
            raise ValueError(f"a track of {count} samples needs WorldConfig.track_points >= {count} "
                             f"(this world has {self.config.track_points})")
        if np.any(np.diff(track[:, 0]) <= 0.0):
            raise ValueError("track times must increase")
        n = self.config.max_vehicles + self.config.max_pedestrians + slot
        st.trk_n[env, slot], st.trk_i[env, slot] = count, 0
        for column, name in enumerate(("trk_t", "trk_x", "trk_y", "trk_yaw", "trk_v")):
            getattr(st, name)[env, slot, :count] = track[:, column]
        st.act_len[env, n], st.act_wid[env, n], st.act_kind[env, n] = length_m, width_m, kind
        st.act_valid[env, n] = False  # until the kernels look the track up
        tick.refresh(self.arrays, self.state, self.params, np.array([env], dtype=np.int64))

    # ------------------------------------------------------------------ step
    @property
    def running(self) -> NDArray[np.bool_]:
        running: NDArray[np.bool_] = self.state.status == _RUNNING
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
        return None if status == _RUNNING else STATUSES[status]

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


@dataclass(frozen=True)
class _Route:
    """A scenario's route, ready for the state arrays."""

    points: FloatArray
    spacing_m: float
    pieces: tuple[Any, ...]
    offsets: tuple[float, ...]
    lines: tuple[tuple[float, int, int], ...]  # (route s, approach lane, junction lane after it or -1)

    @property
    def length_m(self) -> float:
        return self.spacing_m * (len(self.points) - 1)

    @staticmethod
    def build(lane_graph: LaneGraph, lane_ids: Sequence[int]) -> _Route:
        lanes = lane_graph.lanes
        path = lane_graph.route_path(lane_ids)
        pieces = path.pieces
        polyline = path.polyline(lane_graph)
        offsets, lines = [], []
        offset = 0.0
        for k, piece in enumerate(pieces):
            offsets.append(offset)
            end = offset + piece.end_s_m - piece.start_s_m
            lane = lanes[piece.lane]
            following = pieces[k + 1].lane if k + 1 < len(pieces) else -1
            at_end = piece.end_s_m >= lane.length_m - 1e-6
            if at_end and (lane.light_group is not None or lane.stop_sign) and following in lane.successors:
                lines.append((end, piece.lane, following if lanes[following].is_junction else -1))
            if k + 1 < len(pieces):
                here = _lane_point(lane.centerline, piece.end_s_m)
                there = _lane_point(lanes[following].centerline, pieces[k + 1].start_s_m)
                end += float(np.linalg.norm(there - here))
            offset = end
        length = float(cumulative_length(polyline)[-1])
        count = max(int(np.ceil(length)), 1) + 1
        points = resample_polyline(polyline, count=count)
        scale = length / offset if offset > 0 else 1.0  # piece offsets on the same scale as the polyline
        return _Route(points, length / (count - 1), pieces, tuple(o * scale for o in offsets),
                      tuple((s * scale, lane, junction) for s, lane, junction in lines))


def _lane_point(points: FloatArray, s: float) -> FloatArray:
    xy, _ = interpolate_along(points[None], cumulative_length(points)[None], np.array([[s]]))
    point: FloatArray = xy[0, 0]
    return point


def _pick(rng: np.random.Generator, options: Sequence[int]) -> int:
    return int(rng.choice(options)) if len(options) else -1


def make_world(map_name: str, batch_size: int, config: WorldConfig = WorldConfig()) -> World:
    """A world on the registered map ``map_name``."""
    return World(get_map(map_name), batch_size, config)
