"""The Leaderboard runner's own small state file, so that a runner killed at any moment starts again where it stopped.

One JSON file (``runner-state.json`` in the run's folder), rewritten atomically (temporary file, fsync, rename, fsync
of the folder) after every change: the plan it belongs to, the chunks of routes (which ran, which are finished), the
failed attempts per route, the routes given up as ``Failed - Simulation crashed`` and why, and the process groups
of the servers and evaluators running now (so that a runner started after a SIGKILL stops those first). Which routes of
a chunk are finished is not kept here: the evaluator's checkpoint of the chunk says it.

A second runner on the same folder is refused while the first holds its lock (``fcntl.flock``, released by the
kernel when a runner dies).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from autoloop.carla.processes import GroupRecord
from autoloop.evaluation.results import SIMULATION_CRASHED

STATE_FORMAT = "autoloop-leaderboard-runner-1"
STATE_FILE = "runner-state.json"


@dataclass
class Chunk:
    """Routes that one evaluator run drives, with one checkpoint (``<name>.json``).

    :param name: ``chunk-<n>``, and ``chunk-<n>.<k>`` for what remained of it after its k-th route was given up (a
        new checkpoint: resuming the old one would run the given-up route again).
    :param route_ids: its routes, in the routes file's order.
    :param started: an evaluator ran on it: the next one resumes its checkpoint.
    :param finished: every route is recorded in its checkpoint or given up.
    """

    name: str
    route_ids: list[str]
    started: bool = False
    finished: bool = False


@dataclass(frozen=True)
class CrashedRoute:
    """A route the runner gave up after its attempts crashed, hung or lost their server.

    :param reason: what happened on the last attempt (``no progress for 600 s``, ``server exited with code -9``,
        ``evaluator exited with code 255``).
    :param attempts: evaluator runs that failed on it.
    :param status: the Leaderboard's status for it.
    """

    route_id: str
    reason: str
    attempts: int
    status: str = SIMULATION_CRASHED


@dataclass
class _Data:
    plan: dict[str, Any]
    chunks: list[Chunk]
    attempts: dict[str, int] = field(default_factory=dict)
    crashed: list[CrashedRoute] = field(default_factory=list)
    groups: dict[str, GroupRecord] = field(default_factory=dict)


class RunnerState:
    """The state of one run folder, shared by the runner's worker threads (every method holds a lock and saves).

    Open it with :meth:`open`; :meth:`close` releases the folder.
    """

    def __init__(self, path: Path, data: _Data, lock: TextIO) -> None:
        self.path = path
        self._data = data
        self._lock_file = lock
        self._lock = threading.Lock()

    @classmethod
    def open(cls, folder: Path, *, plan: dict[str, Any], chunks: list[Chunk]) -> RunnerState:
        """The state in ``folder`` (created with ``chunks`` when there is none).

        :param plan: what the run is (routes, agent, ...): a state of another plan is refused.
        :raises ValueError: when the folder holds another plan's state, or another runner uses it.
        """
        folder.mkdir(parents=True, exist_ok=True)
        lock = (folder / ".runner.lock").open("a")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ValueError(f"run folder {folder}: another runner is using it") from None
        path = folder / STATE_FILE
        try:
            data = _load(path, plan) if path.is_file() else _Data(plan=plan, chunks=chunks)
        except ValueError:
            lock.close()
            raise
        state = cls(path, data, lock)
        state._save()
        return state

    def close(self) -> None:
        """Release the folder's lock."""
        self._lock_file.close()

    # -- reading

    @property
    def chunks(self) -> list[Chunk]:
        with self._lock:
            return [Chunk(c.name, list(c.route_ids), c.started, c.finished) for c in self._data.chunks]

    @property
    def crashed(self) -> list[CrashedRoute]:
        with self._lock:
            return list(self._data.crashed)

    def attempts(self, route_id: str) -> int:
        with self._lock:
            return self._data.attempts.get(route_id, 0)

    def groups(self) -> dict[str, GroupRecord]:
        with self._lock:
            return dict(self._data.groups)

    # -- changing (each saved at once)

    def mark_started(self, name: str) -> None:
        with self._lock:
            self._chunk(name).started = True
            self._save()

    def mark_finished(self, name: str) -> None:
        with self._lock:
            self._chunk(name).finished = True
            self._save()

    def count_failure(self, route_id: str) -> int:
        """One more failed attempt on ``route_id``; returns how many there were."""
        with self._lock:
            self._data.attempts[route_id] = self._data.attempts.get(route_id, 0) + 1
            self._save()
            return self._data.attempts[route_id]

    def give_up(self, name: str, route_id: str, reason: str, *, rest: list[str]) -> Chunk | None:
        """Record ``route_id`` of chunk ``name`` as crashed, finish the chunk, and return a new chunk of its routes
        ``rest`` (still to run), or ``None`` when there are none."""
        with self._lock:
            self._data.crashed.append(CrashedRoute(route_id, reason, self._data.attempts.get(route_id, 0)))
            self._chunk(name).finished = True
            follow_up = None
            if rest:
                base, _, part = name.partition(".")
                follow_up = Chunk(f"{base}.{int(part or 0) + 1}", list(rest))
                position = self._data.chunks.index(self._chunk(name)) + 1
                self._data.chunks.insert(position, follow_up)
            self._save()
            return None if follow_up is None else Chunk(follow_up.name, list(follow_up.route_ids))

    def set_group(self, key: str, record: GroupRecord | None) -> None:
        """Remember (or forget, with ``None``) the process group running as ``key`` (``server-0``, ...)."""
        with self._lock:
            if record is None:
                self._data.groups.pop(key, None)
            else:
                self._data.groups[key] = record
            self._save()

    def _chunk(self, name: str) -> Chunk:
        return next(chunk for chunk in self._data.chunks if chunk.name == name)

    def _save(self) -> None:
        data = {"format": STATE_FORMAT, "plan": self._data.plan,
                "chunks": [asdict(chunk) for chunk in self._data.chunks], "attempts": self._data.attempts,
                "crashed": [asdict(route) for route in self._data.crashed],
                "groups": {key: asdict(record) for key, record in self._data.groups.items()}}
        write_atomic(self.path, json.dumps(data, indent=1).encode())


def write_atomic(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` so that a reader (or a crash) only ever sees the old or the new file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with temporary.open("wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    descriptor = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _load(path: Path, plan: dict[str, Any]) -> _Data:
    try:
        raw = json.loads(path.read_text())
        if raw.get("format") != STATE_FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {STATE_FORMAT!r}")
        data = _Data(plan=raw["plan"], chunks=[Chunk(**chunk) for chunk in raw["chunks"]],
                     attempts={str(k): int(v) for k, v in raw["attempts"].items()},
                     crashed=[CrashedRoute(**route) for route in raw["crashed"]],
                     groups={key: GroupRecord(**record) for key, record in raw["groups"].items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"runner state {path}: unreadable ({error}); delete it to start the run afresh") from None
    if data.plan != plan:
        changed = sorted(key for key in {*plan, *data.plan} if plan.get(key) != data.plan.get(key))
        raise ValueError(f"runner state {path} belongs to another run (differs in {', '.join(changed)}): use another "
                         "output folder, or delete it to start afresh")
    return data
