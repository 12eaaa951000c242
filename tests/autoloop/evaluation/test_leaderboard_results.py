"""Reading the CARLA Leaderboard 2.x evaluator's results file: statuses, infractions in the map frame, driving scores
worked out by hand and against the Leaderboard's own, Bench2Drive's fork, the checkpoint, and one-line errors.

The files are written here in the evaluator's format (leaderboard-2.0 ``statistics_manager.Results.to_json``, as in
Thinklab-SJTU/Bench2Drive ``leaderboard/leaderboard/utils/statistics_manager.py``), with its messages.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from autoloop.config import EvaluateConfig
from autoloop.evaluation import AGENT_SETUP_FAILED, COMPLETED, SIMULATION_CRASHED, aggregate
from autoloop.evaluation.leaderboard import (
    leaderboard_checkpoint_header,
    leaderboard_evaluation,
    leaderboard_scores,
    read_leaderboard_results,
    route_seed,
    write_checkpoint,
)
from autoloop.evaluation.runner import read_checkpoint
from sim.metrics import bench2drive_success

INFRACTION_KEYS = ("collisions_layout", "collisions_pedestrian", "collisions_vehicle", "red_light", "stop_infraction",
                   "outside_route_lanes", "min_speed_infractions", "yield_emergency_vehicle_infractions",
                   "scenario_timeouts", "route_dev", "vehicle_blocked", "route_timeout")

#: route file id, town, scenario type (None: a plain route)
ROUTES = (("1", "Town12", "Accident"), ("2", "Town12", "SignalizedJunctionLeftTurn"), ("3", "Town13", None),
          ("4", "Town12", "ParkingExit"), ("5", "Town13", "Accident"), ("6", "Town13", "ControlLoss"),
          ("38", "Town13", "BlockedIntersection"))

# route 2: a vehicle, a layout collision and a red light, and a minimum-speed event at 63.1 %:
# 0.6 * 0.65 * 0.7 * (1 - 0.3 * (1 - 0.631)) = 0.273 * 0.8893 = 0.2427789
ROUTE2_PENALTY = 0.2427789
# route 3 deviated at 42.5 % after a stop sign and 1.5 % of its completed route outside its lanes:
# 42.5 * 0.8 * (1 - 0.015) = 33.49
ROUTE3_DS = 33.49


def _route_file(folder: Path) -> Path:
    routes = []
    for route_id, town, kind in ROUTES:
        scenario = "" if kind is None else (
            f'<scenarios><scenario name="{kind}_1" type="{kind}"><trigger_point x="10.0" y="-2.0" z="0.0" '
            f'yaw="90.0"/></scenario></scenarios>')
        routes.append(f'<route id="{route_id}" town="{town}"><weathers/><waypoints><position x="0.0" y="0.0" '
                      f'z="0.0"/><position x="120.0" y="-40.0" z="0.0"/></waypoints>{scenario}</route>')
    path = folder / "routes.xml"
    path.write_text(f"<routes>{''.join(routes)}</routes>")
    return path


def _record(route_id: str, status: str, scores: tuple[float, float, float], route_length: float,
            index: int = 0, **infractions: list[str]) -> dict[str, Any]:
    messages = {key: list(infractions.get(key, [])) for key in INFRACTION_KEYS}
    score_route, score_penalty, score_composed = scores
    return {"index": index, "route_id": f"RouteScenario_{route_id}_rep0", "status": status,
            "num_infractions": sum(len(m) for m in messages.values()), "infractions": messages,
            "scores": {"score_route": score_route, "score_penalty": score_penalty, "score_composed": score_composed},
            "meta": {"route_length": route_length, "duration_game": 61.2, "duration_system": 240.5}}


def _leaderboard_records() -> list[dict[str, Any]]:
    """Routes 1-5 and 38 as the leaderboard-2.0 evaluator writes them; route 6 is not there."""
    return [
        _record("1", "Perfect", (100.0, 1.0, 100.0), 250.0, index=0),
        _record("2", "Completed", (100.0, round(ROUTE2_PENALTY, 6), round(100 * ROUTE2_PENALTY, 6)), 310.0, index=1,
                collisions_vehicle=["Agent collided against object with type=vehicle.tesla.model3 and id=201 at "
                                    "(x=12.3, y=-45.6, z=0.1)"],
                collisions_layout=["Agent collided against object with type=static.prop.trafficcone01 and id=0 at "
                                   "(x=80.5, y=7.25, z=0.0)"],
                red_light=["Agent ran a red light 1021 at (x=100.0, y=20.5, z=0.3)"],
                min_speed_infractions=["Average speed is 63.1% of the surrounding traffic's one"]),
        _record("3", "Failed - Agent deviated from the route", (42.5, 0.788, ROUTE3_DS), 300.0, index=2,
                stop_infraction=["Agent ran a stop with id=77 at (x=50.0, y=-3.25, z=0.0)"],
                outside_route_lanes=["Agent went outside its route lanes for about 1.913 meters "
                                     "(1.5% of the completed route)"],
                route_dev=["Agent deviated from the route at (x=5.0, y=7.0, z=0.2)"]),
        _record("4", "Failed - Simulation crashed", (12.0, 1.0, 12.0), 180.0, index=3),
        _record("5", "Failed - Agent couldn't be set up", (0, 0, 0), 0, index=4),
        # a real record: PDM-Lite on leaderboard 2.0 (huggingface andreas122001/AD_pdm-lite_carla-lb2,
        # BlockedIntersection/2024_0_0_result.json)
        _record("38", "Completed", (100, 0.8893, 88.93), 67.883, index=5,
                min_speed_infractions=["Average speed is 63.1% of the surrounding traffic's one"]),
    ]


def _results_file(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({
        "_checkpoint": {"global_record": {}, "progress": [len(records), len(ROUTES)], "records": records},
        "entry_status": "Started", "eligible": False, "sensors": ["carla_camera", "carla_gnss"], "values": [],
        "labels": []}, indent=4))
    return path


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    return _results_file(tmp_path / "results.json", _leaderboard_records()), _route_file(tmp_path)


# ---------------------------------------------------------------------------------------------- statuses


def test_every_route_of_the_route_file_comes_back_in_its_order(files: tuple[Path, Path]) -> None:
    results, routes = files
    converted = read_leaderboard_results([results], route_file=routes)
    assert [r.index for r in converted] == list(range(7))
    assert [r.scenario_seed for r in converted] == [1, 2, 3, 4, 5, 6, 38]
    assert [r.town for r in converted] == [town for _, town, _ in ROUTES]
    assert [r.scenario_type for r in converted] == [kind or "Route" for _, _, kind in ROUTES]
    assert [r.status for r in converted] == [COMPLETED, COMPLETED, "Failed - Agent deviated from the route",
                                             SIMULATION_CRASHED, AGENT_SETUP_FAILED, SIMULATION_CRASHED, COMPLETED]
    assert all(r.episode_id is None for r in converted)


def test_routes_that_did_not_run_to_an_end_are_explicit_zero_failures(files: tuple[Path, Path]) -> None:
    results, routes = files
    crashed, setup, missing = read_leaderboard_results([results], route_file=routes)[3:6]
    for route in (crashed, setup, missing):
        assert (route.driving_score, route.route_completion, route.record) == (0.0, 0.0, None)
        assert leaderboard_scores(route) is None
    assert crashed.error == "the Leaderboard's status 'Failed - Simulation crashed' (its driving score 12)"
    assert "Agent couldn't be set up" in setup.error
    assert missing.error == "not in results.json: the evaluator never drove it"


def test_a_failure_with_no_reason_and_an_unfinished_record_run_again_like_crashes(tmp_path: Path) -> None:
    records = [_record("1", "Failed", (35.0, 1.0, 35.0), 250.0), _record("2", "Started", (0, 0, 0), 0, index=1)]
    converted = read_leaderboard_results([_results_file(tmp_path / "r.json", records)],
                                         route_file=_route_file(tmp_path))
    assert [(r.status, r.driving_score) for r in converted[:2]] == [(SIMULATION_CRASHED, 0.0)] * 2
    assert "'Failed'" in converted[0].error and "'Started'" in converted[1].error


# ---------------------------------------------------------------------------------------------- infractions


def test_infractions_map_to_autoloops_kinds_with_carla_y_flipped(files: tuple[Path, Path]) -> None:
    results, routes = files
    route = read_leaderboard_results([results], route_file=routes)[1]
    assert route.infraction_counts == {"collision_vehicle": 1, "collision_static": 1, "red_light": 1,
                                       "min_speed": 1}
    places = {(e.kind, e.x_m, e.y_m) for e in route.infractions}
    assert places == {("collision_vehicle", 12.3, 45.6), ("collision_static", 80.5, -7.25),
                      ("red_light", 100.0, -20.5)}
    assert all(math.isnan(e.time_s) for e in route.infractions)  # the messages carry no time
    assert route.record is not None and route.record["min_speed_percentages"] == [63.1]


def test_a_deviated_route_keeps_its_completion_share_outside_and_where_it_left(files: tuple[Path, Path]) -> None:
    results, routes = files
    route = read_leaderboard_results([results], route_file=routes)[2]
    record = route.route_record()
    assert record is not None
    assert record.outside_lanes_share == pytest.approx(0.015)
    assert record.route_completion == pytest.approx(0.425)
    assert route.driven_m == pytest.approx(0.425 * 300.0)
    assert route.route_completion == pytest.approx(42.5)
    assert route.driving_score == pytest.approx(ROUTE3_DS)
    assert ("route_deviation", 5.0, -7.0) in {(e.kind, e.x_m, e.y_m) for e in route.infractions}
    assert not bench2drive_success(record)


# ---------------------------------------------------------------------------------------------- scores


def test_lb2_recomputes_the_driving_score_worked_out_by_hand(files: tuple[Path, Path]) -> None:
    results, routes = files
    route = read_leaderboard_results([results], route_file=routes, scorer="lb2")[1]
    assert route.infraction_penalty == pytest.approx(ROUTE2_PENALTY)
    assert route.driving_score == pytest.approx(100 * ROUTE2_PENALTY)


def test_lb2_gives_the_leaderboards_own_score_on_every_driven_route(files: tuple[Path, Path]) -> None:
    results, routes = files
    for route in read_leaderboard_results([results], route_file=routes, scorer="lb2"):
        scores = leaderboard_scores(route)
        if scores is not None:
            assert route.driving_score == pytest.approx(scores.score_composed, abs=1e-4), route.index
            assert route.route_completion == pytest.approx(scores.score_route)


def test_lb21_rescores_with_the_21_weights(files: tuple[Path, Path]) -> None:
    results, routes = files
    route = read_leaderboard_results([results], route_file=routes, scorer="lb21")[1]
    # 1 / (1 + 0.7 + 0.6 + 0.4 + 0.4 * (1 - 0.631)) = 1 / 2.8476
    assert route.driving_score == pytest.approx(100.0 / 2.8476)
    scores = leaderboard_scores(route)
    assert scores is not None and scores.score_composed == pytest.approx(100 * ROUTE2_PENALTY)  # its own: lb2


def test_bench2drive_results_score_like_its_fork(tmp_path: Path) -> None:
    """Bench2Drive's records: extra keys, no ``index`` (its merge drops it), 'Perfect', the minimum-speed penalty
    unused (a vehicle collision alone: 60), its ``TickRuntime`` failure, and one file per evaluator process."""
    routes = _route_file(tmp_path)
    extra = {"scenario_name": "Accident_1", "weather_id": 3, "save_name": "RouteScenario_1_rep0_Town12_x",
             "town_name": "Town12"}
    perfect = {**_record("1", "Perfect", (100.0, 1.0, 100.0), 250.0), **extra}
    slow_collided = _record("2", "Completed", (100.0, 0.6, 60.0), 310.0,
                            collisions_vehicle=["Agent collided against object with type=vehicle.audi.a2 and "
                                                "id=310 at (x=-747.07, y=3019.336, z=363.0)"],
                            min_speed_infractions=["Average speed is 50.0% of the surrounding traffic's one"])
    only_slow = _record("38", "Completed", (100.0, 1.0, 100.0), 67.9,
                        min_speed_infractions=["Average speed is 30.6% of the surrounding traffic's one"])
    tick = _record("3", "Failed - TickRuntime", (20.0, 1.0, 20.0), 300.0)
    # a real record: PDM-Lite (EnterActorFlowV2/2448_14_0_result.json of the dataset above): two collisions
    twice = _record("5", "Completed", (100, 0.36, 36.0), 510.832, collisions_vehicle=[
        "Agent collided against object with type=vehicle.dodge.charger_2020 and id=3708 at "
        "(x=3902.562, y=5230.116, z=367.404)",
        "Agent collided against object with type=vehicle.dodge.charger_2020 and id=3708 at "
        "(x=3902.139, y=5241.013, z=367.406)"])
    for record in (perfect, slow_collided, only_slow, tick, twice):
        del record["index"]
    shards = [_results_file(tmp_path / "gpu0.json", [perfect, tick, twice]),
              _results_file(tmp_path / "gpu1.json", [slow_collided, only_slow])]

    b2d = read_leaderboard_results(shards, route_file=routes, scorer="bench2drive")
    assert [r.driving_score for r in b2d[:3]] == pytest.approx([100.0, 60.0, 0.0])
    assert b2d[4].driving_score == pytest.approx(36.0)
    assert b2d[4].infraction_counts == {"collision_vehicle": 2}
    assert b2d[6].driving_score == pytest.approx(100.0)
    assert read_leaderboard_results(shards, route_file=routes, scorer="lb2")[1].driving_score == pytest.approx(
        60.0 * (1 - 0.3 * 0.5))
    assert b2d[2].status == SIMULATION_CRASHED and "TickRuntime" in b2d[2].error
    success = [(record := r.route_record()) is not None and bench2drive_success(record) for r in b2d]
    assert success == [True, False, False, False, False, False, True]
    suite = aggregate(b2d, policy="b2d", suite="routes", suite_hash="h", scorer="bench2drive", resamples=100)
    assert suite.success_rate == pytest.approx(100 * 2 / 7)
    assert suite.driving_score == pytest.approx((100 + 60 + 36 + 100) / 7)


def test_repetitions_index_routes_the_evaluators_way(tmp_path: Path) -> None:
    routes = _route_file(tmp_path)
    second = _record("2", "Perfect", (100.0, 1.0, 100.0), 310.0)
    second["route_id"] = "RouteScenario_2_rep1"
    converted = read_leaderboard_results([_results_file(tmp_path / "r.json", [second])], route_file=routes,
                                         repetitions=2)
    assert len(converted) == 14
    assert [r.status for r in converted[2:4]] == [SIMULATION_CRASHED, COMPLETED]  # route 2: rep 0, rep 1
    assert converted[2].scenario_seed == converted[3].scenario_seed == 2


def test_route_seeds_are_the_route_ids_or_a_stable_hash() -> None:
    assert route_seed("1711") == 1711
    assert route_seed("town12-accident") == route_seed("town12-accident") != route_seed("town12-accident2")
    assert 0 <= route_seed("town12-accident") < 2**32


# ---------------------------------------------------------------------------------------------- checkpoint


def test_the_checkpoint_holds_the_results_for_the_runner_to_read(files: tuple[Path, Path], tmp_path: Path) -> None:
    results, routes = files
    converted = read_leaderboard_results([results], route_file=routes)
    header = leaderboard_checkpoint_header(routes, identity="model:7", scorer="lb2")
    checkpoint = tmp_path / "eval" / "routes.jsonl"
    assert write_checkpoint(checkpoint, converted, header=header) == 7
    done = read_checkpoint(checkpoint, header)  # the runner's reader: simulator crashes are left to run again
    assert sorted(done) == [0, 1, 2, 4, 6]
    assert [json.dumps(done[i].to_json(), sort_keys=True) for i in sorted(done)] == [
        json.dumps(converted[i].to_json(), sort_keys=True) for i in sorted(done)]
    assert write_checkpoint(checkpoint, converted, header=header) == 2  # only the crashes, to run again
    other = leaderboard_checkpoint_header(routes, identity="model:8", scorer="lb2")
    with pytest.raises(ValueError, match="belongs to another evaluation"):
        write_checkpoint(checkpoint, converted, header=other)


def test_an_evaluation_of_the_results_counts_every_planned_route(files: tuple[Path, Path], tmp_path: Path) -> None:
    results, routes = files
    settings = EvaluateConfig(scorer="lb2", bootstrap_resamples=200)
    evaluation = leaderboard_evaluation([results], route_file=routes, checkpoint=tmp_path / "c.jsonl",
                                        policy_name="model:7", identity="model:7", settings=settings)
    assert len(evaluation.routes) == 7
    assert evaluation.failed_runs == 3
    assert evaluation.completed_routes == 3
    assert evaluation.driving_score == pytest.approx((100 + 100 * ROUTE2_PENALTY + ROUTE3_DS + 88.93) / 7, abs=1e-4)
    assert evaluation.suite == "routes"
    assert evaluation.suite_hash == leaderboard_checkpoint_header(routes, identity="x", scorer="lb2")["suite_hash"]
    assert evaluation.by_town.keys() == {"Town12", "Town13"}


# ---------------------------------------------------------------------------------------------- errors


def _drop_score_route(data: dict[str, Any]) -> None:
    del data["_checkpoint"]["records"][1]["scores"]["score_route"]


def _unknown_status(data: dict[str, Any]) -> None:
    data["_checkpoint"]["records"][2]["status"] = "Failed - Agent fell asleep"


def _unknown_infraction(data: dict[str, Any]) -> None:
    data["_checkpoint"]["records"][0]["infractions"]["wrong_way"] = []


def _speed_without_percentage(data: dict[str, Any]) -> None:
    data["_checkpoint"]["records"][1]["infractions"]["min_speed_infractions"] = ["Average speed is low"]


def _text_score(data: dict[str, Any]) -> None:
    data["_checkpoint"]["records"][0]["scores"]["score_composed"] = "100"


def _foreign_route(data: dict[str, Any]) -> None:
    data["_checkpoint"]["records"][3]["route_id"] = "RouteScenario_99_rep0"


def _twice(data: dict[str, Any]) -> None:
    data["_checkpoint"]["records"][4]["route_id"] = "RouteScenario_1_rep0"


def _no_records(data: dict[str, Any]) -> None:
    data["_checkpoint"]["records"] = {}


@pytest.mark.parametrize(("corrupt", "field"), [
    (_drop_score_route, "_checkpoint.records[1].scores.score_route: missing"),
    (_unknown_status, "_checkpoint.records[2].status: 'Failed - Agent fell asleep' is not a status"),
    (_unknown_infraction, "_checkpoint.records[0].infractions.wrong_way: not an infraction"),
    (_speed_without_percentage, "_checkpoint.records[1].infractions.min_speed_infractions[0]: 'Average speed is low'"),
    (_text_score, "_checkpoint.records[0].scores.score_composed: expected a finite number"),
    (_foreign_route, "_checkpoint.records[3].route_id: 'RouteScenario_99_rep0' is not a route of"),
    (_twice, "_checkpoint.records[4].route_id: 'RouteScenario_1_rep0' also at"),
    (_no_records, "_checkpoint.records: expected list, found dict"),
])
def test_a_malformed_file_is_one_line_naming_the_file_and_field(files: tuple[Path, Path], corrupt: Any,
                                                                field: str) -> None:
    results, routes = files
    data = json.loads(results.read_text())
    corrupt(data)
    results.write_text(json.dumps(copy.deepcopy(data)))
    with pytest.raises(ValueError) as error:
        read_leaderboard_results([results], route_file=routes)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{results}: {field}")


def test_a_file_that_is_not_json_says_so(files: tuple[Path, Path]) -> None:
    results, routes = files
    results.write_text('{"_checkpoint": {"records": [')  # cut short
    with pytest.raises(ValueError, match=r"results\.json: not a readable JSON file"):
        read_leaderboard_results([results], route_file=routes)
