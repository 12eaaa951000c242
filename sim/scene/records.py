"""The scene: what a backend shows of a batch of ``B`` driving scenarios each step, as typed structure-of-arrays
records, over the map's lane graph (:class:`sim.maps.compiled.MapArrays`).

A backend fills the scene (the embedded world moves things and writes where they are; a CARLA client reads them
from the server); everything that only reads the world is a function of the scene and the map, written once in
:mod:`sim.scene`: the privileged facts (:mod:`sim.scene.kernels`), the infractions and the route's outcome, the
observation (:mod:`sim.scene.observation`).

Actor slots per scenario (``N``): ``[0, V)`` vehicles, ``[V, V + P)`` pedestrians, ``[V + P, N)`` static
obstacles (or actors following a recorded track). Frames and units: map frame (right-handed, metres), seconds,
radians; route positions ``*_m`` are arc lengths along the scenario's route polyline.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from sim.geometry import FloatArray
from sim.metrics import Infraction, RouteStatus
from sim.scene import codes

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

INFRACTIONS = tuple(Infraction)
STATUSES = tuple(RouteStatus)
assert [INFRACTIONS.index(k) for k in (Infraction.COLLISION_PEDESTRIAN, Infraction.COLLISION_VEHICLE,
                                       Infraction.COLLISION_STATIC, Infraction.RED_LIGHT, Infraction.STOP_SIGN,
                                       Infraction.YIELD_TO_EMERGENCY, Infraction.MISSED_CURBSIDE_STOP)] \
    == [codes.INF_PEDESTRIAN, codes.INF_VEHICLE, codes.INF_STATIC, codes.INF_RED, codes.INF_STOP,
        codes.INF_EMERGENCY, codes.INF_MISSED_STOP]
assert [STATUSES.index(s) for s in (RouteStatus.COMPLETED, RouteStatus.ROUTE_DEVIATION, RouteStatus.AGENT_BLOCKED,
                                    RouteStatus.ROUTE_TIMEOUT)] \
    == [codes.COMPLETED, codes.DEVIATION, codes.BLOCKED, codes.TIMEOUT]

#: Stretches per route where a scenario allows driving on an oncoming lane.
MAX_ZONES = 4
#: Curbside stops per route (the robotaxi mission).
MAX_STOPS = 4


class ActorKind:
    """Actor types (``Actors.kind``)."""

    NONE = codes.NONE
    VEHICLE = codes.VEHICLE
    PEDESTRIAN = codes.PEDESTRIAN
    STATIC = codes.STATIC


class Ego(NamedTuple):
    """The ego's pose and actuators, ``(B,)``; the pose is the centre of its box."""

    x_m: FloatArray
    y_m: FloatArray
    yaw_rad: FloatArray
    speed_mps: FloatArray
    steer_rad: FloatArray  # the front wheels' angle
    accel_mps2: FloatArray  # the acceleration applied in the last step


class Actors(NamedTuple):
    """Everyone else, ``(B, N)``: boxes with their centre, heading and speed."""

    kind: NDArray[np.int8]  # codes.NONE / VEHICLE / PEDESTRIAN / STATIC
    x_m: FloatArray
    y_m: FloatArray
    yaw_rad: FloatArray
    speed_mps: FloatArray
    length_m: FloatArray
    width_m: FloatArray
    valid: BoolArray  # in the scene now


class Vehicles(NamedTuple):
    """What the lane graph knows of the vehicle slots ``[0, V)``, ``(B, V)``."""

    lanes: IntArray  # (B, V, 3) the lane it drives on and the next two it will take (-1: none)
    lane_s_m: FloatArray  # how far along the first
    offset_m: FloatArray  # its lateral offset from the lane's centre (left +)
    parked: BoolArray  # stands at the curb
    flags: IntArray  # codes.HIDDEN | IGNORE_LIGHTS | IGNORE_PRIORITY | FOLLOW_ROUTE | CUT_IN | EMERGENCY | ...
    background: BoolArray  # background traffic (the surrounding traffic of the minimum-speed test)
    served_lane: IntArray  # the lane it stopped at a stop sign on, and may go on from (-1: none) ...
    arrival_s: FloatArray  # ... and when it arrived there (first come, first served)


