"""Vehicle dynamics: the kinematic bicycle of the ego and the IDM of traffic, compiled once for everything.

:func:`~sim.embedded.kernels.physics.bicycle` and :func:`~sim.embedded.kernels.physics.idm` are the compiled
functions the world's kernels call each step; :func:`bicycle_step` and :func:`idm_acceleration` apply the same
functions elementwise to arrays (every argument broadcasts over batch and actors) for planners and tests.

Units: metres, seconds, radians; map frame (x east, y north, yaw counter-clockwise from +x).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sim.embedded.kernels.physics import bicycle_each, idm_each
from sim.geometry import FloatArray
from sim.scene.params import BicycleParams, IdmParams


class EgoState(NamedTuple):
    """Ego kinematic state; each field has the batch shape."""

    x_m: FloatArray
    y_m: FloatArray
    yaw_rad: FloatArray
    speed_mps: FloatArray
    steer_rad: FloatArray


def bicycle_step(state: EgoState, steer_cmd: FloatArray, accel_cmd: FloatArray, dt_s: float,
                 params: BicycleParams) -> tuple[EgoState, FloatArray]:
    """:func:`~sim.embedded.kernels.physics.bicycle` on arrays: the new state and the applied acceleration in m/s²."""
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (*state, steer_cmd, accel_cmd)))
    shape = arrays[0].shape
    flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    out = np.empty((6, flat[0].size))
    bicycle_each(params, *flat, dt_s, out)
    x, y, yaw, speed, steer, accel = (row.reshape(shape) for row in out)
    return EgoState(x, y, yaw, speed, steer), accel


def idm_acceleration(speed_mps: FloatArray, desired_speed_mps: FloatArray, gap_m: FloatArray,
                     leader_speed_mps: FloatArray, params: IdmParams) -> FloatArray:
    """:func:`~sim.embedded.kernels.physics.idm` on arrays."""
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64)
                                   for a in (speed_mps, desired_speed_mps, gap_m, leader_speed_mps)))
    flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    out = np.empty(flat[0].size)
    idm_each(params, *flat, out)
    return out.reshape(arrays[0].shape)
