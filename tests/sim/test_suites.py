"""Scenario suites: deterministic, hashed, with every event type and held-out towns."""

from collections import Counter
from pathlib import Path

import pytest

from sim.embedded.world import make_world
from sim.maps import get_map
from sim.scenarios import Scenario
from sim.scenarios.model import route_timeout_s
from sim.scenarios.routes import read_routes
from sim.scenarios.suites import CARLA_ROUTE_M, EVENT_TIME_S, MAKERS, Suite, build_suite, leaderboard_suite


def test_eval_suite_holds_every_event_type_several_times_on_held_out_towns() -> None:
    suite = build_suite("eval")
    assert len(suite.scenarios) >= 100
    kinds = Counter(suite.event_type(i) for i in range(len(suite.scenarios)))
    assert {kind: kinds[kind] for kind in MAKERS} == dict.fromkeys(MAKERS, 6)
    assert kinds["Route"] >= 12
    towns = {s.map_name for s in suite.scenarios}
    assert towns == {"town-9001", "town-grid-9002", "town-irregular-9003"}
    train = build_suite("train", routes=32)
    assert all(int(s.map_name.rsplit("-", 1)[1]) < 9000 for s in train.scenarios)
    assert not towns & {s.map_name for s in train.scenarios}
    # every scenario stages in a world sized by the suite
    for town, indices in suite.by_map().items():
        world = make_world(town, len(indices), suite.world_config())
        world.reset([suite.scenarios[i] for i in indices])


def test_suites_are_deterministic_and_identified_by_their_content() -> None:
    first, again = build_suite("smoke"), build_suite("smoke")
    assert first.scenarios == again.scenarios and first.content_hash == again.content_hash
    assert build_suite("train", routes=8, seed=1).content_hash != build_suite("train", routes=8, seed=2).content_hash
    changed = first.scenarios[0].model_copy(update={"traffic_seed": first.scenarios[0].traffic_seed + 1})
    other = type(first)(first.name, first.version, (changed, *first.scenarios[1:]))
    assert other.content_hash != first.content_hash
    for scenario in first.scenarios:  # each one survives YAML
        assert Scenario.from_yaml(scenario.to_yaml()) == scenario
    with pytest.raises(ValueError, match="unknown suite 'nightly'"):
        build_suite("nightly")


@pytest.fixture(scope="module")
def carla_towns(shared_data: Path) -> Suite:
    pytest.importorskip("carla", reason="the OpenDRIVE importer needs the carla package (autoloop[carla])")
    return build_suite("carla-towns")


def test_carla_towns_drives_the_leaderboard_routes_on_the_carla_towns_we_have(carla_towns: Suite,
                                                                           shared_data: Path) -> None:
    files = [shared_data / "carla" / "routes" / name for name in ("lb1_routes_training.xml", "lb2_routes_devtest.xml")]
    on_our_towns = Counter(r.town for file in files for r in read_routes(file) if r.town in ("Town01", "Town04"))
    groups = carla_towns.by_map()
    assert {name: len(indices) for name, indices in groups.items()} == {
        f"opendrive:carla/maps/{town}.xodr": count for town, count in on_our_towns.items()}
    assert len(carla_towns.scenarios) == 20 and carla_towns.skipped == ()  # 10 routes on each
    # the shipped files hold no scenario on these towns (LB1 has none, LB2's routes are on Town12)
    assert carla_towns.unsupported == {} and carla_towns.unstaged == {}
    for scenario in carla_towns.scenarios:
        assert scenario.waypoints is not None and len(scenario.waypoints) >= 2
        assert 100.0 < scenario.end_s_m - scenario.start_s_m <= CARLA_ROUTE_M
        assert (scenario.traffic_vehicles, scenario.pedestrians) == (12, 6)
    assert len({s.traffic_seed for s in carla_towns.scenarios}) == 20
    for name, indices in groups.items():  # every route starts in a world sized by the suite
        world = make_world(name, len(indices), carla_towns.world_config())
        world.reset([carla_towns.scenarios[i] for i in indices])
    again = build_suite("carla-towns")
    assert again.scenarios == carla_towns.scenarios and again.content_hash == carla_towns.content_hash
    assert build_suite("carla-towns", routes=3).scenarios == tuple(
        carla_towns.scenarios[i] for name in groups for i in groups[name][:3])
    for scenario in carla_towns.scenarios[:2]:
        assert Scenario.from_yaml(scenario.to_yaml()) == scenario


_LB2_ROUTES = """<routes>
<route id="7" town="Town01">
  <waypoints>
    <position x="338.7" y="226.75" z="0"/><position x="321.99" y="194.67" z="0"/>
    <position x="283.69" y="194.78" z="0"/><position x="108.05" y="195.30" z="0"/>
  </waypoints>
  <scenarios>
    <scenario name="HardBreakRoute_1" type="HardBreakRoute"><trigger_point x="283.69" y="194.78" z="0"/></scenario>
    <scenario name="BackgroundActivityParametrizer_1" type="BackgroundActivityParametrizer">
      <trigger_point x="321.99" y="194.67" z="0"/></scenario>
    <scenario name="OppositeVehicleRunningRedLight_1" type="OppositeVehicleRunningRedLight">
      <trigger_point x="110" y="195.30" z="0"/><direction value="left"/></scenario>
    <scenario name="Accident_1" type="Accident"><trigger_point x="88.4" y="309.6" z="0"/></scenario>
  </scenarios>
</route>
<route id="8" town="Town12">
  <waypoints><position x="0" y="0" z="0"/><position x="50" y="0" z="0"/></waypoints>
</route>
<route id="9" town="Town01">
  <waypoints><position x="338.7" y="226.75" z="0"/><position x="1000" y="1000" z="0"/></waypoints>
</route>
</routes>"""


def test_route_file_scenarios_become_events_or_are_listed_with_the_reason(shared_data: Path,
                                                                           tmp_path: Path) -> None:
    pytest.importorskip("carla", reason="the OpenDRIVE importer needs the carla package (autoloop[carla])")
    path = tmp_path / "routes.xml"
    path.write_text(_LB2_ROUTES)
    suite = leaderboard_suite("lb2-test", [path])
    (scenario,) = suite.scenarios  # route 8 is on a town we have no map of; route 9 leaves the map
    assert [(e.name, e.type) for e in scenario.events] == [("HardBreakRoute_1", "HardBreakRoute")]
    assert scenario.start_s_m < scenario.events[0].trigger_s_m < scenario.end_s_m
    plain_s = route_timeout_s(get_map(scenario.map_name), scenario.route, scenario.end_s_m - scenario.start_s_m)
    assert scenario.timeout_s == pytest.approx(plain_s + EVENT_TIME_S)
    assert suite.unsupported == {0: ("BackgroundActivityParametrizer_1 (BackgroundActivityParametrizer)",)}
    far, refused = suite.unstaged[0]
    assert far.startswith("Accident_1 (Accident): its trigger is not on the ")
    assert refused.startswith("OppositeVehicleRunningRedLight_1 (OppositeVehicleRunningRedLight): ")
    assert refused.endswith("the route passes no junction after the trigger")
    (skipped,) = suite.skipped
    assert skipped.startswith("routes.xml: route 9: ") and "waypoint 1 at (1000.0, -1000.0) is off map" in skipped


def test_carla_towns_says_where_it_looked_for_its_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTOLOOP_DATA", str(tmp_path))
    with pytest.raises(ValueError, match=rf"data root {tmp_path} .*missing: {tmp_path}/carla/routes/lb1_routes"):
        build_suite("carla-towns")