class Route(NamedTuple):
    """The ego's route: a polyline sampled every ``ds_m``, the lanes it takes and the lines it crosses."""

    x_m: FloatArray  # (B, R)
    y_m: FloatArray
    n: IntArray  # (B,) points used
    ds_m: FloatArray  # (B,) spacing of the points
    start_m: FloatArray  # (B,) where the scenario starts on it ...
    end_m: FloatArray  # ... and ends
    progress_m: FloatArray  # (B,) the ego's projection on it ...
    lateral_m: FloatArray  # ... and its signed distance from it (left +)
    piece_lane: IntArray  # (B, K) the lanes, in order ...
    piece_start_m: FloatArray  # ... the stretch of each lane used ...
    piece_end_m: FloatArray
    piece_offset_m: FloatArray  # ... and where each begins on the route
    piece_n: IntArray  # (B,)
    line_s_m: FloatArray  # (B, L) stop lines (lights and stop signs) on the route, in order ...
    line_lane: IntArray  # ... the lane that ends at each ...
    line_junction_lane: IntArray  # ... and the junction lane the route takes after it (-1: none)
    line_n: IntArray  # (B,)
    line_next: IntArray  # (B,) the first line not yet passed


class Mission(NamedTuple):
    """The robotaxi mission's curbside stops and what the scenario allows, ``(B, MAX_STOPS)`` / ``(B, MAX_ZONES)``."""

    stop_s_m: FloatArray  # route position of each stop ...
    stop_tol_m: FloatArray  # ... how far from it the ego may stand ...
    stop_dwell_s: FloatArray  # ... for how long ...
    stop_lat_m: FloatArray  # ... its centre at most this far left of the lane's centre (at the curb) ...
    stop_offset_m: FloatArray  # ... and the offset the ego's path takes for it
    stop_n: IntArray  # (B,)
    stop_next: IntArray  # (B,) the next stop to serve
    stop_since_s: FloatArray  # (B,) standing there since (inf: not)
    zone_start_m: FloatArray  # stretches of the route where driving on an oncoming lane is allowed
    zone_end_m: FloatArray
    zone_n: IntArray  # (B,)
    curb_until_m: FloatArray  # (B,) route position up to which the ego may be off its lanes (leaving a parking place)


class Emergency(NamedTuple):
    """The scenario's emergency vehicle, ``(B,)``."""

    slot: IntArray  # its vehicle slot (-1: none) ...
    since_s: FloatArray  # ... held up close behind the ego since (inf: not)
    done: BoolArray  # ... got past, or the failure to yield is counted


class Facts(NamedTuple):
    """The privileged facts about the ego's way ahead (:mod:`sim.scene.kernels.planner`), ``(B,)``: what the expert
    plans with and the state vector shows."""

    leader_gap_m: FloatArray  # front bumper to the nearest actor in the ego's path (inf: none) ...
    leader_speed_mps: FloatArray  # ... and its speed along the route
    speed_limit_mps: FloatArray  # of the lane under the ego
    line_kind: IntArray  # the next stop line's control: codes.LINE_NONE / LINE_LIGHT / LINE_STOP ...
    line_state: IntArray  # ... its light (-1: none) ...
    line_dist_m: FloatArray  # ... and the distance from the ego's centre to it
    must_stop: BoolArray  # stop at the next line or junction entry now
    give_way: BoolArray  # (part of must_stop) giving way at the junction entry ahead
    nudge_m: FloatArray  # lateral offset (left +) the ego's path takes to pass obstacles ahead (0: none)
    offset_m: FloatArray  # the offset now, moving towards nudge_m
    nudge_need_m: FloatArray  # the offset that would clear obstacles ahead (0: none), taken or not
    nudge_end_m: FloatArray  # route position where the pass ends
    pass_need_m: FloatArray  # (B, N) per obstacle ahead: the ego's leftward offset that clears it (0: none)
    side_gap_m: FloatArray  # off its lane: the gap to whoever is ahead in the corridor it drives ...
    side_speed_mps: FloatArray  # ... and their speed along the route
    yield_emergency: BoolArray  # an emergency vehicle comes from behind: the ego pulls over (nudge_m < 0)
    stop_target_m: FloatArray  # route position of the next curbside stop (inf: none)
    merge_wait: BoolArray  # off its lane at the curb: someone comes along the lane, wait to pull in
    stop_dist_m: FloatArray  # from the ego's centre to where it must stop (inf: nowhere)
    junction_lane: IntArray  # the junction lane the route takes next (-1: none) ...
    junction_approach: IntArray  # ... the lane that leads into it ...
    junction_dist_m: FloatArray  # ... and the distance to its entry
    creep_lane: IntArray  # the junction lane the ego creeps into past vehicles that stand there waiting (-1: none)
    oncoming_gap_m: FloatArray  # side to side, the ego's path to the nearest oncoming vehicle ahead (inf: none) ...
    oncoming_dist_m: FloatArray  # ... bumper to bumper along the route ...
    oncoming_speed_mps: FloatArray  # ... and its speed


