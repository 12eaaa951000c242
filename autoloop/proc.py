"""Processes as Linux's ``/proc`` shows them: who is alive, since when, under which parent and group.

A pid alone does not name a process for long: the kernel reuses pids. A process is named by its pid and its start
time (clock ticks after boot, ``/proc/<pid>/stat`` field 22), which no later process with that pid shares.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path


def stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` split into its fields, numbered from 1 as in ``proc(5)`` at index ``n - 1`` (the
    command name, field 2, may hold spaces and parentheses); ``None`` when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, tail = text.rpartition(")")
    return [head.split(" (", 1)[0], head.split(" (", 1)[-1], *tail.split()]


def start_ticks(pid: int) -> int | None:
    """When a process started (clock ticks after boot), or ``None`` when there is no such process."""
    fields = stat_fields(pid)
    return None if fields is None else int(fields[21])


def running(pid: int, ticks: int | None = None) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has), and, with ``ticks``, is still the one
    that started then."""
    fields = stat_fields(pid)
    return fields is not None and fields[2] != "Z" and (ticks is None or int(fields[21]) == ticks)


def started_at_s(pid: int) -> float | None:
    """When a process started, as a Unix time in seconds (``None``: no such process)."""
    ticks = start_ticks(pid)
    if ticks is None:
        return None
    uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - uptime_s + ticks / os.sysconf("SC_CLK_TCK")


def identity(pid: int | None = None) -> str:
    """A process named across machines and pid reuse: ``<host>/<pid>/<start ticks>`` (this process by default)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}/{pid}/{start_ticks(pid)}"


def gone(identity_: str) -> bool:
    """Whether the process an :func:`identity` names ran on this host and is gone (``False`` for another host's,
    or a malformed name: not ours to judge)."""
    host, _, rest = identity_.partition("/")
    pid, _, ticks = rest.partition("/")
    if host != socket.gethostname() or not pid.isdigit() or not ticks.isdigit():
        return False
    return not running(int(pid), int(ticks))


def all_stats() -> dict[int, list[str]]:
    """Every process's ``stat`` fields, by pid."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            if fields is not None:
                found[int(entry.name)] = fields
    return found
