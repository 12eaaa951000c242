import pytest

from sim.metrics import Infraction, RouteRecord, RouteStatus, score_route, score_suite


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