class Junction(NamedTuple):
    """Who comes to the ego's next junction, and the ego's own place in the queue of a stop sign."""

    ego_served: BoolArray  # (B,) the ego stopped at the stop line and may go ...
    ego_arrival_s: FloatArray  # (B,) ... and when it arrived there
    ego_wait_lane: IntArray  # (B,) the lane the ego waits on (-1: none)
    actor: IntArray  # (B, V + 1) vehicles approaching junction lanes ...
    lane: IntArray  # ... the junction lane each takes ...
    tte_s: FloatArray  # ... when it enters ...
    rude: BoolArray  # ... and whether it ignores lights or priority
    n: IntArray  # (B,)


class Occupancy(NamedTuple):
    """Which lanes each actor (and the ego, actor -1) occupies, and where, ``(B, O)``."""

    lane: IntArray
    s_m: FloatArray  # the centre's position along the lane ...
    half_m: FloatArray  # ... and half its length along it
    speed_mps: FloatArray  # along the lane
    actor: IntArray
    kind: IntArray
    n: IntArray  # (B,)


class Located(NamedTuple):
    """Scratch of one lane lookup (:func:`sim.scene.kernels.geometry.locate`), ``(B, MAX_LOCATED)``."""

    lane: IntArray
    s_m: FloatArray
    lat_m: FloatArray
    heading_rad: FloatArray
    dist_m: FloatArray


class Outcome(NamedTuple):
    """The route's outcome so far (:mod:`sim.scene.kernels.infractions`) and this step's events."""

    timeout_s: FloatArray  # (B,) the route's time budget
    status: IntArray  # (B,) codes.RUNNING or the RouteStatus index it ended with
    infractions: IntArray  # (B, len(INFRACTIONS)) counts
    last_hit: IntArray  # (B,) the actor last collided with ...
    last_hit_s: FloatArray  # ... and when
    hit_x_m: FloatArray  # (B, MAX_REGISTERED) where collisions were counted (one per place) ...
    hit_y_m: FloatArray
    hit_n: IntArray
    driven_m: FloatArray  # (B,)
    outside_m: FloatArray  # (B,) driven off the drivable area
    still_s: FloatArray  # (B,) standing still for
    ms_section: IntArray  # (B,) the minimum-speed test's current section ...
    ms_ego_sum_mps: FloatArray  # ... the ego's speeds summed over its frames ...
    ms_frames: IntArray
    ms_traffic_sum_mps: FloatArray  # ... and the surrounding traffic's mean speeds
    min_speed_pct: FloatArray  # (B, MIN_SPEED_SECTIONS) the ego's speed as a share of the traffic's (nan: not low)
    ev_n: IntArray  # (B,) events (infractions) of this step ...
    ev_kind: IntArray  # (B, MAX_EVENTS) ...
    ev_actor: IntArray


class Scene(NamedTuple):
    """One batch's scene: see the module's documentation."""

    time_s: FloatArray  # (B,) since the scenario's start
    ego: Ego
    actors: Actors
    vehicles: Vehicles
    lights: NDArray[np.int8]  # (B, G) each light group's state (codes.GREEN / YELLOW / RED)
    route: Route
    mission: Mission
    emergency: Emergency
    facts: Facts
    junction: Junction
    occupancy: Occupancy
    located: Located
    outcome: Outcome


