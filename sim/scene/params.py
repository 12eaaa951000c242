"""Parameters the scene's readers and the worlds share: the ego's vehicle model, the car-following model of
traffic and the rules of the road (units in the names: metres, seconds, radians)."""

from __future__ import annotations

from typing import NamedTuple


class BicycleParams(NamedTuple):
    """Kinematic bicycle with actuator limits (reference point: the centre of the box).

    :param wheelbase_m: front-to-rear axle distance.
    :param rear_to_center_m: rear axle to the reference point.
    :param max_steer_rad: steering angle at action ``steer = ±1``.
    :param max_steer_rate_radps: how fast the wheels can turn.
    :param max_accel_mps2: acceleration at action ``accel = +1``.
    :param max_brake_mps2: deceleration at action ``accel = -1``.
    :param max_speed_mps: top speed; the car does not reverse.
    """

    wheelbase_m: float = 2.9
    rear_to_center_m: float = 1.45
    max_steer_rad: float = 0.6
    max_steer_rate_radps: float = 1.2
    max_accel_mps2: float = 3.0
    max_brake_mps2: float = 8.0
    max_speed_mps: float = 20.0


class IdmParams(NamedTuple):
    """Intelligent Driver Model (Treiber et al. 2000).

    :param max_accel_mps2: maximum acceleration ``a``.
    :param comfort_decel_mps2: comfortable deceleration ``b``.
    :param max_decel_mps2: hard limit on braking.
    :param min_gap_m: jam distance ``s0`` (bumper to bumper).
    :param time_headway_s: desired time gap ``T``.
    :param exponent: acceleration exponent ``delta``.
    """

    max_accel_mps2: float = 2.0
    comfort_decel_mps2: float = 3.0
    max_decel_mps2: float = 8.0
    min_gap_m: float = 2.5
    time_headway_s: float = 1.2
    exponent: float = 4.0


class Params(NamedTuple):
    """The scalar rules a scene is read by and a world moves by (the embedded world's come from
    :class:`sim.embedded.config.WorldConfig`)."""

    dt: float
    ego_length: float
    ego_width: float
    bicycle: BicycleParams
    idm: IdmParams
    route_deviation: float
    blocked_s: float
    completion_tol: float
    green_s: float
    yellow_s: float
    all_red_s: float
    horizon: float
    collision_time_s: float
    collision_area_m: float
    collision_forget_m: float
    stop_speed: float
    stop_distance: float
    min_speed_radius: float
