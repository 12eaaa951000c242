"""Vehicle dynamics as pure functions on arrays (every argument broadcasts over batch and actors).

Units: metres, seconds, radians; map frame (x east, y north, yaw counter-clockwise from +x).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sim.geometry import FloatArray


@dataclass(frozen=True)
class BicycleParams:
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


class EgoState(NamedTuple):
    """Ego kinematic state; each field has the batch shape."""

    x_m: FloatArray
    y_m: FloatArray
    yaw_rad: FloatArray
    speed_mps: FloatArray
    steer_rad: FloatArray


def bicycle_step(state: EgoState, steer_cmd: FloatArray, accel_cmd: FloatArray, dt_s: float,
                 params: BicycleParams) -> tuple[EgoState, FloatArray]:
    """Advance the kinematic bicycle by ``dt_s``.

    :param steer_cmd: steering command in [-1, 1] (positive turns left); the wheels move towards
        ``steer_cmd * max_steer_rad`` at no more than ``max_steer_rate_radps``.
    :param accel_cmd: longitudinal command in [-1, 1]: positive accelerates, negative brakes.
    :return: the new state and the applied acceleration in m/s^2.
    """
    steer_cmd = np.clip(steer_cmd, -1.0, 1.0)
    accel_cmd = np.clip(accel_cmd, -1.0, 1.0)
    max_delta = params.max_steer_rate_radps * dt_s
    steer = state.steer_rad + np.clip(steer_cmd * params.max_steer_rad - state.steer_rad, -max_delta, max_delta)
    accel = np.where(accel_cmd >= 0.0, accel_cmd * params.max_accel_mps2, accel_cmd * params.max_brake_mps2)
    speed = np.clip(state.speed_mps + accel * dt_s, 0.0, params.max_speed_mps)
    applied_accel = (speed - state.speed_mps) / dt_s
    mean_speed = 0.5 * (state.speed_mps + speed)
    slip = np.arctan(params.rear_to_center_m / params.wheelbase_m * np.tan(steer))
    yaw_rate = mean_speed * np.sin(slip) / params.rear_to_center_m
    yaw_mid = state.yaw_rad + 0.5 * yaw_rate * dt_s
    x = state.x_m + mean_speed * np.cos(yaw_mid + slip) * dt_s
    y = state.y_m + mean_speed * np.sin(yaw_mid + slip) * dt_s
    yaw = state.yaw_rad + yaw_rate * dt_s
    return EgoState(x, y, yaw, speed, steer), applied_accel


@dataclass(frozen=True)
class IdmParams:
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


def idm_acceleration(speed_mps: FloatArray, desired_speed_mps: FloatArray, gap_m: FloatArray,
                     leader_speed_mps: FloatArray, params: IdmParams) -> FloatArray:
    """IDM acceleration; ``gap_m = inf`` means a free road. Clipped to ``[-max_decel, max_accel]``."""
    closing = speed_mps - leader_speed_mps
    desired_gap = params.min_gap_m + np.maximum(
        0.0,
        speed_mps * params.time_headway_s
        + speed_mps * closing / (2.0 * np.sqrt(params.max_accel_mps2 * params.comfort_decel_mps2)),
    )
    free = 1.0 - (speed_mps / np.maximum(desired_speed_mps, 0.1)) ** params.exponent
    interaction = (desired_gap / np.maximum(gap_m, 0.1)) ** 2
    accel = params.max_accel_mps2 * (free - interaction)
    return np.asarray(np.clip(accel, -params.max_decel_mps2, params.max_accel_mps2), dtype=np.float64)
