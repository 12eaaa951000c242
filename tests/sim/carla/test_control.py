"""Actions as ``carla.VehicleControl``: hand-computed cases, both signs, saturation, standstill."""

from __future__ import annotations

import math

import pytest

carla = pytest.importorskip("carla", reason="the CARLA side needs the carla package (autoloop[carla])")

from sim.carla.control import max_steer_angle_deg, vehicle_control  # noqa: E402

#: The Leaderboard's car turns its front wheels up to 70 degrees; the bicycle up to 0.6 rad (34.4 degrees).
LINCOLN_DEG, BICYCLE_RAD = 70.0, 0.6


def _control(steer: float, accel: float, speed_mps: float = 5.0, wheel_deg: float = LINCOLN_DEG) -> object:
    return vehicle_control(steer, accel, speed_mps=speed_mps, max_steer_rad=BICYCLE_RAD, max_steer_angle_deg=wheel_deg)


def test_steering_keeps_the_wheel_angle_and_flips_the_sign() -> None:
    full_left = _control(1.0, 0.0)
    assert isinstance(full_left, carla.VehicleControl)
    # 0.6 rad = 34.38 degrees of 70: left in our frame is negative (right) in CARLA's
    assert full_left.steer == pytest.approx(-math.degrees(0.6) / 70.0, abs=1e-6)
    assert _control(-0.5, 0.0).steer == pytest.approx(0.5 * math.degrees(0.6) / 70.0, abs=1e-6)
    assert _control(0.0, 0.0).steer == 0.0


def test_steering_saturates_where_the_vehicle_turns_less() -> None:
    # a vehicle whose wheels turn 20 degrees: 0.6 rad asks for more than it has
    assert _control(1.0, 0.0, wheel_deg=20.0).steer == pytest.approx(-1.0)
    assert _control(-1.0, 0.0, wheel_deg=20.0).steer == pytest.approx(1.0)
    assert _control(-3.0, 0.0).steer == pytest.approx(_control(-1.0, 0.0).steer)  # actions are clipped first


def test_pedals_split_by_sign_with_a_dead_zone() -> None:
    ahead = _control(0.0, 0.7)
    assert (ahead.throttle, ahead.brake) == (pytest.approx(0.7), 0.0)
    braking = _control(0.0, -0.4)
    assert (braking.throttle, braking.brake) == (0.0, pytest.approx(0.4))
    coasting = _control(0.0, 0.03)
    assert (coasting.throttle, coasting.brake) == (0.0, 0.0)
    assert _control(0.0, 2.0).throttle == pytest.approx(1.0) and _control(0.0, -2.0).brake == pytest.approx(1.0)
    assert not ahead.reverse and not ahead.hand_brake


def test_standing_still_without_throttle_holds_the_brake() -> None:
    held = _control(0.2, 0.0, speed_mps=0.0)
    assert (held.throttle, held.brake) == (0.0, 1.0)
    assert _control(0.0, -0.2, speed_mps=0.05).brake == 1.0
    starting = _control(0.0, 0.5, speed_mps=0.0)
    assert (starting.throttle, starting.brake) == (pytest.approx(0.5), 0.0)


def test_the_steering_angle_comes_from_the_front_wheels() -> None:
    physics = carla.VehiclePhysicsControl()
    physics.wheels = [carla.WheelPhysicsControl(max_steer_angle=a) for a in (70.0, 70.0, 0.0, 0.0)]
    assert max_steer_angle_deg(physics) == 70.0
    physics.wheels = [carla.WheelPhysicsControl(max_steer_angle=0.0) for _ in range(4)]
    with pytest.raises(ValueError, match="no steering wheel"):
        max_steer_angle_deg(physics)
