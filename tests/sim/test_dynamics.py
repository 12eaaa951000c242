import numpy as np
import pytest

from sim.embedded.dynamics import EgoState, bicycle_step, idm_acceleration
from sim.scene.params import BicycleParams, IdmParams

DT = 0.05


def _drive(state: EgoState, steer: float, accel: float, seconds: float, params: BicycleParams) -> EgoState:
    for _ in range(round(seconds / DT)):
        state, _ = bicycle_step(state, np.array(steer), np.array(accel), DT, params)
    return state


def _state(speed: float, yaw: float = 0.0) -> EgoState:
    return EgoState(np.array(0.0), np.array(0.0), np.array(yaw), np.array(speed), np.array(0.0))


def test_constant_speed_straight_line() -> None:
    """20 m/s for 2 s along +y goes 40 m."""
    end = _drive(_state(20.0, yaw=np.pi / 2), 0.0, 0.0, 2.0, BicycleParams(max_speed_mps=30.0))
    assert float(end.y_m) == pytest.approx(40.0)
    assert float(end.x_m) == pytest.approx(0.0, abs=1e-9)


def test_full_throttle_from_rest() -> None:
    """3 m/s^2 for 2 s: 6 m/s and 0.5 * 3 * 2^2 = 6 m."""
    end = _drive(_state(0.0), 0.0, 1.0, 2.0, BicycleParams())
    assert float(end.speed_mps) == pytest.approx(6.0)
    assert float(end.x_m) == pytest.approx(6.0)


def test_braking_stops_without_reversing() -> None:
    """10 m/s braking at 8 m/s^2 stops after 1.25 s and 10^2 / (2 * 8) = 6.25 m."""
    end = _drive(_state(10.0), 0.0, -1.0, 3.0, BicycleParams())
    assert float(end.speed_mps) == 0.0
    assert float(end.x_m) == pytest.approx(6.25)


def test_steady_turn_radius() -> None:
    """With the wheels at delta, the reference point circles at R = l_r / sin(atan(l_r / L * tan(delta)))."""
    params = BicycleParams(max_steer_rate_radps=100.0)
    steer_cmd = 0.5
    delta = steer_cmd * params.max_steer_rad
    slip = np.arctan(params.rear_to_center_m / params.wheelbase_m * np.tan(delta))
    radius = params.rear_to_center_m / np.sin(slip)
    speed = 5.0
    quarter = np.pi / 2 * radius / speed
    state = _state(speed)
    state = _drive(state, steer_cmd, 0.0, DT, params)  # wheels reach delta within one step
    yaw_rate = speed / radius
    before = float(state.yaw_rad)
    state = _drive(state, steer_cmd, 0.0, quarter, params)
    assert float(state.yaw_rad) - before == pytest.approx(yaw_rate * round(quarter / DT) * DT, rel=1e-6)


def test_steering_rate_limit() -> None:
    params = BicycleParams(max_steer_rate_radps=1.0)
    state, _ = bicycle_step(_state(5.0), np.array(1.0), np.array(0.0), DT, params)
    assert float(state.steer_rad) == pytest.approx(0.05)


def test_idm_free_road_and_equilibrium() -> None:
    params = IdmParams()
    # free road at the desired speed: no acceleration
    assert float(idm_acceleration(np.array(10.0), np.array(10.0), np.array(np.inf), np.array(0.0), params)) == 0.0
    # standing still at the jam distance behind a stopped leader: no acceleration
    at_jam = idm_acceleration(np.array(0.0), np.array(10.0), np.array(params.min_gap_m), np.array(0.0), params)
    assert float(at_jam) == pytest.approx(0.0)
    # closing fast on a stopped leader: braking, clipped at the hard limit
    closing = idm_acceleration(np.array(10.0), np.array(10.0), np.array(5.0), np.array(0.0), params)
    assert float(closing) == -params.max_decel_mps2
