"""The Leaderboard evaluator's command line, environment, route ids and checkpoint progress."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autoloop.carla import (
    EvaluatorSettings,
    ServerPorts,
    evaluator_command,
    evaluator_environment,
    leaderboard_evaluator_prefix,
    route_ids_in,
)
from autoloop.carla.evaluator import finished_routes
from tests.autoloop.carla.standins import write_routes


def test_command_is_the_evaluators_own(tmp_path: Path) -> None:
    routes = write_routes(tmp_path, ["1", "2", "3"])
    agent = tmp_path / "agent.py"
    agent.write_text("")
    (tmp_path / "leaderboard" / "leaderboard").mkdir(parents=True)
    (tmp_path / "leaderboard" / "leaderboard" / "leaderboard_evaluator.py").write_text("")
    prefix = leaderboard_evaluator_prefix(tmp_path / "leaderboard", python="python3")
    settings = EvaluatorSettings(routes=routes, agent=agent, agent_config="model.pt", client_timeout_s=300.0)
    first = evaluator_command(prefix, settings, host="127.0.0.1", ports=ServerPorts(2010), route_ids=["1", "3"],
                              checkpoint=tmp_path / "chunk-000.json", live_results=tmp_path / "chunk-000.live.txt",
                              resume=False)
    assert first == [
        "python3", str(tmp_path / "leaderboard" / "leaderboard" / "leaderboard_evaluator.py"),
        "--host=127.0.0.1", "--port=2010", "--traffic-manager-port=2013", "--traffic-manager-seed=0",
        "--timeout=300", "--debug=0", f"--routes={routes}", "--routes-subset=1,3", "--repetitions=1",
        f"--agent={agent}", "--agent-config=model.pt", "--track=SENSORS", f"--checkpoint={tmp_path}/chunk-000.json",
        f"--debug-checkpoint={tmp_path}/chunk-000.live.txt"]
    rerun = evaluator_command(prefix, settings, host="127.0.0.1", ports=ServerPorts(2010), route_ids=["1", "3"],
                              checkpoint=tmp_path / "chunk-000.json", live_results=tmp_path / "chunk-000.live.txt",
                              resume=True)
    assert rerun == [*first, "--resume=1"]  # the evaluator's --resume is type=bool: "0" would resume too


def test_bad_inputs_name_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"LEADERBOARD_ROOT .*: no leaderboard/leaderboard_evaluator.py there"):
        leaderboard_evaluator_prefix(tmp_path)
    with pytest.raises(ValueError, match=r"routes .*missing.xml: no such file"):
        EvaluatorSettings(routes=tmp_path / "missing.xml", agent=tmp_path)
    routes = write_routes(tmp_path, ["1"])
    with pytest.raises(ValueError, match="track 'CAMERAS'"):
        EvaluatorSettings(routes=routes, agent=routes, track="CAMERAS")


def test_environment_puts_the_three_roots_on_pythonpath(tmp_path: Path) -> None:
    carla, leaderboard, runner = tmp_path / "carla", tmp_path / "leaderboard", tmp_path / "scenario_runner"
    for folder in (carla / "PythonAPI" / "carla", leaderboard / "leaderboard", runner / "srunner"):
        folder.mkdir(parents=True)
    env = evaluator_environment(carla_root=carla, leaderboard_root=leaderboard, scenario_runner_root=runner,
                                base={"PYTHONPATH": "/mine", "HOME": "/home/x"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(carla / "PythonAPI" / "carla"), str(runner),
                                                   str(leaderboard), "/mine"]
    assert (env["CARLA_ROOT"], env["LEADERBOARD_ROOT"], env["SCENARIO_RUNNER_ROOT"], env["HOME"]) == (
        str(carla), str(leaderboard), str(runner), "/home/x")
    with pytest.raises(ValueError, match=r"SCENARIO_RUNNER_ROOT .*: no srunner there"):
        evaluator_environment(carla_root=None, leaderboard_root=None, scenario_runner_root=tmp_path, base={})


def test_route_ids_in_file_order_and_numeric(tmp_path: Path) -> None:
    assert route_ids_in(write_routes(tmp_path, ["10", "2", "7"])) == ["10", "2", "7"]
    with pytest.raises(ValueError, match="route id 'a1' is not a number"):
        route_ids_in(write_routes(tmp_path, ["1", "a1"]))
    with pytest.raises(ValueError, match="route ids 3 appear more than once"):
        route_ids_in(write_routes(tmp_path, ["3", "4", "3"]))
    (tmp_path / "broken.xml").write_text("<routes><route")
    with pytest.raises(ValueError, match="not a readable routes XML"):
        route_ids_in(tmp_path / "broken.xml")


def test_finished_routes_leave_out_simulation_crashes_and_missing_repetitions() -> None:
    records = [{"route_id": "RouteScenario_1_rep0", "status": "Completed"},
               {"route_id": "RouteScenario_1_rep1", "status": "Failed - Agent crashed"},
               {"route_id": "RouteScenario_2_rep0", "status": "Failed - Simulation crashed"},
               {"route_id": "RouteScenario_3_rep0", "status": "Failed - Agent got blocked"}]
    data = {"_checkpoint": {"records": records, "progress": [4, 6]}}
    assert finished_routes(data, ["1", "2", "3"], repetitions=1) == {"1", "3"}
    assert finished_routes(data, ["1", "2", "3"], repetitions=2) == {"1"}
    assert finished_routes(None, ["1"], repetitions=1) == set()
    assert finished_routes({"_checkpoint": "odd"}, ["1"], repetitions=1) == set()
