import numpy as np
import pytest

from sim.metrics import (
    SCORERS,
    Infraction,
    RouteRecord,
    RouteStatus,
    bench2drive_success,
    comfort,
    score_route,
    score_suite,
)


def _record(completion: float, infractions: dict[Infraction, int], outside: float = 0.0,
            status: RouteStatus = RouteStatus.COMPLETED, driven_m: float = 100.0) -> RouteRecord:
    return RouteRecord(completion, infractions, outside, status, driven_m)


def test_driving_score_is_completion_times_penalties() -> None:
    # 80 % completed, hit one vehicle (0.60) and ran two red lights (0.70^2): 80 * 0.6 * 0.49 = 23.52
    score = score_route(_record(0.8, {Infraction.COLLISION_VEHICLE: 1, Infraction.RED_LIGHT: 2},
                                status=RouteStatus.ROUTE_TIMEOUT))
    assert score.route_completion == pytest.approx(80.0)
    assert score.infraction_penalty == pytest.approx(0.6 * 0.49)
    assert score.driving_score == pytest.approx(23.52)


def test_outside_lanes_share_scales_the_penalty() -> None:
    # pedestrian (0.5) and 10 % of the route outside its lanes: 100 * 0.5 * 0.9 = 45
    score = score_route(_record(1.0, {Infraction.COLLISION_PEDESTRIAN: 1}, outside=0.1))
    assert score.driving_score == pytest.approx(45.0)


def test_route_ending_infractions_carry_no_coefficient() -> None:
    score = score_route(_record(0.5, {Infraction.ROUTE_DEVIATION: 1}, status=RouteStatus.ROUTE_DEVIATION))
    assert score.driving_score == pytest.approx(50.0)


def test_suite_means_over_all_planned_routes() -> None:
    records = [
        _record(1.0, {}),  # 100
        _record(0.5, {Infraction.STOP_SIGN: 1}, status=RouteStatus.ROUTE_TIMEOUT, driven_m=400.0),  # 40
        None,  # the route crashed before it ran: counts as 0
    ]
    suite = score_suite(records)
    assert suite.driving_score == pytest.approx(140.0 / 3)
    assert suite.route_completion == pytest.approx(150.0 / 3)
    assert suite.infraction_penalty == pytest.approx(1.8 / 3)
    assert suite.completed_routes == 1
    assert suite.driven_km == pytest.approx(0.5)
    assert suite.collisions_per_km == 0.0


def test_collisions_per_km() -> None:
    suite = score_suite([_record(1.0, {Infraction.COLLISION_VEHICLE: 2, Infraction.COLLISION_STATIC: 1},
                                 driven_m=1500.0)])
    assert suite.collisions_per_km == pytest.approx(2.0)


def test_unknown_scorer_and_empty_suite_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown scorer 'lb9'"):
        score_route(_record(1.0, {}), scorer="lb9")
    with pytest.raises(ValueError, match="empty suite"):
        score_suite([])


def test_lb21_divides_by_one_plus_the_weights() -> None:
    # vehicle (0.7) + red light (0.4), 10 % outside lanes: P = 0.9 / 2.1
    record = _record(1.0, {Infraction.COLLISION_VEHICLE: 1, Infraction.RED_LIGHT: 1}, outside=0.1)
    assert score_route(record, scorer="lb21").infraction_penalty == pytest.approx(0.9 / 2.1)
    assert score_route(record, scorer="lb21").driving_score == pytest.approx(90.0 / 2.1)
    # the same route under LB 2.0: 0.6 * 0.7 * 0.9
    assert score_route(record, scorer="lb2").infraction_penalty == pytest.approx(0.378)


def test_minimum_speed_events() -> None:
    # one stop sign (0.8) and one minimum-speed event at 60 % of the traffic's speed
    record = RouteRecord(1.0, {Infraction.STOP_SIGN: 1}, 0.0, RouteStatus.COMPLETED, 100.0,
                         min_speed_percentages=(60.0,))
    assert score_route(record, scorer="lb2").infraction_penalty == pytest.approx(0.8 * (1 - 0.3 * 0.4))
    assert score_route(record, scorer="lb21").infraction_penalty == pytest.approx(1 / (1 + 0.25 + 0.4 * 0.4))
    # Bench2Drive records minimum speed but leaves it out of the penalty
    assert score_route(record, scorer="bench2drive").infraction_penalty == pytest.approx(0.8)


