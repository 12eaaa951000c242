"""A driver's action ``[steer, accel]`` as a ``carla.VehicleControl``.

The action means the same in both backends: ``steer`` in [-1, 1] turns the front wheels by ``steer ·
max_steer_rad`` (the scene's bicycle, :class:`~sim.scene.params.BicycleParams`; positive: left), ``accel`` in
[-1, 1] asks for ``accel · max_accel_mps2`` forward (positive) or ``-accel · max_brake_mps2`` of braking.

CARLA's ``VehicleControl.steer`` in [-1, 1] turns the front wheels by ``steer · max_steer_angle`` (the vehicle's
physics: its front wheels' ``WheelPhysicsControl.max_steer_angle``, degrees), positive to the **right** (CARLA's
frame is left-handed). So the same wheel angle is ``carla_steer = -steer · max_steer_rad / radians(max_steer_angle)``,
saturated at ±1 when the vehicle's wheels turn less than the bicycle's.

Pedals: ``accel`` above :data:`PEDAL_DEADZONE` presses the throttle by ``accel``, below ``-PEDAL_DEADZONE`` the
brake by ``-accel``; in between the car coasts. CARLA's pedals command torque, not acceleration: a full throttle
gives the default Leaderboard car (Lincoln MKZ 2020) roughly the bicycle's ``max_accel_mps2`` at low speed and less
as it goes faster, a full brake about its ``max_brake_mps2``. Standing still (below :data:`STANDSTILL_MPS`)
without throttle, the brake is held fully so the car does not creep.
"""

from __future__ import annotations

import math
from typing import Any

from sim.carla import import_carla

#: ``|accel|`` below this presses neither pedal.
PEDAL_DEADZONE = 0.05
#: Below this speed, without throttle, the brake holds the car.
STANDSTILL_MPS = 0.1


def max_steer_angle_deg(physics_control: Any) -> float:
    """The largest steering angle of a vehicle's wheels (its front wheels'), from its
    ``carla.VehiclePhysicsControl``.

    :raises ValueError: when no wheel steers.
    """
    angles = [float(wheel.max_steer_angle) for wheel in physics_control.wheels]
    if not angles or max(angles) <= 0.0:
        raise ValueError(f"the vehicle's physics control has no steering wheel (max_steer_angle: {angles})")
    return max(angles)


def vehicle_control(steer: float, accel: float, *, speed_mps: float, max_steer_rad: float,
                    max_steer_angle_deg: float) -> Any:
    """The ``carla.VehicleControl`` for one action (see the module's documentation).

    :param steer: the action's steering in [-1, 1] (clipped), positive left.
    :param accel: the action's acceleration in [-1, 1] (clipped).
    :param speed_mps: the vehicle's speed now.
    :param max_steer_rad: the bicycle's wheel angle at ``steer = 1``.
    :param max_steer_angle_deg: the vehicle's wheel angle at CARLA ``steer = 1`` (:func:`max_steer_angle_deg`).
    """
    carla = import_carla()
    steer = min(max(float(steer), -1.0), 1.0)
    accel = min(max(float(accel), -1.0), 1.0)
    wheel_rad = steer * max_steer_rad
    carla_steer = min(max(-wheel_rad / math.radians(max_steer_angle_deg), -1.0), 1.0)
    throttle = accel if accel > PEDAL_DEADZONE else 0.0
    brake = -accel if accel < -PEDAL_DEADZONE else 0.0
    if throttle == 0.0 and speed_mps < STANDSTILL_MPS:
        brake = 1.0
    return carla.VehicleControl(throttle=throttle, steer=carla_steer, brake=brake, hand_brake=False, reverse=False)
