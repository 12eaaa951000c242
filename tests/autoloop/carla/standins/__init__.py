"""Stand-in processes for the CARLA process tests (a server, the Leaderboard's evaluator, the runner itself) and what
the tests need around them: free ports, a routes file, and a look for processes left behind."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import sys
from pathlib import Path

STANDINS = Path(__file__).resolve().parent
SERVER = STANDINS / "server.py"
EVALUATOR = STANDINS / "evaluator.py"
RUNNER = STANDINS / "runner.py"
EVALUATOR_PREFIX = [sys.executable, str(EVALUATOR)]


def server_command(port: int, pids: Path, *options: str) -> list[str]:
    """The server stand-in on ``port``, writing its pid to ``pids`` (a path under the test's folder: the marker
    :func:`processes_mentioning` finds)."""
    return [sys.executable, str(SERVER), "--port", str(port), "--pid-dir", str(pids), *options]


def free_base_port(servers: int = 1, *, spacing: int = 10) -> int:
    """A base port whose blocks (4 ports per server, ``spacing`` apart) are free now."""
    for _ in range(200):
        base = random.randrange(20_000, 60_000, 10)
        if all(_free(base + index * spacing + offset) for index in range(servers) for offset in range(4)):
            return base
    raise RuntimeError("no free block of ports found")


def write_routes(folder: Path, route_ids: list[str]) -> Path:
    """A Leaderboard routes file with ``route_ids`` (one waypoint each, no scenarios)."""
    routes = "".join(f'<route id="{route_id}" town="Town01"><waypoints><position x="0" y="0" z="0"/></waypoints>'
                     "<scenarios/></route>" for route_id in route_ids)
    path = folder / "routes.xml"
    path.write_text(f'<?xml version="1.0"?><routes>{routes}</routes>')
    return path


def processes_mentioning(marker: str) -> list[int]:
    """Live processes (zombies have no command line) with ``marker`` in their command line, this one excepted."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
