"""Putting things into one scenario of the world: vehicles, pedestrians, static obstacles and recorded tracks,
their event scripts, junction lights held by an event, curbside stops, the ego's start. Scenario events
(:mod:`sim.embedded.staging`), log replays and tests place through it; the world spawns background traffic with
it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sim.embedded.config import WorldConfig
from sim.embedded.kernels import tick
from sim.embedded.state import PED_PATH_POINTS, State
from sim.geometry import FloatArray, cumulative_length, wrap_angle
from sim.maps import LaneGraph
from sim.maps.compiled import MapArrays
from sim.scene import codes
from sim.scene.params import Params
from sim.scene.records import ActorKind, Scene


class Placement:
    """One scenario (``env``) of a world's state, and what can be put there.

    :param scene: the world's scene (the placement writes the scenario's rows) ...
    :param state: ... and its own state.
    :param arrays: the compiled map.
    :param lane_graph: the map.
    :param config: the world's parameters.
    :param env: the scenario's index in the batch.
    """

    def __init__(self, scene: Scene, state: State, arrays: MapArrays, lane_graph: LaneGraph, config: WorldConfig,
                 params: Params, env: int) -> None:
        self.scene = scene
        self.state = state
        self.arrays = arrays
        self.map = lane_graph
        self.config = config
        self.params = params
        self.env = env

    def _refresh(self) -> None:
        """Poses, lights, occupancy and the ego's facts of this scenario, after a change."""
        tick.refresh(self.arrays, self.scene, self.state, self.params, np.array([self.env], dtype=np.int64))

    def set_vehicle(self, slot: int, lanes: tuple[int, int, int], *, s_m: float, speed_mps: float,
                     desired_factor: float, desired_cap: float, length_m: float, width_m: float,
                     parked: bool = False, lateral_offset_m: float = 0.0) -> None:
        env = self.env
        st, sc = self.state, self.scene
        sc.vehicles.lanes[env, slot] = lanes
        sc.vehicles.lane_s_m[env, slot] = s_m
        sc.actors.speed_mps[env, slot] = speed_mps
        st.traffic.desired_mps[env, slot] = min(desired_factor,
                                                desired_cap / max(self.map.lanes[lanes[0]].speed_limit_mps,
                                                                           1e-3))
        sc.actors.length_m[env, slot], sc.actors.width_m[env, slot] = length_m, width_m
        sc.vehicles.parked[env, slot] = parked
        sc.vehicles.offset_m[env, slot] = lateral_offset_m
        sc.vehicles.served_lane[env, slot] = -1
        sc.actors.valid[env, slot] = True
        sc.actors.kind[env, slot] = ActorKind.VEHICLE

    def place_vehicle(self, slot: int, lane_ids: tuple[int, ...], *, s_m: float, speed_mps: float,
                      desired_speed_mps: float, length_m: float = 4.5, width_m: float = 1.9,
                      lateral_offset_m: float = 0.0) -> None:
        """Put a vehicle in ``slot`` of this scenario at arc length ``s_m`` along ``lane_ids`` (its first lane
        and the ones it takes next; beyond them it picks successors at random).

        It drives with IDM at up to ``desired_speed_mps``; ``desired_speed_mps = 0`` parks it (it stands still,
        ``lateral_offset_m`` to the left of the lane's centre, and occupies the lanes it overlaps).
        """
        env = self.env
        lanes = self.map.lanes
        path = list(lane_ids)
        while path and s_m > lanes[path[0]].length_m and len(path) > 1:
            s_m -= lanes[path[0]].length_m
            path.pop(0)
        rng = np.random.default_rng([self.state.seed[env], slot])
        while len(path) < 3:
            path.append(random_successor(rng, lanes[path[-1]].successors) if path[-1] >= 0 else -1)
        parked = desired_speed_mps <= 0.0
        self.set_vehicle(slot, (path[0], path[1], path[2]), s_m=s_m, speed_mps=0.0 if parked else speed_mps,
                          desired_factor=np.inf, desired_cap=desired_speed_mps, length_m=length_m, width_m=width_m,
                          parked=parked, lateral_offset_m=lateral_offset_m)
        self.scene.vehicles.background[env, slot] = False
        self._refresh()

    def place_pedestrian(self, slot: int, path_xy: FloatArray, *, speed_mps: float = 1.4,
                         start_time_s: float = 0.0) -> None:
        """Put a pedestrian in pedestrian ``slot`` of this scenario, walking the polyline ``path_xy`` (at most
        8 points; e.g. across the road off a crosswalk) from ``start_time_s`` on, and standing at its end."""
        env = self.env
        points = np.asarray(path_xy, dtype=np.float64)
        if not 2 <= len(points) <= PED_PATH_POINTS:
            raise ValueError(f"a pedestrian path has 2..{PED_PATH_POINTS} points, got {len(points)}")
        st, sc = self.state, self.scene
        n = self.config.max_vehicles + slot
        st.pedestrians.walk[env, slot], st.pedestrians.next[env, slot] = -1, -1
        st.pedestrians.path_x_m[env, slot, : len(points)], st.pedestrians.path_y_m[env, slot, : len(points)] \
            = points[:, 0], points[:, 1]
        st.pedestrians.path_s_m[env, slot, : len(points)] = cumulative_length(points)
        st.pedestrians.path_n[env, slot] = len(points)
        st.pedestrians.s_m[env, slot], st.pedestrians.speed_mps[env, slot], st.pedestrians.start_s[env, slot] = 0.0, \
            speed_mps, start_time_s
        sc.actors.valid[env, n], sc.actors.kind[env, n] = True, ActorKind.PEDESTRIAN
        sc.actors.length_m[env, n], sc.actors.width_m[env, n] = 0.5, 0.6
        self._refresh()

    def arm_vehicle(self, slot: int, *, trigger_s_m: float, hidden: bool = False,
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
        env = self.env
        st, sc = self.state, self.scene
        ignore_lights, ignore_priority = ignore_lights or emergency, ignore_priority or emergency
        sc.vehicles.flags[env, slot] = ((codes.HIDDEN if hidden else 0) | (codes.IGNORE_LIGHTS if ignore_lights else 0)
                                   | (codes.IGNORE_PRIORITY if ignore_priority else 0)
                                   | (codes.FOLLOW_ROUTE if follow_route else 0)
                                   | (codes.CUT_IN if cut_in_speed_mps > 0.0 else 0)
                                   | (codes.EMERGENCY if emergency else 0)
                                   | (codes.KEEP_OFFSET if keep_offset else 0)
                                   | (codes.NO_CURB_YIELD if no_curb_yield else 0))
        if emergency:  # it drives at its speed whatever the limit
            st.traffic.desired_mps[env, slot] = sc.actors.speed_mps[env, slot]
            if sc.emergency.slot[env] >= 0:
                raise ValueError("at most one emergency vehicle per scenario")
            sc.emergency.slot[env] = slot
        if cut_in_speed_mps > 0.0:
            limit = self.map.lanes[int(sc.vehicles.lanes[env, slot, 0])].speed_limit_mps
            st.traffic.desired_mps[env, slot] = cut_in_speed_mps / max(limit, 1e-3)
        st.traffic.pending[env, slot], st.traffic.trigger_m[env, slot] = True, trigger_s_m
        st.traffic.meet_s_m[env, slot], st.traffic.meet_route_m[env, slot] = meet_s_m, meet_route_s_m
        st.traffic.brake_decel_mps2[env, slot], st.traffic.brake_hold_s[env, slot] = brake_decel_mps2, hold_s
        st.traffic.brake_until_s[env, slot] = -np.inf
        st.traffic.expire_m[env, slot] = leave_at_s_m
        if hidden:
            sc.actors.valid[env, slot] = False
        self._refresh()

    def arm_pedestrian(self, slot: int, *, trigger_s_m: float, meet_route_s_m: float,
                       meet_walk_m: float) -> None:
        """Hold the pedestrian placed in ``slot`` (:meth:`place_pedestrian`) until the ego's route progress reaches
        ``trigger_s_m``, then start it so that it has walked ``meet_walk_m`` when the ego, at its speed then,
        reaches ``meet_route_s_m`` on its route. It walks on whoever comes (it is the event's hazard)."""
        env = self.env
        st = self.state
        st.pedestrians.pending[env, slot], st.pedestrians.trigger_m[env, slot] = True, trigger_s_m
        st.pedestrians.careless[env, slot] = True
        st.pedestrians.meet_route_m[env, slot], st.pedestrians.meet_walk_m[env, slot] = meet_route_s_m, meet_walk_m
        st.pedestrians.start_s[env, slot] = np.inf

    def add_curbside_stop(self, s_m: float, *, tolerance_m: float, dwell_s: float, lateral_max_m: float,
                          offset_m: float) -> None:
        """Add a stop to the robotaxi mission of this scenario (stops are served in the order added): the ego
        must stand (below 0.3 m/s) with its centre within ``tolerance_m`` of route arc length ``s_m`` and at most
        ``lateral_max_m`` left of the route (negative: right of it, at the curb) for ``dwell_s`` seconds; driving
        more than 3 m past the tolerance without that is ``missed_curbside_stop``. The expert's path takes
        ``offset_m`` for it."""
        env = self.env
        sc = self.scene
        k = int(sc.mission.stop_n[env])
        if k >= sc.mission.stop_s_m.shape[1]:
            raise ValueError(f"at most {sc.mission.stop_s_m.shape[1]} curbside stops per scenario")
        if k and s_m <= sc.mission.stop_s_m[env, k - 1]:
            raise ValueError(f"curbside stops go in route order: {s_m:.1f} m after "
                             f"{sc.mission.stop_s_m[env, k - 1]:.1f} m")
        sc.mission.stop_s_m[env, k], sc.mission.stop_tol_m[env, k], sc.mission.stop_dwell_s[env, k] = s_m, \
            tolerance_m, dwell_s
        sc.mission.stop_lat_m[env, k], sc.mission.stop_offset_m[env, k] = lateral_max_m, offset_m
        sc.mission.stop_n[env] = k + 1
        self._refresh()

    def park_ego(self, lateral_m: float, *, leave_by_s_m: float) -> None:
        """Start the ego of this scenario ``lateral_m`` to the left of its route (negative: right, in a parking
        place at the curb); it may drive off its lanes until its route progress reaches ``leave_by_s_m``."""
        env = self.env
        sc = self.scene
        yaw = sc.ego.yaw_rad[env]
        sc.ego.x_m[env] -= lateral_m * np.sin(yaw)
        sc.ego.y_m[env] += lateral_m * np.cos(yaw)
        sc.mission.curb_until_m[env] = leave_by_s_m
        self._refresh()

    def perturb_ego(self, lateral_m: float, yaw_rad: float) -> None:
        """Move the ego of this scenario, standing at its start, ``lateral_m`` to the left of its route
        (negative: right) and turn it ``yaw_rad`` to the left: a perturbed start, from which a driver has to
        find its way back to the route (augmentation of imitation data, as ChauffeurNet's perturbed
        trajectories).

        :raises ValueError: once the scenario has started, or for a shift that would leave the ego's lane.
        """
        env = self.env
        sc = self.scene
        if sc.time_s[env] != 0.0:
            raise ValueError(f"scenario {env}: perturb the ego before the first step (t = {sc.time_s[env]:.1f} s)")
        if abs(lateral_m) > 1.5:
            raise ValueError(f"scenario {env}: a lateral shift of {lateral_m:.2f} m leaves the lane (at most 1.5 m)")
        yaw = sc.ego.yaw_rad[env]
        sc.ego.x_m[env] -= lateral_m * np.sin(yaw)
        sc.ego.y_m[env] += lateral_m * np.cos(yaw)
        sc.ego.yaw_rad[env] = wrap_angle(yaw + yaw_rad)
        self._refresh()

    def set_ego_speed(self, speed_mps: float) -> None:
        """Start the ego at this speed (a replayed log's ego is under way)."""
        self.scene.ego.speed_mps[self.env] = speed_mps

    def hold_lights(self, states: dict[int, int], *, trigger_s_m: float, hold_s: float,
                    then: dict[int, int] | None = None, then_s: float = 0.0) -> None:
        """From when the ego's route progress reaches ``trigger_s_m`` and for ``hold_s`` seconds, light groups
        ``states`` keys show the given states (:class:`sim.embedded.traffic.LightState` values) instead of their
        program's (as the Leaderboard's junction scenarios set a junction's lights); then, for ``then_s`` seconds,
        those ``then`` gives; then the program resumes."""
        env = self.env
        st = self.state
        st.program.force[env] = st.program.then[env] = -1
        for group, state in states.items():
            st.program.force[env, group] = state
        for group, state in (then or {}).items():
            st.program.then[env, group] = state
        st.program.then_hold_s[env] = then_s
        st.program.force_pending[env], st.program.force_trigger_m[env], st.program.force_hold_s[env] = True, \
            trigger_s_m, hold_s
        st.program.force_until_s[env] = -np.inf

    def allow_oncoming_lane(self, start_s_m: float, end_s_m: float) -> None:
        """Let the ego of this scenario drive on an oncoming lane between these route arc lengths without it
        counting as outside its lanes (the Leaderboard's scenarios switch the wrong-direction test off while the
        ego passes their obstacles)."""
        env = self.env
        sc = self.scene
        count = int(sc.mission.zone_n[env])
        if count >= sc.mission.zone_start_m.shape[1]:
            raise ValueError(f"at most {sc.mission.zone_start_m.shape[1]} oncoming-lane stretches per scenario")
        sc.mission.zone_start_m[env, count], sc.mission.zone_end_m[env, count] = start_s_m, end_s_m
        sc.mission.zone_n[env] = count + 1

    def add_control_loss(self, start_s_m: float, end_s_m: float, *, steer: float, accel: float) -> None:
        """Make the ego's controls slip while its route progress is between these arc lengths (bad road): ``steer``
        and ``accel`` (in the actions' units) are added to its commands there."""
        cl = self.state.control_loss
        free = np.flatnonzero(~np.isfinite(cl.start_m[self.env]))
        if not len(free):
            raise ValueError(f"at most {cl.start_m.shape[1]} control-loss stretches per scenario")
        k = int(free[0])
        cl.start_m[self.env, k], cl.end_m[self.env, k] = start_s_m, end_s_m
        cl.steer[self.env, k], cl.accel[self.env, k] = steer, accel

    def place_static(self, slot: int, xy: tuple[float, float], yaw_rad: float, *, length_m: float,
                     width_m: float) -> None:
        """Put a static obstacle (cone, barrier, debris) in static ``slot`` of this scenario."""
        env = self.env
        sc = self.scene
        n = self.config.max_vehicles + self.config.max_pedestrians + slot
        sc.actors.x_m[env, n], sc.actors.y_m[env, n], sc.actors.yaw_rad[env, n] = xy[0], xy[1], yaw_rad
        sc.actors.length_m[env, n], sc.actors.width_m[env, n], sc.actors.speed_mps[env, n] = length_m, width_m, 0.0
        sc.actors.valid[env, n], sc.actors.kind[env, n] = True, ActorKind.STATIC
        self._refresh()

    def place_track(self, slot: int, kind: int, track: FloatArray, *, length_m: float,
                    width_m: float) -> None:
        """Put an actor that replays a recorded track in static ``slot`` of this scenario: ``track`` is
        ``(T, 5)`` samples ``[time_s, x_m, y_m, yaw_rad, speed_mps]`` with time from the scenario's start,
        increasing. The actor is there from the first sample to the last (interpolated in between: an actor unseen
        for a while is two tracks) and goes where the record has it, whatever the ego does; a vehicle
        (``kind`` :attr:`ActorKind.VEHICLE`) is traffic to follow, a pedestrian one to yield to, as in the record.

        :raises ValueError: when the world has too few track points, or times do not increase.
        """
        env = self.env
        st, sc = self.state, self.scene
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
        st.tracks.n[env, slot], st.tracks.i[env, slot] = count, 0
        tracks = st.tracks
        for column, samples in enumerate((tracks.t_s, tracks.x_m, tracks.y_m, tracks.yaw_rad, tracks.speed_mps)):
            samples[env, slot, :count] = track[:, column]
        sc.actors.length_m[env, n], sc.actors.width_m[env, n], sc.actors.kind[env, n] = length_m, width_m, kind
        sc.actors.valid[env, n] = False  # until the kernels look the track up
        self._refresh()


def random_successor(rng: np.random.Generator, options: Sequence[int]) -> int:
    """One of ``options`` at random (-1: none)."""
    return int(rng.choice(options)) if len(options) else -1
