"""The Leaderboard runner with stand-in processes (a server that binds a server's ports, an evaluator that takes the
real evaluator's arguments and writes its checkpoint format; neither speaks CARLA): chunks, crashes, hangs, give-ups,
two servers, and the runner itself killed or stopped."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from autoloop.carla import (
    CrashedRoute,
    EvaluatorSettings,
    LeaderboardRunResult,
    LocalCarlaServer,
    ServerError,
    WatchSettings,
    run_leaderboard,
    server_ports,
)
from autoloop.carla.evaluator import finished_routes, read_checkpoint
from autoloop.evaluation.results import SIMULATION_CRASHED
from tests.autoloop.carla.standins import (
    EVALUATOR_PREFIX,
    RUNNER,
    free_base_port,
    server_command,
    write_routes,
)

ROOT = Path(__file__).resolve().parents[3]


def _run(tmp_path: Path, route_ids: list[str], *, servers: int = 1, chunk_routes: int = 3,
         faults: dict[str, list[str]] | None = None, hang_timeout_s: float = 20.0, route_s: float = 0.02,
         server_options: tuple[str, ...] = (), server_ready_timeout_s: float = 10.0) -> LeaderboardRunResult:
    routes = write_routes(tmp_path, route_ids)
    agent = tmp_path / "agent.py"
    agent.write_text("")
    base = free_base_port(servers)
    handles = [LocalCarlaServer(server_command(ports.rpc_port, tmp_path / "pids", *server_options), ports=ports,
                                log_path=tmp_path / "run" / "logs" / f"server-{index}.log", stop_grace_s=2.0)
               for index in range(servers) if (ports := server_ports(index, base_port=base))]
    environment = {**os.environ, **_standin_environment(tmp_path, faults, route_s)}
    return run_leaderboard(EvaluatorSettings(routes=routes, agent=agent), servers=handles,
                           output_dir=tmp_path / "run", evaluator_prefix=EVALUATOR_PREFIX, environment=environment,
                           chunk_routes=chunk_routes,
                           watch=WatchSettings(hang_timeout_s=hang_timeout_s, poll_s=0.05, stop_grace_s=2.0,
                                               server_ready_timeout_s=server_ready_timeout_s,
                                               server_start_attempts=2))


def _standin_environment(tmp_path: Path, faults: dict[str, list[str]] | None, route_s: float) -> dict[str, str]:
    environment = {"STANDIN_DRIVEN": str(tmp_path / "driven.txt"), "STANDIN_PIDS": str(tmp_path / "pids"),
                   "STANDIN_ROUTE_S": str(route_s)}
    if faults is not None:
        (tmp_path / "faults.json").write_text(json.dumps(faults))
        environment["STANDIN_FAULTS"] = str(tmp_path / "faults.json")
    return environment


def _driven(tmp_path: Path) -> list[tuple[str, int]]:
    """The routes the evaluator stand-ins drove to their end, with the server port each used, in order."""
    path = tmp_path / "driven.txt"
    lines = path.read_text().split() if path.exists() else []
    return [(route_id, int(port)) for route_id, port in zip(lines[::2], lines[1::2], strict=True)]


def _finished(checkpoints: tuple[Path, ...] | list[Path], route_ids: list[str]) -> set[str]:
    return set().union(*(finished_routes(read_checkpoint(path), route_ids, repetitions=1) for path in checkpoints))


def _state(tmp_path: Path) -> dict[str, object]:
    return dict(json.loads((tmp_path / "run" / "runner-state.json").read_text()))


def test_routes_run_in_chunks_each_once(tmp_path: Path) -> None:
    ids = ["1", "2", "3", "4", "5", "6", "7"]
    result = _run(tmp_path, ids, chunk_routes=3)
    assert [path.name for path in result.checkpoints] == ["chunk-000.json", "chunk-001.json", "chunk-002.json"]
    assert _finished(result.checkpoints, ids) == set(ids)
    assert [route_id for route_id, _ in _driven(tmp_path)] == ids
    assert result.crashed == ()
    assert _state(tmp_path)["groups"] == {}


def test_a_server_crash_mid_chunk_restarts_it_and_resumes_the_chunk(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="autoloop.carla")
    ids = ["1", "2", "3", "4", "5", "6"]
    result = _run(tmp_path, ids, faults={"5": ["kill-server"]})  # the server dies under route 5, the evaluator hangs
    assert result.crashed == ()
    assert _finished(result.checkpoints, ids) == set(ids)
    assert sorted(route_id for route_id, _ in _driven(tmp_path)) == ids  # 4 was not driven again
    assert "route 5 failed (attempt 1 of 2): server exited with code -9" in caplog.text
    assert "chunk-001: evaluator on server port" in caplog.text and "(resuming)" in caplog.text
    server_log = (tmp_path / "run" / "logs" / "server-0.log").read_text()
    assert server_log.count("stand-in server starting") == 2  # restarted once
    assert _state(tmp_path)["attempts"] == {"5": 1}


def test_a_route_that_crashes_twice_is_given_up_and_the_next_routes_run(tmp_path: Path) -> None:
    ids = ["1", "2", "3", "4", "5"]
    result = _run(tmp_path, ids, chunk_routes=5, faults={"2": ["exit", "exit"]})
    assert result.crashed == (CrashedRoute("2", "evaluator exited with code 255", 2, SIMULATION_CRASHED),)
    assert [path.name for path in result.checkpoints] == ["chunk-000.json", "chunk-000.1.json"]
    assert _finished(result.checkpoints[:1], ids) == {"1"}
    assert _finished(result.checkpoints[1:], ids) == {"3", "4", "5"}
    assert [route_id for route_id, _ in _driven(tmp_path)] == ["1", "3", "4", "5"]


def test_a_hang_is_killed_after_hang_timeout_and_handled_like_a_crash(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="autoloop.carla")
    ids = ["1", "2", "3", "4"]
    result = _run(tmp_path, ids, chunk_routes=4, faults={"2": ["hang"], "4": ["hang", "hang"]}, hang_timeout_s=0.8)
    assert "route 2 failed (attempt 1 of 2): no progress for 0.8 s (hung)" in caplog.text
    assert result.crashed == (CrashedRoute("4", "no progress for 0.8 s (hung)", 2),)
    assert _finished(result.checkpoints, ids) == {"1", "2", "3"}
    assert [route_id for route_id, _ in _driven(tmp_path)] == ["1", "2", "3"]


def test_two_servers_share_the_chunks_on_spaced_ports(tmp_path: Path) -> None:
    ids = [str(n) for n in range(1, 9)]
    result = _run(tmp_path, ids, servers=2, chunk_routes=2, route_s=0.2)
    driven = _driven(tmp_path)
    assert sorted(route_id for route_id, _ in driven) == sorted(ids)
    ports = {port for _, port in driven}
    assert len(ports) == 2 and max(ports) - min(ports) == 10  # each stand-in binds P..P+2, its evaluator P+3
    assert _finished(result.checkpoints, ids) == set(ids) and result.crashed == ()


def test_a_server_that_never_answers_fails_the_run_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match=r"accepted no connection within 0.5 s"):
        _run(tmp_path, ["1", "2"], server_options=("--never-listen",), server_ready_timeout_s=0.5)
    assert _state(tmp_path)["groups"] == {}


def test_bad_route_ids_and_another_runs_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"route_ids 9: not in routes file"):
        run_leaderboard(EvaluatorSettings(routes=write_routes(tmp_path, ["1"]), agent=tmp_path / "routes.xml"),
                        servers=[LocalCarlaServer(["true"], ports=server_ports(0), log_path=tmp_path / "s.log")],
                        output_dir=tmp_path / "run", evaluator_prefix=EVALUATOR_PREFIX, route_ids=["9"])
    _run(tmp_path, ["1", "2"])
    with pytest.raises(ValueError, match=r"runner state .* belongs to another run \(differs in route_ids\)"):
        _run(tmp_path, ["1", "2", "3"])


def _runner(tmp_path: Path, ids: list[str], *, route_s: float,
            faults: dict[str, list[str]] | None = None) -> subprocess.Popen[bytes]:
    """The runner in a process of its own (marked by the test's folder in its command line)."""
    base = free_base_port()
    spec = {"routes": str(write_routes(tmp_path, ids)), "agent": str(tmp_path / "routes.xml"),
            "output_dir": str(tmp_path / "run"), "server_commands": [server_command(base, tmp_path / "pids")],
            "rpc_ports": [base], "evaluator_prefix": EVALUATOR_PREFIX, "chunk_routes": 3, "hang_timeout_s": 20.0,
            "poll_s": 0.05, "stop_grace_s": 2.0}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    environment = {**os.environ, **_standin_environment(tmp_path, faults, route_s),
                   "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with (tmp_path / "runner.log").open("ab") as output:
        return subprocess.Popen([sys.executable, str(RUNNER), str(tmp_path / "spec.json")], env=environment,
                                stdout=output, stderr=subprocess.STDOUT, cwd=ROOT)


def _wait_for(condition: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_killed_runner_resumes_without_driving_finished_routes_again(tmp_path: Path) -> None:
    ids = ["1", "2", "3", "4", "5", "6"]
    first = _runner(tmp_path, ids, route_s=0.02, faults={"3": ["hang"]})  # its evaluator stays on route 3
    _wait_for(lambda: len(_driven(tmp_path)) == 2)
    first.kill()  # SIGKILL: no chance to stop its server and evaluator
    assert first.wait(timeout=10) == -signal.SIGKILL
    again = _runner(tmp_path, ids, route_s=0.02, faults={"3": ["hang"]})  # route 3 is reached a second time
    assert again.wait(timeout=60) == 0, (tmp_path / "runner.log").read_text()[-3000:]
    driven = [route_id for route_id, _ in _driven(tmp_path)]
    assert Counter(driven).most_common(1)[0][1] == 1, driven  # no route driven twice
    checkpoints = json.loads((tmp_path / "runner.log").read_text().strip().splitlines()[-1])["checkpoints"]
    assert _finished([Path(path) for path in checkpoints], ids) == set(ids)
    assert "left behind by an earlier run" in (tmp_path / "runner.log").read_text()
    assert _state(tmp_path)["attempts"] == {}  # the runner's own death is no failure of route 3
    assert "routes 1,2,3 (resuming)" in (tmp_path / "runner.log").read_text()


def test_sigterm_stops_every_child_and_the_runner(tmp_path: Path) -> None:
    runner = _runner(tmp_path, ["1", "2", "3", "4"], route_s=5.0)
    _wait_for(lambda: (tmp_path / "run" / "logs" / "chunk-000.log").exists())
    time.sleep(0.3)
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=30) == -signal.SIGTERM  # stopped its children, then ended by the signal as usual
    assert "SIGTERM received" in (tmp_path / "runner.log").read_text()
    assert _state(tmp_path)["groups"] == {}
