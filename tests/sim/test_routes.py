from pathlib import Path

import numpy as np
import pytest
import yaml

from sim.geometry import FloatArray, cumulative_length
from sim.maps import LaneGraph, get_map
from sim.scenarios import Scenario, sample_scenario
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
        <scenario name="BackgroundActivityParametrizer_1" type="BackgroundActivityParametrizer">
          <trigger_point x="5" y="0" z="0" yaw="0"/></scenario>
      </scenarios></route></routes>""")
    route = read_routes(path)[0]
    events, unsupported = route_events(route, route.waypoints)
    assert unsupported == ("BackgroundActivityParametrizer_1 (BackgroundActivityParametrizer)",)
    (event,) = events
    assert isinstance(event, DynamicObjectCrossing)
    assert event.trigger_s_m == pytest.approx(30.4)
    assert (event.distance_m, event.direction, event.name) == (18.0, "left", "DynamicObjectCrossing_1")
    path.write_text(path.read_text().replace('value="left"', 'value="behind"'))
    with pytest.raises(ValueError, match=r"route 1: scenario DynamicObjectCrossing_1: .*direction"):
        route_events(read_routes(path)[0], route.waypoints)


def _point(lane_graph: LaneGraph, lane: int, s_m: float) -> tuple[float, float]:
    points = lane_graph.lanes[lane].centerline
    s = cumulative_length(points)
    return float(np.interp(s_m, s, points[:, 0])), float(np.interp(s_m, s, points[:, 1]))


def _route_point(lane_graph: LaneGraph, scenario: Scenario, s_m: float) -> FloatArray:
    """The point ``s_m`` along the scenario's route, as the world lays it."""
    polyline = lane_graph.route_path(scenario.route).polyline(lane_graph)
    s = cumulative_length(polyline)
    return np.array([np.interp(s_m, s, polyline[:, 0]), np.interp(s_m, s, polyline[:, 1])])


def test_a_route_given_as_waypoints_is_laid_on_the_lanes_and_round_trips() -> None:
    town = get_map("town-1")
    drawn = sample_scenario(3, map_name="town-1", route_length_m=(200.0, 250.0))
    along = np.arange(drawn.start_s_m, drawn.end_s_m, 25.0)
    waypoints = [tuple(_route_point(town, drawn, s)) for s in [*along, drawn.end_s_m]]
    scenario = Scenario(map_name="town-1", waypoints=waypoints, traffic_vehicles=2, traffic_seed=5, timeout_s=90.0)
    # the waypoints were taken along a drawn route: they give back its lanes, start and end
    assert scenario.route == drawn.route
    assert (scenario.start_s_m, scenario.end_s_m) == pytest.approx((drawn.start_s_m, drawn.end_s_m), abs=0.05)
    text = scenario.to_yaml()
    assert "waypoints:" in text
    assert Scenario.from_yaml(text) == scenario
    assert "waypoints" not in drawn.to_yaml()  # scenarios without waypoints serialize as before


def test_a_lane_change_on_the_first_lane_starts_beside_it() -> None:
    town = get_map("town-1")
    assert town.lane_changes(12) == (13,) and town.lanes[12].length_m == pytest.approx(town.lanes[13].length_m)
    scenario = Scenario(map_name="town-1", waypoints=[_point(town, 12, 10.0), _point(town, 13, 50.0)],
                        traffic_vehicles=0, traffic_seed=0, timeout_s=30.0)
    assert scenario.route == (13,)  # the world changes lanes on entering one: the route begins on the new lane
    assert (scenario.start_s_m, scenario.end_s_m) == pytest.approx((10.0, 50.0), abs=0.01)


def test_bad_waypoints_name_the_field_and_the_waypoint() -> None:
    town = get_map("town-1")
    on_road = [_point(town, 12, 10.0), _point(town, 12, 50.0)]
    common = {"map_name": "town-1", "traffic_vehicles": 0, "traffic_seed": 0, "timeout_s": 30.0}
    far = {**common, "waypoints": [*on_road, (5000.0, 5000.0)]}
    with pytest.raises(ValueError, match=r"scenario\.yaml: .*waypoints: waypoint 2 at \(5000\.0, 5000\.0\) is off "
                                         r"map 'town-1'"):
        Scenario.from_yaml(yaml.safe_dump(far), source="scenario.yaml")
    with pytest.raises(ValueError, match=r"waypoints: .*at least 2"):
        Scenario.from_yaml(yaml.safe_dump({**common, "waypoints": on_road[:1]}))
    with pytest.raises(ValueError, match=r"waypoints\.1\.0: .*finite"):
        Scenario.from_yaml(yaml.safe_dump({**common, "waypoints": [on_road[0], [float("nan"), 0.0]]}))
    with pytest.raises(ValueError, match=r"start_s_m: derived from the waypoints"):
        Scenario.from_yaml(yaml.safe_dump({**common, "waypoints": on_road, "start_s_m": 3.0}))
    with pytest.raises(ValueError, match=r"unknown map 'town-x'"):
        Scenario.from_yaml(yaml.safe_dump({**common, "map_name": "town-x", "waypoints": on_road}))


def test_leaderboard_waypoints_on_an_opendrive_map_file(shared_data: Path) -> None:
    pytest.importorskip("carla", reason="the OpenDRIVE importer needs the carla package (autoloop[carla])")
    route = read_routes(shared_data / "carla" / "routes" / "lb1_routes_training.xml")[0]
    map_name = "opendrive:carla/maps/Town01.xodr"  # relative to the data root: the same on every machine
    scenario = Scenario(map_name=map_name, waypoints=[tuple(p) for p in route.waypoints[:5]], traffic_vehicles=4,
                        traffic_seed=1, timeout_s=120.0)
    town = get_map(map_name)
    assert town.name == map_name
    # the ego starts at the first waypoint and the route ends at the last
    assert np.linalg.norm(_route_point(town, scenario, scenario.start_s_m) - route.waypoints[0]) < 1.0
    assert np.linalg.norm(_route_point(town, scenario, scenario.end_s_m) - route.waypoints[4]) < 1.0
    chords_m = float(cumulative_length(route.waypoints[:5])[-1])  # the lanes go round corners, no detours
    assert chords_m <= scenario.end_s_m - scenario.start_s_m < 1.1 * chords_m
    assert Scenario.from_yaml(scenario.to_yaml()) == scenario
    assert f"map_name: {map_name}\n" in scenario.to_yaml()
