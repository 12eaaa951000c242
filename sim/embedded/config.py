"""The embedded world's parameters: its step, its actor slots and the rules it moves and scores by."""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.embedded.traffic import LightTiming
from sim.scene.params import BicycleParams, IdmParams, Params


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

    def params(self) -> Params:
        lights = self.lights
        return Params(
            dt=self.dt_s, ego_length=self.ego_length_m, ego_width=self.ego_width_m, bicycle=self.bicycle,
            idm=self.idm, route_deviation=self.route_deviation_m, blocked_s=self.blocked_s,
            completion_tol=self.completion_tolerance_m, green_s=lights.green_s, yellow_s=lights.yellow_s,
            all_red_s=lights.all_red_s, horizon=self.horizon_m, collision_time_s=5.0, collision_area_m=3.0,
            collision_forget_m=5.0, stop_speed=self.stop_speed_mps, stop_distance=self.stop_distance_m,
            min_speed_radius=self.min_speed_radius_m)
