"""What an autoloop command starts dies with it, even when the command is killed with SIGKILL."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from autoloop.lifeline import descendants
from autoloop.proc import running


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _gone(processes: dict[int, int], timeout_s: float) -> dict[int, int]:
    deadline = time.monotonic() + timeout_s
    alive = processes
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = {pid: ticks for pid, ticks in alive.items() if running(pid, ticks)}
    return alive


def test_a_killed_command_takes_prefects_temporary_server_with_it(tmp_path: Path) -> None:
    # (the cycle is a Prefect flow run: without an API of its own, it starts a temporary server)
    env = {key: value for key, value in os.environ.items() if key not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")}
    command = subprocess.Popen(
        [str(Path(sys.executable).with_name("autoloop")), "cycle", "--profile", "quick", "--home", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        assert command.stdout is not None
        port = None
        for line in command.stdout:
            found = re.search(r"Starting temporary server on http://127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found[1])
                break
        assert port is not None, "the command never started Prefect's temporary server"
        deadline = time.monotonic() + 60
        while not _answers(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        started = descendants(command.pid)
        assert _answers(port) and started
        time.sleep(1.0)  # (the watcher writes the descendants down a few times a second)
        os.kill(command.pid, signal.SIGKILL)
        command.wait(timeout=30)
        left = _gone(started, timeout_s=20)
        assert not left, f"left behind: {left}"
        assert not _answers(port)
    finally:
        if command.poll() is None:
            os.killpg(command.pid, signal.SIGKILL)
