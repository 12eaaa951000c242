from pathlib import Path

import numpy as np
import pytest

from sim.scenarios.events import DynamicObjectCrossing
from sim.scenarios.routes import read_routes, route_events


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


def test_leaderboard_2_scenarios_become_events_or_are_named_unsupported(shared_data: Path) -> None:
    routes = read_routes(shared_data / "carla" / "routes" / "lb2_routes_devtest.xml")
    scenarios = [s for r in routes for s in r.scenarios]
    assert len(scenarios) > 100
    kinds = {s.type for s in scenarios}
    assert {"DynamicObjectCrossing", "HardBreakRoute", "OppositeVehicleTakingPriority", "ParkingExit"} <= kinds
    for route in routes:
        events, unsupported = route_events(route, route.waypoints)
        assert len(events) + len(unsupported) == len(route.scenarios)  # nothing dropped
        assert all(e.name for e in events)
        staged = {e.name for e in events}
        for s in route.scenarios:
            assert (s.name in staged) != (f"{s.name} ({s.type})" in unsupported)
    crossing = next(s for s in scenarios if s.type == "DynamicObjectCrossing")
    assert crossing.params["distance"] == "40"
    flow = next(s for s in scenarios if s.type == "SignalizedJunctionLeftTurn")
    assert flow.params["source_dist_interval"] == "30..65"


def test_route_scenarios_land_on_the_route_with_their_parameters(tmp_path: Path) -> None:
    path = tmp_path / "routes.xml"
    path.write_text("""<routes><route id="1" town="Town01">
      <waypoints><position x="0" y="0" z="0"/><position x="100" y="0" z="0"/></waypoints>
      <scenarios>
        <scenario name="DynamicObjectCrossing_1" type="DynamicObjectCrossing">
          <trigger_point x="30.4" y="-1.5" z="0" yaw="0"/><distance value="18"/><direction value="left"/>
          <blocker_model value="static.prop.advertisement"/>
        </scenario>
        <scenario name="ParkingExit_1" type="ParkingExit"><trigger_point x="5" y="0" z="0" yaw="0"/></scenario>
      </scenarios></route></routes>""")
    route = read_routes(path)[0]
    events, unsupported = route_events(route, route.waypoints)
    assert unsupported == ("ParkingExit_1 (ParkingExit)",)
    (event,) = events
    assert isinstance(event, DynamicObjectCrossing)
    assert event.trigger_s_m == pytest.approx(30.4)
    assert (event.distance_m, event.direction, event.name) == (18.0, "left", "DynamicObjectCrossing_1")
    path.write_text(path.read_text().replace('value="left"', 'value="behind"'))
    with pytest.raises(ValueError, match=r"route 1: scenario DynamicObjectCrossing_1: .*direction"):
        route_events(read_routes(path)[0], route.waypoints)
