"""The one implementation of vehicle dynamics (see :mod:`sim.embedded.dynamics` for the parameters and the
array versions): the ego's kinematic bicycle and the IDM of traffic."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from sim.geometry import FloatArray


@njit(_nrt=False, cache=True)
def bicycle(p: Any, x_m: float, y_m: float, yaw_rad: float, speed_mps: float, steer_rad: float,
            steer_cmd: float, accel_cmd: float, dt_s: float) -> tuple[float, float, float, float, float, float]:
    """Advance the kinematic bicycle by ``dt_s``.

    :param steer_cmd: steering command in [-1, 1] (positive turns left); the wheels move towards
        ``steer_cmd * max_steer_rad`` at no more than ``max_steer_rate_radps``.
    :param accel_cmd: longitudinal command in [-1, 1]: positive accelerates, negative brakes.
    :return: the new ``x_m, y_m, yaw_rad, speed_mps, steer_rad`` and the applied acceleration in m/s².
    """
    steer_cmd = min(max(steer_cmd, -1.0), 1.0)
    accel_cmd = min(max(accel_cmd, -1.0), 1.0)
    max_delta = p.max_steer_rate_radps * dt_s
    steer = steer_rad + min(max(steer_cmd * p.max_steer_rad - steer_rad, -max_delta), max_delta)
    accel = accel_cmd * p.max_accel_mps2 if accel_cmd >= 0.0 else accel_cmd * p.max_brake_mps2
    speed = min(max(speed_mps + accel * dt_s, 0.0), p.max_speed_mps)
    mean_speed = 0.5 * (speed_mps + speed)
    slip = math.atan(p.rear_to_center_m / p.wheelbase_m * math.tan(steer))
    yaw_rate = mean_speed * math.sin(slip) / p.rear_to_center_m
    yaw_mid = yaw_rad + 0.5 * yaw_rate * dt_s
    x = x_m + mean_speed * math.cos(yaw_mid + slip) * dt_s
    y = y_m + mean_speed * math.sin(yaw_mid + slip) * dt_s
    return x, y, yaw_rad + yaw_rate * dt_s, speed, steer, (speed - speed_mps) / dt_s


@njit(_nrt=False, cache=True)
def idm(p: Any, speed_mps: float, desired_speed_mps: float, gap_m: float, leader_speed_mps: float) -> float:
    """IDM acceleration; ``gap_m = inf`` means a free road. Clipped to ``[-max_decel, max_accel]``."""
    closing = speed_mps - leader_speed_mps
    desired_gap = p.min_gap_m + max(0.0, speed_mps * p.time_headway_s
                                    + speed_mps * closing / (2.0 * math.sqrt(p.max_accel_mps2 * p.comfort_decel_mps2)))
    free = 1.0 - (speed_mps / max(desired_speed_mps, 0.1)) ** p.exponent
    interaction = 0.0 if gap_m == np.inf else (desired_gap / max(gap_m, 0.1)) ** 2
    return min(max(p.max_accel_mps2 * (free - interaction), -p.max_decel_mps2), p.max_accel_mps2)


@njit(_nrt=False, cache=True)
def bicycle_each(p: Any, x: FloatArray, y: FloatArray, yaw: FloatArray, speed: FloatArray,
                  steer: FloatArray, steer_cmd: FloatArray, accel_cmd: FloatArray, dt_s: float,
                  out: FloatArray) -> None:
    for i in range(len(x)):
        out[0, i], out[1, i], out[2, i], out[3, i], out[4, i], out[5, i] = bicycle(
            p, x[i], y[i], yaw[i], speed[i], steer[i], steer_cmd[i], accel_cmd[i], dt_s)


@njit(_nrt=False, cache=True)
def idm_each(p: Any, speed: FloatArray, desired: FloatArray, gap: FloatArray, leader: FloatArray,
              out: FloatArray) -> None:
    for i in range(len(speed)):
        out[i] = idm(p, speed[i], desired[i], gap[i], leader[i])
