"""Putting things into one scenario of the world: vehicles, pedestrians, static obstacles and recorded tracks,
their event scripts, junction lights held by an event, curbside stops, the ego's start. Scenario events
(:mod:`sim.embedded.staging`), log replays and tests place through it; the world spawns background traffic with
it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sim.embedded.compiled import MapArrays
from sim.embedded.kernels import codes, tick
from sim.embedded.state import PED_PATH_POINTS, ActorKind, State, WorldConfig
from sim.geometry import FloatArray, cumulative_length, wrap_angle
from sim.maps import LaneGraph


class Placement:
    """One scenario (``env``) of a world's state, and what can be put there.

    :param state: the world's state (the placement writes the scenario's rows).
    :param arrays: the compiled map.
    :param lane_graph: the map.
    :param config: the world's parameters.
    :param env: the scenario's index in the batch.
    """

    def __init__(self, state: State, arrays: MapArrays, lane_graph: LaneGraph, config: WorldConfig,
                 env: int) -> None:
        self.state = state
        self.arrays = arrays
        self.map = lane_graph
        self.config = config
        self.params = config.params()
        self.env = env

    def _refresh(self) -> None:
        """Poses, lights, occupancy and the ego's facts of this scenario, after a change."""
        tick.refresh(self.arrays, self.state, self.params, np.array([self.env], dtype=np.int64))

    def set_vehicle(self, slot: int, lanes: tuple[int, int, int], *, s_m: float, speed_mps: float,
                     desired_factor: float, desired_cap: float, length_m: float, width_m: float,
                     parked: bool = False, lateral_offset_m: float = 0.0) -> None:
        env = self.env
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
        self.state.veh_respawn[env, slot] = False
        self._refresh()

    def place_pedestrian(self, slot: int, path_xy: FloatArray, *, speed_mps: float = 1.4,
                         start_time_s: float = 0.0) -> None:
        """Put a pedestrian in pedestrian ``slot`` of this scenario, walking the polyline ``path_xy`` (at most
        8 points; e.g. across the road off a crosswalk) from ``start_time_s`` on, and standing at its end."""
        env = self.env
        points = np.asarray(path_xy, dtype=np.float64)
        if not 2 <= len(points) <= PED_PATH_POINTS:
            raise ValueError(f"a pedestrian path has 2..{PED_PATH_POINTS} points, got {len(points)}")
        st = self.state
        n = self.config.max_vehicles + slot
        st.ped_walk[env, slot], st.ped_next[env, slot] = -1, -1
        st.ped_path_x[env, slot, : len(points)], st.ped_path_y[env, slot, : len(points)] = points[:, 0], points[:, 1]
        st.ped_path_s[env, slot, : len(points)] = cumulative_length(points)
        st.ped_path_n[env, slot] = len(points)
        st.ped_s[env, slot], st.ped_speed[env, slot], st.ped_start[env, slot] = 0.0, speed_mps, start_time_s
        st.act_valid[env, n], st.act_kind[env, n] = True, ActorKind.PEDESTRIAN
        st.act_len[env, n], st.act_wid[env, n] = 0.5, 0.6
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
        self._refresh()

    def arm_pedestrian(self, slot: int, *, trigger_s_m: float, meet_route_s_m: float,
                       meet_walk_m: float) -> None:
        """Hold the pedestrian placed in ``slot`` (:meth:`place_pedestrian`) until the ego's route progress reaches
        ``trigger_s_m``, then start it so that it has walked ``meet_walk_m`` when the ego, at its speed then,
        reaches ``meet_route_s_m`` on its route. It walks on whoever comes (it is the event's hazard)."""
        env = self.env
        st = self.state
        st.ped_pending[env, slot], st.ped_trigger[env, slot] = True, trigger_s_m
        st.ped_careless[env, slot] = True
        st.ped_meet_route[env, slot], st.ped_meet_walk[env, slot] = meet_route_s_m, meet_walk_m
        st.ped_start[env, slot] = np.inf

    def add_curbside_stop(self, s_m: float, *, tolerance_m: float, dwell_s: float, lateral_max_m: float,
                          offset_m: float) -> None:
        """Add a stop to the robotaxi mission of this scenario (stops are served in the order added): the ego
        must stand (below 0.3 m/s) with its centre within ``tolerance_m`` of route arc length ``s_m`` and at most
        ``lateral_max_m`` left of the route (negative: right of it, at the curb) for ``dwell_s`` seconds; driving
        more than 3 m past the tolerance without that is ``missed_curbside_stop``. The expert's path takes
        ``offset_m`` for it."""
        env = self.env
        st = self.state
        k = int(st.stop_n[env])
        if k >= st.stop_s.shape[1]:
            raise ValueError(f"at most {st.stop_s.shape[1]} curbside stops per scenario")
        if k and s_m <= st.stop_s[env, k - 1]:
            raise ValueError(f"curbside stops go in route order: {s_m:.1f} m after {st.stop_s[env, k - 1]:.1f} m")
        st.stop_s[env, k], st.stop_tol[env, k], st.stop_dwell[env, k] = s_m, tolerance_m, dwell_s
        st.stop_lat[env, k], st.stop_offset[env, k] = lateral_max_m, offset_m
        st.stop_n[env] = k + 1
        self._refresh()

    def park_ego(self, lateral_m: float, *, leave_by_s_m: float) -> None:
        """Start the ego of this scenario ``lateral_m`` to the left of its route (negative: right, in a parking
        place at the curb); it may drive off its lanes until its route progress reaches ``leave_by_s_m``."""
        env = self.env
        st = self.state
        yaw = st.ego_yaw[env]
        st.ego_x[env] -= lateral_m * np.sin(yaw)
        st.ego_y[env] += lateral_m * np.cos(yaw)
        st.curb_until[env] = leave_by_s_m
        self._refresh()

    def perturb_ego(self, lateral_m: float, yaw_rad: float) -> None:
        """Move the ego of this scenario, standing at its start, ``lateral_m`` to the left of its route
        (negative: right) and turn it ``yaw_rad`` to the left: a perturbed start, from which a driver has to
        find its way back to the route (augmentation of imitation data, as ChauffeurNet's perturbed
        trajectories).

        :raises ValueError: once the scenario has started, or for a shift that would leave the ego's lane.
        """
        env = self.env
        st = self.state
        if st.time[env] != 0.0:
            raise ValueError(f"scenario {env}: perturb the ego before the first step (t = {st.time[env]:.1f} s)")
        if abs(lateral_m) > 1.5:
            raise ValueError(f"scenario {env}: a lateral shift of {lateral_m:.2f} m leaves the lane (at most 1.5 m)")
        yaw = st.ego_yaw[env]
        st.ego_x[env] -= lateral_m * np.sin(yaw)
        st.ego_y[env] += lateral_m * np.cos(yaw)
        st.ego_yaw[env] = wrap_angle(yaw + yaw_rad)
        self._refresh()

    def set_ego_speed(self, speed_mps: float) -> None:
        """Start the ego at this speed (a replayed log's ego is under way)."""
        self.state.ego_v[self.env] = speed_mps

    def hold_lights(self, states: dict[int, int], *, trigger_s_m: float, hold_s: float) -> None:
        """From when the ego's route progress reaches ``trigger_s_m`` and for ``hold_s`` seconds, light groups
        ``states`` keys show the given states (:class:`sim.embedded.traffic.LightState` values) instead of their
        program's (as the Leaderboard's junction scenarios set a junction's lights); then the program resumes."""
        env = self.env
        st = self.state
        st.light_force[env] = -1
        for group, state in states.items():
            st.light_force[env, group] = state
        st.force_pending[env], st.force_trigger[env], st.force_hold[env] = True, trigger_s_m, hold_s
        st.force_until[env] = -np.inf

    def allow_oncoming_lane(self, start_s_m: float, end_s_m: float) -> None:
        """Let the ego of this scenario drive on an oncoming lane between these route arc lengths without it
        counting as outside its lanes (the Leaderboard's scenarios switch the wrong-direction test off while the
        ego passes their obstacles)."""
        env = self.env
        st = self.state
        count = int(st.zone_n[env])
        if count >= st.zone_start.shape[1]:
            raise ValueError(f"at most {st.zone_start.shape[1]} oncoming-lane stretches per scenario")
        st.zone_start[env, count], st.zone_end[env, count] = start_s_m, end_s_m
        st.zone_n[env] = count + 1

    def place_static(self, slot: int, xy: tuple[float, float], yaw_rad: float, *, length_m: float,
                     width_m: float) -> None:
        """Put a static obstacle (cone, barrier, debris) in static ``slot`` of this scenario."""
        env = self.env
        st = self.state
        n = self.config.max_vehicles + self.config.max_pedestrians + slot
        st.act_x[env, n], st.act_y[env, n], st.act_yaw[env, n] = xy[0], xy[1], yaw_rad
        st.act_len[env, n], st.act_wid[env, n], st.act_v[env, n] = length_m, width_m, 0.0
        st.act_valid[env, n], st.act_kind[env, n] = True, ActorKind.STATIC
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
        self._refresh()


def random_successor(rng: np.random.Generator, options: Sequence[int]) -> int:
    """One of ``options`` at random (-1: none)."""
    return int(rng.choice(options)) if len(options) else -1
