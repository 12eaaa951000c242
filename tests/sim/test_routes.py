from pathlib import Path

import numpy as np
import pytest

from sim.routes import read_routes


def test_reads_leaderboard_1_and_2_route_files(shared_data: Path) -> None:
    lb1 = read_routes(shared_data / "carla" / "routes" / "lb1_routes_training.xml")
    assert len(lb1) == 50 and {r.town for r in lb1} == {"Town01", "Town03", "Town04", "Town06"}
    first = lb1[0]
    assert first.route_id == "0" and first.headings is not None
    # CARLA's (338.70, 226.75) with yaw 269.98 degrees is (338.70, -226.75) heading ~ +90 degrees in the map frame
    np.testing.assert_allclose(first.waypoints[0], [338.7027893066406, -226.75003051757812])
    assert np.degrees(first.headings[0]) % 360 == pytest.approx(90.0, abs=0.1)
    lb2 = read_routes(shared_data / "carla" / "routes" / "lb2_routes_devtest.xml")
    assert [r.town for r in lb2] == ["Town12", "Town12"]
    assert lb2[0].headings is None and len(lb2[0].waypoints) > 10


def test_malformed_route_files_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "routes.xml"
    path.write_text("<routes><route id='3' town='Town01'><waypoint x='1' y='2'/></route></routes>")
    with pytest.raises(ValueError, match=r"routes\.xml: route 3 has 1 waypoints"):
        read_routes(path)
    path.write_text("<routes><route id='4' town='Town01'><waypoint x='1'/><waypoint x='2' y='3'/></route></routes>")
    with pytest.raises(ValueError, match="route 4: a waypoint lacks a numeric x/y"):
        read_routes(path)
    path.write_text("<routes><route id='5'>")
    with pytest.raises(ValueError, match="not a readable route XML"):
        read_routes(path)
