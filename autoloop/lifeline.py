"""Whatever an ``autoloop`` command starts dies with it, even when the command is killed with SIGKILL.

A command starts processes it does not spawn itself: Prefect's temporary API server (a uvicorn subprocess), Ray
nodes, torchrun workers, CARLA servers. A process killed with SIGKILL cannot stop them, and they would go on
listening and holding files. :func:`hold` starts a small watcher process (in a session of its own, so a signal for
the command's process group does not reach it) that, a few times a second, writes down the command's descendants;
once the command is gone (its pid no longer the process that started, by start time), the watcher sends SIGTERM to
every descendant it wrote down that is still the same process, SIGKILL after a grace period, and exits. Linux only
(``/proc``), as the project is.

Run as ``python -m autoloop.lifeline PID START_TICKS``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from autoloop.proc import all_stats, running, start_ticks

#: How often the watcher looks at the command's descendants.
POLL_S = 0.2
#: How long descendants have to end after SIGTERM before they get SIGKILL.
GRACE_S = 5.0


def hold() -> subprocess.Popen[bytes] | None:
    """Start the watcher for this process (``None`` where there is no ``/proc``)."""
    ticks = start_ticks(os.getpid())
    if ticks is None:
        return None
    return subprocess.Popen([sys.executable, "-m", "autoloop.lifeline", str(os.getpid()), str(ticks)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


_held: list[subprocess.Popen[bytes] | None] = []


def hold_once() -> None:
    """:func:`hold`, the first time it is called in this process."""
    if not _held:
        _held.append(hold())


def descendants(pid: int) -> dict[int, int]:
    """The descendants of ``pid`` now, as pid -> start ticks."""
    parents: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for child, fields in all_stats().items():
        parents.setdefault(int(fields[3]), []).append(child)
        ticks[child] = int(fields[21])
    found: dict[int, int] = {}
    frontier = [pid]
    while frontier:
        for child in parents.get(frontier.pop(), []):
            if child not in found:
                found[child] = ticks[child]
                frontier.append(child)
    return found


def watch(pid: int, ticks: int) -> None:
    """Write down ``pid``'s descendants until it is gone, then stop those still alive."""
    seen: dict[int, int] = {}
    me = os.getpid()
    while start_ticks(pid) == ticks:
        seen.update(descendants(pid))
        seen.pop(me, None)
        time.sleep(POLL_S)
    alive = _alive(seen)
    _signal(alive, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = _alive(alive)
    _signal(alive, signal.SIGKILL)


def _alive(processes: dict[int, int]) -> dict[int, int]:
    return {pid: ticks for pid, ticks in processes.items() if running(pid, ticks)}


def _signal(processes: dict[int, int], sig: signal.Signals) -> None:
    for pid in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))
