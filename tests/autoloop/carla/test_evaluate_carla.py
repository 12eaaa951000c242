"""``autoloop evaluate --backend carla`` end to end but for CARLA itself: a stand-in CARLA package (its
``CarlaUE4.sh`` starts the stand-in server), a stand-in Leaderboard (its ``leaderboard_evaluator.py`` is the stand-in
evaluator, writing Leaderboard 2.x records), a real MLflow store (SQLite) and the real evaluate and promote stages,
the CLI and its Prefect flow: what is logged, the checkpoint, a crashed route, the gate against a champion evaluated on
the same route file, and inputs that cannot be used."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from autoloop import stages, tracking
from autoloop.carla.agent_config import AGENT_MODULE, AgentConfig
from autoloop.carla.evaluate import carla_setup
from autoloop.cli import app
from autoloop.config import AutoloopConfig, load_config
from autoloop.context import open_context
from autoloop.evaluation import SIMULATION_CRASHED
from autoloop.paths import Paths
from tests.autoloop.carla.standins import (
    EVALUATOR,
    SERVER,
    free_base_port,
    kill_all,
    processes_mentioning,
    server_command,
)
from tests.autoloop.test_registry import constant_policy, example_observation

#: Three Leaderboard 2.x routes in Town01; the third with a scenario.
ROUTES = """<?xml version="1.0"?>
<routes>
 <route id="1" town="Town01"><waypoints><position x="92.1" y="-105.7" z="0.0"/>
  <position x="92.1" y="-205.7" z="0.0"/></waypoints><scenarios/></route>
 <route id="2" town="Town01"><waypoints><position x="150.0" y="-2.0" z="0.0"/>
  <position x="250.0" y="-2.0" z="0.0"/></waypoints><scenarios/></route>
 <route id="3" town="Town01"><waypoints><position x="335.0" y="-130.0" z="0.0"/>
  <position x="335.0" y="-250.0" z="0.0"/></waypoints><scenarios>
  <scenario name="SignalizedJunctionLeftTurn_1" type="SignalizedJunctionLeftTurn">
   <trigger_point x="335.0" y="-180.0" z="0.0" yaw="90.0"/></scenario></scenarios></route>
</routes>
"""
COLLISION = "Agent collided against object with type=vehicle.tesla.model3 and id=42 at (x=200.0, y=-2.0, z=0.1)"
BLOCKED = "Agent got blocked at (x=335.0, y=-190.0, z=0.1)"
#: The outcomes of the stand-in evaluator per driver: the first candidate completes every route, hitting a vehicle
#: on route 2 (DS 100 x 0.6); the second hits nothing but is blocked after 40 % of route 3.
FIRST = {"2": {"infractions": {"collisions_vehicle": [COLLISION]}}}
SECOND = {"3": {"status": "Failed - Agent got blocked", "score_route": 40.0,
                "infractions": {"vehicle_blocked": [BLOCKED]}}}
#: A lenient gate: what is tested is the comparison, not the thresholds.
LENIENT = {"gate": {"min_driving_score": 0.0, "min_route_completion": 0.0, "max_collisions_per_km": 1e6,
                    "champion_margin": 100.0, "type_tolerance": 100.0},
           "evaluate": {"bootstrap_resamples": 200, "report_clips": 0}}
CARLA_VARIABLES = ("CARLA_ROOT", "CARLA_HOST", "CARLA_PORT", "LEADERBOARD_ROOT", "SCENARIO_RUNNER_ROOT",
                   "MLFLOW_TRACKING_URI", "STANDIN_FAULTS")


def autoloop(arguments: list[str]) -> tuple[int, str]:
    """``autoloop ARGUMENTS`` in a process of its own (a wide terminal: lines unbroken): exit code and stdout."""
    command = [str(Path(sys.executable).with_name("autoloop")), *arguments]
    done = subprocess.run(command, env={**os.environ, "COLUMNS": "250"}, capture_output=True, text=True,
                          timeout=300)
    return done.returncode, done.stdout + (done.stderr[-3000:] if done.returncode else "")


@dataclass(frozen=True)
class Install:
    """A stand-in CARLA package and Leaderboard, a route file, and what the stand-in evaluator reads and writes."""

    carla_root: Path
    leaderboard_root: Path
    scenario_runner_root: Path
    routes: Path
    calls: Path

    def calls_made(self) -> list[dict[str, object]]:
        """Each evaluator run: its arguments and environment."""
        return [json.loads(line) for line in self.calls.read_text().splitlines()] if self.calls.exists() else []


def install(folder: Path, outcomes: dict[str, dict[str, object]], monkeypatch: pytest.MonkeyPatch) -> Install:
    """The stand-ins under ``folder``, found through ``$CARLA_ROOT``, ``$LEADERBOARD_ROOT`` and
    ``$SCENARIO_RUNNER_ROOT``; ``outcomes`` as ``STANDIN_OUTCOMES``."""
    carla_root = folder / "CARLA_0.9.15"
    (carla_root / "PythonAPI" / "carla").mkdir(parents=True)
    (carla_root / "VERSION").write_text("0.9.15\n")
    launcher = carla_root / "CarlaUE4.sh"  # as CARLA's: -carla-rpc-port=P; starts the stand-in server on P
    launcher.write_text(f"""#!/bin/sh