def allocate_scene(b: int, vehicles: int, pedestrians: int, statics: int, lights: int, route_points: int,
                   pieces: int, lines: int) -> Scene:
    """A scene of ``b`` scenarios with room for the given actors, light groups and route sizes."""
    v, n = vehicles, vehicles + pedestrians + statics
    occ = v + codes.MAX_LOCATED * (1 + 2 * pedestrians + statics + v)  # pedestrians: where they are and will be

    def f(*shape: int, fill: float = 0.0) -> FloatArray:
        return np.full(shape, fill, dtype=np.float64)

    def i(*shape: int, fill: int = 0) -> IntArray:
        return np.full(shape, fill, dtype=np.int64)

    def z(*shape: int) -> BoolArray:
        return np.zeros(shape, dtype=bool)

    return Scene(
        time_s=f(b),
        ego=Ego(x_m=f(b), y_m=f(b), yaw_rad=f(b), speed_mps=f(b), steer_rad=f(b), accel_mps2=f(b)),
        actors=Actors(kind=np.zeros((b, n), dtype=np.int8), x_m=f(b, n), y_m=f(b, n), yaw_rad=f(b, n),
                      speed_mps=f(b, n), length_m=f(b, n, fill=1.0), width_m=f(b, n, fill=1.0), valid=z(b, n)),
        vehicles=Vehicles(lanes=i(b, v, 3, fill=-1), lane_s_m=f(b, v), offset_m=f(b, v), parked=z(b, v),
                          flags=i(b, v), background=z(b, v), served_lane=i(b, v, fill=-1), arrival_s=f(b, v)),
        lights=np.zeros((b, lights), dtype=np.int8),
        route=Route(x_m=f(b, route_points), y_m=f(b, route_points), n=i(b, fill=2), ds_m=f(b, fill=1.0),
                    start_m=f(b), end_m=f(b, fill=1.0), progress_m=f(b), lateral_m=f(b),
                    piece_lane=i(b, pieces), piece_start_m=f(b, pieces), piece_end_m=f(b, pieces),
                    piece_offset_m=f(b, pieces), piece_n=i(b), line_s_m=f(b, lines), line_lane=i(b, lines),
                    line_junction_lane=i(b, lines, fill=-1), line_n=i(b), line_next=i(b)),
        mission=Mission(stop_s_m=f(b, MAX_STOPS), stop_tol_m=f(b, MAX_STOPS), stop_dwell_s=f(b, MAX_STOPS),
                        stop_lat_m=f(b, MAX_STOPS), stop_offset_m=f(b, MAX_STOPS), stop_n=i(b), stop_next=i(b),
                        stop_since_s=f(b, fill=np.inf), zone_start_m=f(b, MAX_ZONES), zone_end_m=f(b, MAX_ZONES),
                        zone_n=i(b), curb_until_m=f(b, fill=-np.inf)),
        emergency=Emergency(slot=i(b, fill=-1), since_s=f(b, fill=np.inf), done=z(b)),
        facts=Facts(leader_gap_m=f(b, fill=np.inf), leader_speed_mps=f(b), speed_limit_mps=f(b, fill=10.0),
                    line_kind=i(b), line_state=i(b, fill=-1), line_dist_m=f(b, fill=np.inf), must_stop=z(b),
                    give_way=z(b), nudge_m=f(b), offset_m=f(b), nudge_need_m=f(b), nudge_end_m=f(b),
                    pass_need_m=f(b, n), side_gap_m=f(b, fill=np.inf), side_speed_mps=f(b), yield_emergency=z(b),
                    stop_target_m=f(b, fill=np.inf), merge_wait=z(b), stop_dist_m=f(b, fill=np.inf),
                    junction_lane=i(b, fill=-1), junction_approach=i(b, fill=-1), junction_dist_m=f(b, fill=np.inf),
                    creep_lane=i(b, fill=-1), oncoming_gap_m=f(b, fill=np.inf), oncoming_dist_m=f(b, fill=np.inf),
                    oncoming_speed_mps=f(b)),
        junction=Junction(ego_served=z(b), ego_arrival_s=f(b), ego_wait_lane=i(b, fill=-1), actor=i(b, v + 1),
                          lane=i(b, v + 1), tte_s=f(b, v + 1), rude=z(b, v + 1), n=i(b)),
        occupancy=Occupancy(lane=i(b, occ), s_m=f(b, occ), half_m=f(b, occ), speed_mps=f(b, occ),
                            actor=i(b, occ), kind=i(b, occ), n=i(b)),
        located=Located(lane=i(b, codes.MAX_LOCATED), s_m=f(b, codes.MAX_LOCATED), lat_m=f(b, codes.MAX_LOCATED),
                        heading_rad=f(b, codes.MAX_LOCATED), dist_m=f(b, codes.MAX_LOCATED)),
        outcome=Outcome(timeout_s=f(b, fill=1.0), status=i(b, fill=codes.RUNNING), infractions=i(b, len(INFRACTIONS)),
                        last_hit=i(b, fill=-1), last_hit_s=f(b, fill=-np.inf), hit_x_m=f(b, codes.MAX_REGISTERED),
                        hit_y_m=f(b, codes.MAX_REGISTERED), hit_n=i(b), driven_m=f(b), outside_m=f(b), still_s=f(b),
                        ms_section=i(b), ms_ego_sum_mps=f(b), ms_frames=i(b), ms_traffic_sum_mps=f(b),
                        min_speed_pct=f(b, codes.MIN_SPEED_SECTIONS, fill=np.nan), ev_n=i(b),
                        ev_kind=i(b, codes.MAX_EVENTS), ev_actor=i(b, codes.MAX_EVENTS)),
    )