def test_route_completion_snaps_within_ten_metres_of_the_end() -> None:
    near = RouteRecord(0.96, {}, 0.0, RouteStatus.ROUTE_TIMEOUT, 192.0, route_length_m=200.0)  # 8 m short
    far = RouteRecord(0.94, {}, 0.0, RouteStatus.ROUTE_TIMEOUT, 188.0, route_length_m=200.0)  # 12 m short
    assert score_route(near).route_completion == 100.0
    assert score_route(far).route_completion == pytest.approx(94.0)


def test_bench2drive_success_rate() -> None:
    records = [
        RouteRecord(1.0, {Infraction.MIN_SPEED: 2}, 0.0, RouteStatus.COMPLETED, 100.0),  # success
        _record(1.0, {Infraction.RED_LIGHT: 1}),  # an infraction
        _record(0.7, {}, status=RouteStatus.ROUTE_TIMEOUT),  # not completed
        _record(1.0, {}),  # success
    ]
    assert score_suite(records).success_rate == pytest.approx(50.0)
    assert not bench2drive_success(_record(1.0, {}, outside=0.05))


def test_comfort_windows() -> None:
    dt = 0.05
    t = np.arange(60) * dt
    assert comfort(np.full(60, 10.0), np.zeros(60), dt) == 1.0
    assert comfort(20.0 - 6.0 * t, np.zeros(60), dt) == 0.0  # braking at 6 m/s^2 > 4.05
    assert comfort(np.full(60, 5.0), 0.5 * t, dt) == 1.0  # 0.5 rad/s, 2.5 m/s^2 lateral
    assert comfort(np.full(60, 5.0), 1.2 * t, dt) == 0.0  # yaw rate above 0.95 rad/s
    # a hard brake in the middle window of five: it fails, and so do its neighbours, through the jerk of the
    # brake's onset and end at their edges; the first and last windows stay comfortable
    speed = np.concatenate([np.full(40, 10.0), 10.0 - 6.0 * (np.arange(1, 21) * dt), np.full(40, 4.0)])
    assert comfort(speed, np.zeros(100), dt, window=20) == pytest.approx(2 / 5)


@pytest.mark.parametrize(("scorer", "expected"), [
    ("lb2", [0.6**2 * 0.7 * (1 - 0.3 * 0.6) * (1 - 0.3 * 0.2) * 0.9, 0.8, 1 - 0.3 * 0.9]),
    ("lb21", [0.9 / (1 + 0.7 * 2 + 0.4 + 0.4 * 0.6 + 0.4 * 0.2), 1 / 1.25, 1 / (1 + 0.4 * 0.9)]),
    ("bench2drive", [0.6**2 * 0.7 * 0.9, 0.8, 1.0]),
])
def test_batched_penalties(scorer: str, expected: list[float]) -> None:
    """Many routes' penalties at once (the vector env's running score), each the route's own."""
    records = [
        RouteRecord(1.0, {Infraction.COLLISION_VEHICLE: 2, Infraction.RED_LIGHT: 1}, 0.1, RouteStatus.COMPLETED,
                    100.0, min_speed_percentages=(40.0, 80.0)),
        _record(0.5, {Infraction.STOP_SIGN: 1}),
        RouteRecord(0.2, {}, 0.0, RouteStatus.COMPLETED, 100.0, min_speed_percentages=(10.0,)),
    ]
    counts = np.array([[r.infractions.get(kind, 0) for kind in Infraction] for r in records])
    slow = np.array([[40.0, 80.0], [np.nan, np.nan], [10.0, np.nan]])
    outside = np.array([r.outside_lanes_share for r in records])
    assert SCORERS[scorer].penalties(counts, slow, outside) == pytest.approx(expected, rel=1e-12)
    assert [SCORERS[scorer].penalty(r) for r in records] == pytest.approx(expected, rel=1e-12)