for argument in "$@"; do case $argument in -carla-rpc-port=*) port=${{argument#*=}};; esac; done
exec {sys.executable} {SERVER} --port "$port" --pid-dir {folder / "pids"}
""")
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    leaderboard_root = folder / "leaderboard"
    (leaderboard_root / "leaderboard").mkdir(parents=True)
    (leaderboard_root / "leaderboard" / "leaderboard_evaluator.py").symlink_to(EVALUATOR)
    scenario_runner_root = folder / "scenario_runner"
    (scenario_runner_root / "srunner").mkdir(parents=True)
    routes = folder / "town01_devtest.xml"
    routes.write_text(ROUTES)
    (folder / "outcomes.json").write_text(json.dumps(outcomes))
    for name, value in {"CARLA_ROOT": carla_root, "LEADERBOARD_ROOT": leaderboard_root,
                        "SCENARIO_RUNNER_ROOT": scenario_runner_root, "STANDIN_OUTCOMES": folder / "outcomes.json",
                        "STANDIN_CALLS": folder / "calls.jsonl", "STANDIN_PIDS": folder / "pids",
                        "STANDIN_ROUTE_S": "0.01"}.items():
        monkeypatch.setenv(name, str(value))
    return Install(carla_root, leaderboard_root, scenario_runner_root, routes, folder / "calls.jsonl")


def carla_config(routes: Path, base_port: int) -> AutoloopConfig:
    """The quick profile evaluating ``routes`` in CARLA, servers started from ``$CARLA_ROOT`` at ``base_port``."""
    return load_config(profile="quick", overrides={**LENIENT, "evaluate": {
        **LENIENT["evaluate"], "backend": "carla",
        "carla": {"routes": str(routes), "base_port": base_port, "hang_timeout_s": 6.0}}})


@dataclass(frozen=True)
class Loop:
    """Two candidates evaluated and promoted in turn in CARLA: the first becomes champion, the second is compared
    with it."""

    home: Path
    install: Install
    models: list[tracking.LoggedPolicy]
    evaluations: list[stages.EvaluateOutcome]
    promotions: list[stages.PromotionResult]
    calls_before_second_promotion: int
    client: MlflowClient


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    folder = tmp_path_factory.mktemp("carla-loop")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in CARLA_VARIABLES:  # (set first, so that leaving the context removes what the loop sets)
            monkeypatch.setenv(name, "")
            monkeypatch.delenv(name)
        home = folder / "home"
        config = carla_config(folder / "town01_devtest.xml", free_base_port())
        context = open_context(config, paths=Paths(home))
        models = []
        for n, accel in enumerate((0.6, 0.8)):
            with tracking.stage_run("train", experiment_id=context.experiment_id, parent_run_id=None):
                models.append(tracking.log_policy(constant_policy(0.0, accel, config), home / f"policy-{n}.pt",
                                                  example_observation(config)))
        found = install(folder, {models[0].model_uri: FIRST, models[1].model_uri: SECOND}, monkeypatch)
        try:
            first = stages.evaluate(context, models[0].model_uri)
            promoted = stages.promote(context, models[0], first)
            second = stages.evaluate(context, models[1].model_uri)
            calls = len(found.calls_made())
            compared = stages.promote(context, models[1], second)
        finally:
            left = processes_mentioning(str(folder))
            kill_all(left)
        assert not left, f"processes left behind: {left}"
        yield Loop(home, found, models, [first, second], [promoted, compared], calls,
                   MlflowClient(tracking_uri=f"sqlite:///{home}/mlflow.db"))


def test_an_evaluation_in_carla_logs_what_an_embedded_one_does_and_what_it_ran_on(loop: Loop) -> None:
    outcome = loop.evaluations[0]
    run = loop.client.get_run(outcome.run_id)
    sha256 = hashlib.sha256(loop.install.routes.read_bytes()).hexdigest()
    assert run.info.status == "FINISHED"
    assert {key: run.data.tags[key] for key in ("autoloop.stage", "autoloop.backend", "autoloop.carla_version",
                                                "autoloop.leaderboard_version", "autoloop.routes_file",
                                                "autoloop.routes_sha256", "autoloop.suite")} == {
        "autoloop.stage": "evaluate", "autoloop.backend": "carla", "autoloop.carla_version": "0.9.15",
        "autoloop.leaderboard_version": "unknown", "autoloop.routes_file": "town01_devtest.xml",
        "autoloop.routes_sha256": sha256, "autoloop.suite": "town01_devtest"}
    assert run.data.tags["autoloop.suite_hash"] == outcome.result.suite_hash
    assert run.data.tags["autoloop.report"].endswith("report/report.html")
    assert run.data.params["backend"] == "carla" and run.data.params["carla.track"] == "SENSORS"
    # route 2: completed with one vehicle collision (penalty 0.6), routes 1 and 3 perfect
    assert run.data.metrics["driving_score"] == pytest.approx((100 + 60 + 100) / 3)
    assert run.data.metrics["routes"] == 3 and run.data.metrics["failed_runs"] == 0
    assert run.data.metrics["route_completion"] == pytest.approx(100.0)
    artifacts = {item.path for item in loop.client.list_artifacts(outcome.run_id)}
    assert {"evaluation.json", "report"} <= artifacts
    assert "report/report.html" in {item.path for item in loop.client.list_artifacts(outcome.run_id, "report")}
    result = outcome.result
    assert [route.scenario_type for route in result.routes] == ["Route", "Route", "SignalizedJunctionLeftTurn"]
    assert [route.status for route in result.routes] == ["Completed"] * 3
    assert result.routes[1].infraction_counts == {"collision_vehicle": 1}


def test_the_run_folder_holds_the_agent_config_and_the_checkpoint(loop: Loop) -> None:
    result = loop.evaluations[0].result
    checkpoint = Path(result.checkpoint)
    folder = checkpoint.parent
    assert folder.parent == loop.home / "evaluations" / "carla" and folder.name.startswith("town01_devtest-")
    assert checkpoint.name == "evaluation-lb2.jsonl"
    lines = [json.loads(line) for line in checkpoint.read_text().splitlines()]
    assert lines[0]["identity"] == loop.models[0].model_id and lines[0]["suite_hash"] == result.suite_hash
    assert [line["route"]["driving_score"] for line in lines[1:]] == pytest.approx([100.0, 60.0, 100.0])
    agent = AgentConfig.read(str(folder / "agent.json"))
    assert agent.driver == loop.models[0].model_uri  # pinned: the logged model, not an alias
    assert agent.home == loop.home and agent.config == folder / "config.yaml"
    assert load_config(folder / "config.yaml").evaluate.backend == "carla"
    assert agent.tags["purpose"] == "eval" and agent.tags["suite_hash"] == result.suite_hash
    assert agent.tags["model_identity"] == loop.models[0].model_id
    first_call = loop.install.calls_made()[0]
    arguments, environment = first_call["argv"], first_call["env"]
    assert isinstance(arguments, list) and isinstance(environment, dict)
    assert f"--agent={AGENT_MODULE}" in arguments and f"--agent-config={folder / 'agent.json'}" in arguments
    assert f"--routes={loop.install.routes}" in arguments and "--track=SENSORS" in arguments
    assert environment["MLFLOW_TRACKING_URI"] == f"sqlite:///{loop.home / 'mlflow.db'}"
    assert environment["AUTOLOOP_HOME"] == str(loop.home) and environment["CUDA_VISIBLE_DEVICES"] == "0"
    assert str(environment["PYTHONPATH"]).split(os.pathsep)[:3] == [
        str(loop.install.carla_root / "PythonAPI" / "carla"), str(loop.install.scenario_runner_root),
        str(loop.install.leaderboard_root)]


def test_the_gate_compares_with_the_champion_evaluated_on_the_same_route_file(loop: Loop) -> None:
    first, second = loop.promotions
    assert first.promoted and first.champion is None
    assert second.champion is not None and second.comparison is not None
    assert second.champion.suite_hash == second.candidate.suite_hash
    # the champion's evaluation was read again from its finished run folder: no evaluator ran for it
    assert len(loop.install.calls_made()) == loop.calls_before_second_promotion
    # route by route, candidate minus champion: 100 - 100, 100 - 60, 40 - 100 (blocked at 40 %, no other penalty)
    assert [route.difference for route in second.comparison.routes] == pytest.approx([0.0, 40.0, -60.0])
    metrics = loop.client.get_run(second.run_id).data.metrics
    assert metrics["champion_driving_score"] == pytest.approx((100 + 60 + 100) / 3)
    assert metrics["paired_difference"] == pytest.approx(-20.0 / 3)
    assert second.promoted and second.registered is not None


def test_a_crashed_route_counts_as_a_zero_scoring_simulation_crash_through_the_cli(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``autoloop evaluate --backend carla`` on a server already running (``--carla-host``): route 2 crashes the
    simulation twice, is given up, and scores zero; the others are driven."""
    for name in CARLA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    found = install(tmp_path, {}, monkeypatch)
    monkeypatch.delenv("CARLA_ROOT")  # a running server, and the carla client on PYTHONPATH
    (tmp_path / "faults.json").write_text(json.dumps({"2": ["exit", "exit"]}))
    monkeypatch.setenv("STANDIN_FAULTS", str(tmp_path / "faults.json"))
    port = free_base_port()
    server = subprocess.Popen(server_command(port, tmp_path / "pids"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        code, output = autoloop(["evaluate", "--backend", "carla", "--model", "expert", "--profile", "quick",
                                 "--home", str(tmp_path / "home"), "--routes", str(found.routes),
                                 "--carla-host", f"127.0.0.1:{port}", "--carla-hang-timeout-s", "6"])
    finally:
        server.terminate()
        server.wait()
    assert code == 0, output
    assert "expert on town01_devtest" in output
    assert f"route 1 (Route): {SIMULATION_CRASHED} given up: evaluator exited with code 255 (2 attempts)" in output
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}")
    [run] = client.search_runs([client.get_experiment_by_name("autoloop").experiment_id])
    assert run.data.tags["autoloop.backend"] == "carla" and run.data.tags["autoloop.carla_version"] == "unknown"
    assert run.data.metrics["failed_runs"] == 1 and run.data.metrics["routes"] == 3
    assert run.data.metrics["driving_score"] == pytest.approx(200.0 / 3)
    evaluation = json.loads((Path(run.info.artifact_uri.removeprefix("file://")) / "evaluation.json").read_text())
    crashed = evaluation["routes"][1]
    assert (crashed["status"], crashed["driving_score"], crashed["route_completion"]) == (SIMULATION_CRASHED, 0, 0)
    assert [call["argv"][-1] for call in found.calls_made()] == [  # route 2 tried twice, then 3 under a new chunk
        f"--debug-checkpoint={Path(evaluation['checkpoint']).parent / 'chunk-000.live.txt'}", "--resume=1",
        f"--debug-checkpoint={Path(evaluation['checkpoint']).parent / 'chunk-000.1.live.txt'}"]


@pytest.mark.parametrize(("case", "message"), [
    ("missing routes", "error: evaluate.carla.routes {tmp}/missing.xml: no such file"),
    ("no evaluator", "error: LEADERBOARD_ROOT {tmp}/empty: no leaderboard/leaderboard_evaluator.py there; point it "
                     "at a checkout of carla-simulator/leaderboard"),
    ("no server", "error: evaluate.carla: no CARLA server: set carla_root (or $CARLA_ROOT) to start servers from a "
                  "CARLA package, or hosts (or $CARLA_HOST) to use running ones"),
    ("unknown driver", "error: --model: driver '{tmp}/missing.pt' is neither 'expert', a models:/ URI nor a "
                       "checkpoint file"),
])
def test_inputs_that_cannot_be_used_fail_in_one_line_before_any_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    case: str, message: str) -> None:
    for name in CARLA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    found = install(tmp_path, {}, monkeypatch)
    arguments = ["evaluate", "--backend", "carla", "--profile", "quick", "--home", str(tmp_path / "home"),
                 "--routes", str(found.routes), "--model", "expert"]
    if case == "missing routes":
        arguments[arguments.index("--routes") + 1] = str(tmp_path / "missing.xml")
    elif case == "no evaluator":
        (tmp_path / "empty").mkdir()
        monkeypatch.setenv("LEADERBOARD_ROOT", str(tmp_path / "empty"))
    elif case == "no server":
        monkeypatch.delenv("CARLA_ROOT")
    else:
        arguments[-1] = str(tmp_path / "missing.pt")
    if case == "unknown driver":  # found before the flow starts: an input error (exit 2)
        code, output = autoloop(arguments)
    else:
        result = CliRunner().invoke(app, arguments)
        code, output = result.exit_code, result.stdout
    assert code == (2 if case == "unknown driver" else 1), output
    assert message.format(tmp=tmp_path) + "\n" in output
    assert not (tmp_path / "home" / "evaluations").exists()
    database = tmp_path / "home" / "mlflow.db"
    if database.exists():  # the flow ran (and stopped at its first check): an experiment, but no run
        client = MlflowClient(tracking_uri=f"sqlite:///{database}")
        assert client.search_runs([experiment.experiment_id for experiment in client.search_experiments()]) == []


def test_servers_come_from_the_settings_else_from_the_environment(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CARLA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    found = install(tmp_path, {}, monkeypatch)
    settings = carla_config(found.routes, 2000).evaluate
    started = carla_setup(settings)
    assert (started.hosts, started.carla_root, started.server_count) == ((), found.carla_root, 1)
    assert [server.ports.rpc_port for server in started.servers(tmp_path / "logs")] == [2000]
    monkeypatch.setenv("CARLA_HOST", "carla-0")
    monkeypatch.setenv("CARLA_PORT", "3000")
    assert carla_setup(settings).hosts == ("carla-0:3000",)  # $CARLA_HOST wins over $CARLA_ROOT
    two = settings.model_copy(update={"carla": settings.carla.model_copy(update={"gpus": (0, 1),
                                                                                 "carla_root": found.carla_root})})
    assert carla_setup(two).hosts == () and carla_setup(two).server_count == 2  # a carla_root set wins
    given = settings.model_copy(update={"carla": settings.carla.model_copy(update={"hosts": ("a:2000", "b:2000")})})
    assert carla_setup(given).hosts == ("a:2000", "b:2000")
    assert carla_setup(settings.model_copy(update={"scorer": "lb21"})).scorer == "lb21"
    bench2drive = settings.carla.model_copy(update={"scorer": "bench2drive"})
    assert carla_setup(settings.model_copy(update={"carla": bench2drive})).scorer == "bench2drive"
