"""The embedded world's state: every array the kernels read and write, with a leading batch dimension ``B``
(and an actor dimension ``N``: vehicles, then pedestrians, then static obstacles), and the world's parameters.

Frames and units: map frame (right-handed, metres), seconds, radians; speeds in m/s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from sim.embedded.dynamics import BicycleParams, IdmParams
from sim.embedded.kernels import codes
from sim.embedded.traffic import LightTiming
from sim.geometry import FloatArray
from sim.metrics import Infraction, RouteStatus

INFRACTIONS = tuple(Infraction)
_INDEX = {kind: i for i, kind in enumerate(INFRACTIONS)}
STATUSES = tuple(RouteStatus)
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


PED_PATH_POINTS = 8
#: Stretches per route where a scenario allows driving on an oncoming lane.
MAX_ZONES = 4
#: Curbside stops per route (the robotaxi mission).
MAX_STOPS = 4


def allocate(b: int, lights: int, junctions: int, config: WorldConfig, route_points: int, pieces: int,
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
        seed=np.zeros(b, dtype=np.uint64), time=f(b), timeout=f(b, fill=1.0), status=i(b, fill=codes.RUNNING),
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
        ped_draws=i(b, p), ped_path_x=f(b, p, PED_PATH_POINTS), ped_path_y=f(b, p, PED_PATH_POINTS),
        ped_path_s=f(b, p, PED_PATH_POINTS), ped_path_n=i(b, p, fill=2),
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
        stop_s=f(b, MAX_STOPS), stop_tol=f(b, MAX_STOPS), stop_dwell=f(b, MAX_STOPS), stop_lat=f(b, MAX_STOPS),
        stop_offset=f(b, MAX_STOPS), stop_n=i(b), stop_next=i(b), stop_since=f(b, fill=np.inf),
        ego_stop_target=f(b, fill=np.inf), ego_merge_wait=z(b), curb_until=f(b, fill=-np.inf),
        ego_stop_dist=f(b, fill=np.inf), ego_jlane=i(b, fill=-1), ego_japproach=i(b, fill=-1),
        ego_jdist=f(b, fill=np.inf), appr_actor=i(b, v + 1), appr_lane=i(b, v + 1), appr_tte=f(b, v + 1),
        appr_rude=z(b, v + 1), appr_n=i(b),
        infractions=i(b, len(INFRACTIONS)), last_hit=i(b, fill=-1), last_hit_time=f(b, fill=-np.inf),
        reg_x=f(b, codes.MAX_REGISTERED), reg_y=f(b, codes.MAX_REGISTERED), reg_n=i(b),
        zone_start=f(b, MAX_ZONES), zone_end=f(b, MAX_ZONES), zone_n=i(b),
        driven=f(b), outside=f(b), still=f(b),
        ms_section=i(b), ms_ego=f(b), ms_frames=i(b), ms_traffic=f(b),
        min_speed=f(b, codes.MIN_SPEED_SECTIONS, fill=np.nan),
        ev_n=i(b), ev_kind=i(b, codes.MAX_EVENTS), ev_actor=i(b, codes.MAX_EVENTS),
        trk_n=i(b, s), trk_i=i(b, s), trk_t=f(b, s, max(config.track_points, 1)),
        trk_x=f(b, s, max(config.track_points, 1)), trk_y=f(b, s, max(config.track_points, 1)),
        trk_yaw=f(b, s, max(config.track_points, 1)), trk_v=f(b, s, max(config.track_points, 1)),
    )


