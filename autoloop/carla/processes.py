"""Child processes in groups of their own: started, stopped with everything they spawned, and found again after
the process that started them was killed.

A CARLA server is a shell script (``CarlaUE4.sh``) that starts the engine binary as its child, and the Leaderboard's
evaluator starts threads and sometimes processes of its own (an agent may), so killing the process we started is
not enough: each child starts a new session (``start_new_session=True``, so its process group id is its pid) and is
stopped with ``killpg``: SIGTERM to the whole group, SIGKILL to whatever is left after a grace period. This is what
Bench2Drive's evaluator does for the server it starts (``subprocess.Popen(..., preexec_fn=os.setsid)`` then
``os.killpg(pid, SIGKILL)``, Thinklab-SJTU/Bench2Drive ``leaderboard/leaderboard/leaderboard_evaluator.py``), without
its fallback of killing by a pattern over every user's processes (``tools/clean_carla.sh``: ``killall -9 -r
CarlaUE4-Linux``), which would kill other runs' servers too.

A process killed with SIGKILL cannot stop its children; :class:`GroupRecord` is what a runner writes down about each
group it starts so that its next start can stop the groups left behind (:func:`stop_recorded_group`). Linux only
(``/proc``), like CARLA's servers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from autoloop.proc import all_stats, start_ticks

log = logging.getLogger(__name__)

#: How long a group has to end after SIGTERM before it gets SIGKILL.
STOP_GRACE_S = 10.0


@dataclass(frozen=True)
class GroupRecord:
    """What identifies a process group we started, across a restart of the process that started it.

    :param pgid: the group id (the pid of its first process).
    :param start_ticks: when that first process started (clock ticks after boot, ``/proc/<pid>/stat`` field 22):
        a pid reused by an unrelated process has another start time, and that process is left alone.
    :param command: the command line, for the log.
    """

    pgid: int
    start_ticks: int
    command: str


class ProcessGroup:
    """A command started in a new session (its own process group), stdout and stderr appended to ``log_path``.

    :param command: the program and its arguments.
    :param log_path: where its output goes (appended to: a restarted server keeps one log).
    :param env: its environment (default: this process's).
    """

    def __init__(self, command: Sequence[str], *, log_path: Path, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.command = [str(part) for part in command]
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as output:
            self._log_offset = output.tell()
            self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=output,
                                            stderr=subprocess.STDOUT, env=None if env is None else dict(env),
                                            cwd=cwd, start_new_session=True)
        self.record = GroupRecord(pgid=self.process.pid, start_ticks=start_ticks(self.process.pid) or 0,
                                  command=" ".join(self.command))

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        """The exit code of the first process (negative: the signal that ended it), or ``None`` while it runs."""
        return self.process.poll()

    def stop(self, *, grace_s: float = STOP_GRACE_S) -> int | None:
        """Stop the whole group, even when its first process has already exited (its children may not have):
        SIGTERM, then SIGKILL after ``grace_s``; reap the first process and return its exit code."""
        _signal_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and self._group_alive():
            time.sleep(0.02)
        if self._group_alive():
            log.warning("process group %d (%s) still there %.1f s after SIGTERM: killing it", self.pid,
                        self.record.command, grace_s)
            _signal_group(self.pid, signal.SIGKILL)
        try:
            return self.process.wait(timeout=max(grace_s, 5.0))
        except subprocess.TimeoutExpired:  # pragma: no cover - a process in uninterruptible sleep
            log.error("process %d did not end after SIGKILL", self.pid)
            return None

    def log_tail(self, chars: int = 2000) -> str:
        """The last ``chars`` characters this run wrote to its log (earlier runs' lines in the same log left out)."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(max(self._log_offset, handle.seek(0, os.SEEK_END) - chars))
                return handle.read().decode(errors="replace").strip()
        except OSError:
            return ""

    def _group_alive(self) -> bool:
        """Whether any process of the group still runs (reaping the first one when it has ended, so that it does
        not count as a zombie member)."""
        self.process.poll()
        return bool(_members(self.pid))


def stop_recorded_group(record: GroupRecord, *, grace_s: float = STOP_GRACE_S) -> bool:
    """Stop a group started by an earlier process (one that was killed before it could stop it), if it is still
    there and still ours. Returns whether there was anything to stop."""
    leader_ticks = start_ticks(record.pgid)
    if leader_ticks is not None and leader_ticks != record.start_ticks:
        return False  # the pid now belongs to another process: not ours
    if not _members(record.pgid):
        return False
    log.warning("stopping process group %d left behind by an earlier run: %s", record.pgid, record.command)
    for signum, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        _signal_group(record.pgid, signum)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and _members(record.pgid):
            time.sleep(0.02)
        if not _members(record.pgid):
            break
    return True


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _members(pgid: int) -> list[int]:
    """The live (not zombie) processes of group ``pgid``, from ``/proc``."""
    return [pid for pid, fields in all_stats().items() if fields[2] != "Z" and int(fields[4]) == pgid]
