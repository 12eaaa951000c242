"""Drive routes through the CARLA Leaderboard's own evaluator, in chunks, on one or more CARLA servers, and keep going
when a server crashes or the evaluator hangs.

Each server (one per GPU, ports spaced: :mod:`autoloop.carla.servers`) has a worker thread that takes chunks of routes
from a shared queue. For a chunk it starts the evaluator (:mod:`autoloop.carla.evaluator`) in a process group of its
own, with ``--checkpoint <chunk>.json`` (and ``--resume=1`` when the chunk ran before), its output in
``logs/<chunk>.log``, and watches it:

- **progress** is the checkpoint, the live-results file or the evaluator's log changing;
- **no progress for** ``hang_timeout_s``, or **the server process exited**, or **the evaluator exited** before every
  route of the chunk was recorded, is a failed attempt on the route it was on (the first of the chunk, in the routes
  file's order, not yet recorded as finished). The evaluator's and the server's process groups are killed, the
  server is started again, and the chunk is run again with ``--resume=1``. A route whose attempts fail
  ``attempts_per_route`` times (default 2: tried once more) is given up: recorded as ``Failed - Simulation crashed``
  with the reason, and the chunk's remaining routes go on under a new checkpoint (the evaluator would rerun a
  crashed record on resume).

This is the loop teams script by hand. Bench2Drive (Thinklab-SJTU/Bench2Drive) splits its routes file into one file
per GPU (``tools/split_xml.py``) and starts one evaluator per GPU in the background
(``leaderboard/scripts/run_evaluation_multi_uniad.sh``: ``PORT=$((BASE_PORT + i * 150))``, ``TM_PORT=$((BASE_TM_PORT +
i * 150))``, ``CUDA_VISIBLE_DEVICES`` and ``--resume=True`` in ``run_evaluation.sh``); its evaluator starts its own
server (``-graphicsadapter=<gpu-rank>``), and after a simulation crash kills every process matching that
``-graphicsadapter`` and exits with -1, to be started again by hand
(``leaderboard/leaderboard/leaderboard_evaluator.py``); ``tools/clean_carla.sh`` kills every CARLA and evaluator
process of the machine. A watchdog outside the evaluator is needed because it can hang for ever after its watchdog
fires or its server dies (carla-simulator/leaderboard issue #183, "Watchdog exception does not terminate
leaderboard_evaluator.py process"; carla-simulator/carla issue #6297, a hang in ``_cleanup``;
carla-simulator/leaderboard pull request #158, "the simulation could potentially block after a crash").

The runner's own state (:mod:`autoloop.carla.runner_state`) is saved after every change, so a runner killed even
with SIGKILL resumes when started again on the same folder: finished chunks are not run again, a chunk in progress is
resumed from its checkpoint, failed attempts stay counted, and the process groups the killed runner left behind are
stopped first. No child outlives a run: every process group is stopped on the normal end, on an exception and on
SIGTERM/SIGINT (handled while the run lasts, in the main thread; the previous handlers are restored and the signal
raised again under them afterwards).

Progress is logged under ``autoloop.carla`` (so it shows in the Prefect UI when run in a flow).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from autoloop.carla.evaluator import (
    EvaluatorSettings,
    evaluator_command,
    finished_routes,
    read_checkpoint,
    route_ids_in,
)
from autoloop.carla.processes import STOP_GRACE_S, ProcessGroup, stop_recorded_group
from autoloop.carla.runner_state import Chunk, CrashedRoute, RunnerState, write_atomic
from autoloop.carla.servers import CarlaServer, ServerError

log = logging.getLogger(__name__)


class RunInterrupted(RuntimeError):
    """The run was stopped by SIGTERM or SIGINT (after every child was stopped); start it again to resume."""


@dataclass(frozen=True)
class WatchSettings:
    """How the runner watches the evaluator and its server, and how often it tries again.

    :param hang_timeout_s: an evaluator with no progress (checkpoint, live results and log unchanged) this long is
        taken for hung. Unless the evaluator runs with ``debug`` 2 or more (live results every tick), or the agent
        prints as it drives, this must exceed the longest route's wall time.
    :param attempts_per_route: evaluator runs that may fail on one route before it is given up.
    :param server_ready_timeout_s: how long a (re)started server has to accept connections.
    :param server_start_attempts: tries to get a server ready before the run fails.
    :param poll_s: how often the evaluator and its server are checked.
    :param stop_grace_s: how long an evaluator has to end after SIGTERM before it gets SIGKILL.
    """

    hang_timeout_s: float = 900.0
    attempts_per_route: int = 2
    server_ready_timeout_s: float = 180.0
    server_start_attempts: int = 3
    poll_s: float = 1.0
    stop_grace_s: float = STOP_GRACE_S

    def __post_init__(self) -> None:
        for name in ("hang_timeout_s", "server_ready_timeout_s", "poll_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} {getattr(self, name)}: must be positive")
        for name in ("attempts_per_route", "server_start_attempts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} {getattr(self, name)}: must be at least 1")


@dataclass(frozen=True)
class LeaderboardRunResult:
    """What a finished run leaves.

    :param checkpoints: the evaluator's checkpoint of every chunk that ran (``<output_dir>/<chunk>.json``, in route
        order): the Leaderboard's result JSON, to be read by :mod:`autoloop.evaluation`.
    :param crashed: the routes the runner gave up, each ``Failed - Simulation crashed`` with its reason (a given-up
        route may also appear in a checkpoint with that status, when the evaluator recorded its crash).
    """

    checkpoints: tuple[Path, ...]
    crashed: tuple[CrashedRoute, ...]


def run_leaderboard(settings: EvaluatorSettings, *, servers: Sequence[CarlaServer], output_dir: Path,
                    evaluator_prefix: Sequence[str], environment: Mapping[str, str] | None = None,
                    route_ids: Sequence[str] | None = None, chunk_routes: int = 10,
                    watch: WatchSettings = WatchSettings()) -> LeaderboardRunResult:
    """Drive ``route_ids`` (default: every route of ``settings.routes``) through the evaluator on ``servers``, or
    resume the run in ``output_dir``.

    :param servers: one worker per server, each started (when ours) and stopped by the run.
    :param output_dir: checkpoints, logs and the runner's state.
    :param evaluator_prefix: the evaluator program (:func:`autoloop.carla.evaluator.leaderboard_evaluator_prefix`).
    :param environment: the evaluator's environment (:func:`autoloop.carla.evaluator.evaluator_environment`);
        each worker adds ``CUDA_VISIBLE_DEVICES`` of its server's GPU.
    :param chunk_routes: routes per chunk (one evaluator run, one checkpoint).
    :raises ValueError: for route ids not in the routes file, or an ``output_dir`` of another run.
    :raises ServerError: when a server cannot be made ready.
    :raises RunInterrupted: after SIGTERM/SIGINT, once every child is stopped and the signal has been raised again
        under the previous handler (unless that one ends the process, as the default SIGTERM action does, or raises,
        as Python's SIGINT handler raises ``KeyboardInterrupt``).
    """
    if not servers:
        raise ValueError("servers: at least one CARLA server is needed")
    if chunk_routes < 1:
        raise ValueError(f"chunk_routes {chunk_routes}: must be at least 1")
    ordered = _ordered(settings.routes, route_ids)
    chunks = [Chunk(f"chunk-{n:03d}", ordered[start:start + chunk_routes])
              for n, start in enumerate(range(0, len(ordered), chunk_routes))]
    plan = {"routes": str(Path(settings.routes).resolve()), "route_ids": ordered, "chunk_routes": chunk_routes,
            "agent": str(Path(settings.agent).resolve()), "agent_config": settings.agent_config,
            "track": settings.track, "repetitions": settings.repetitions}
    state = RunnerState.open(output_dir, plan=plan, chunks=chunks)
    try:
        _stop_left_behind(state)
        run = _Run(settings=settings, state=state, output_dir=output_dir, prefix=list(evaluator_prefix),
                   environment=dict(environment) if environment is not None else None, watch=watch)
        run.execute(servers)
        return LeaderboardRunResult(
            checkpoints=tuple(path for chunk in state.chunks if (path := output_dir / f"{chunk.name}.json").exists()),
            crashed=tuple(state.crashed))
    finally:
        state.close()


def _ordered(routes: Path, route_ids: Sequence[str] | None) -> list[str]:
    """``route_ids`` in the routes file's order (the order the evaluator runs a subset in)."""
    in_file = route_ids_in(routes)
    if route_ids is None:
        return in_file
    wanted = [str(route_id) for route_id in route_ids]
    missing = [route_id for route_id in wanted if route_id not in in_file]
    if missing:
        raise ValueError(f"route_ids {', '.join(missing)}: not in routes file {routes}")
    return [route_id for route_id in in_file if route_id in set(wanted)]


def _stop_left_behind(state: RunnerState) -> None:
    """Stop the servers and evaluators a killed runner left running on this folder."""
    for key, record in state.groups().items():
        stop_recorded_group(record)
        state.set_group(key, None)


class _Run:
    """One execution of a run: the queue of chunks, the workers, the stop flag and the signal handlers."""

    def __init__(self, *, settings: EvaluatorSettings, state: RunnerState, output_dir: Path, prefix: list[str],
                 environment: dict[str, str] | None, watch: WatchSettings) -> None:
        self.settings = settings
        self.state = state
        self.output_dir = output_dir
        self.prefix = prefix
        self.environment = environment
        self.watch = watch
        self.queue: queue.Queue[Chunk] = queue.Queue()
        self.stopping = threading.Event()
        self.errors: list[BaseException] = []
        self.signals: list[int] = []

    def execute(self, servers: Sequence[CarlaServer]) -> None:
        pending = [chunk for chunk in self.state.chunks if not chunk.finished]
        routes = sum(len(chunk.route_ids) for chunk in pending)
        log.info("Leaderboard run in %s: %d chunks (%d routes) to drive on %d servers", self.output_dir,
                 len(pending), routes, len(servers))
        for chunk in pending:
            self.queue.put(chunk)
        workers = [threading.Thread(target=_Worker(index, server, self).run, name=f"carla-worker-{index}",
                                    daemon=True) for index, server in enumerate(servers)]
        previous = self._install_handlers()
        try:
            for worker in workers:
                worker.start()
            while any(worker.is_alive() for worker in workers):
                for worker in workers:
                    worker.join(timeout=0.1)
        finally:
            self.stopping.set()
            self._stop_workers(workers)
            self._restore_handlers(previous)
        if self.signals:
            signal.raise_signal(self.signals[0])  # the previous handler's turn (the default one ends the process)
            raise RunInterrupted(f"Leaderboard run in {self.output_dir} stopped by "
                                 f"{signal.Signals(self.signals[0]).name}; start it again to resume")
        if self.errors:
            raise self.errors[0]
        unfinished = [chunk.name for chunk in self.state.chunks if not chunk.finished]
        if unfinished:  # pragma: no cover - every worker ended without an error, so the queue is empty
            raise RuntimeError(f"chunks {', '.join(unfinished)} were left undone")
        log.info("Leaderboard run in %s finished: %d routes given up", self.output_dir, len(self.state.crashed))

    def fail(self, error: BaseException) -> None:
        """A worker's error: every worker stops and the run raises it."""
        self.errors.append(error)
        self.stopping.set()

    def _stop_workers(self, workers: list[threading.Thread]) -> None:
        """Wait for the workers to stop their children; stop any group still running after that (a worker stuck in
        a call), then wait for them again."""
        deadline = time.monotonic() + self.watch.stop_grace_s + 5.0
        for worker in workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        for key, record in self.state.groups().items():
            if stop_recorded_group(record, grace_s=self.watch.stop_grace_s):
                log.warning("stopped %s, still running after its worker was told to stop", key)
        for worker in workers:
            worker.join(timeout=self.watch.stop_grace_s + 5.0)

    def _install_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            log.debug("not in the main thread: SIGTERM/SIGINT are left to the caller")
            return {}

        def stop(signum: int, frame: FrameType | None) -> None:
            log.warning("%s received: stopping the evaluators and servers", signal.Signals(signum).name)
            self.signals.append(signum)
            self.stopping.set()

        return {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}

    @staticmethod
    def _restore_handlers(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@dataclass(frozen=True)
class _Outcome:
    """How an evaluator run ended: its exit code (``None`` when it was killed) and, for a failure, why."""

    exit_code: int | None
    reason: str


class _Worker:
    """One server and the chunks it drives, one evaluator at a time."""

    def __init__(self, index: int, server: CarlaServer, run: _Run) -> None:
        self.index = index
        self.server = server
        self.run_ = run
        self.watch = run.watch
        self.state = run.state
        self.evaluator: ProcessGroup | None = None
        self.environment = dict(run.environment) if run.environment is not None else None
        if server.gpu is not None:
            base = os.environ if self.environment is None else self.environment
            self.environment = {**base, "CUDA_VISIBLE_DEVICES": str(server.gpu)}
        self.server_stale = True  # not started yet, or its last evaluator failed: (re)start before the next one

    def run(self) -> None:
        try:
            while not self.run_.stopping.is_set():
                try:
                    chunk = self.run_.queue.get_nowait()
                except queue.Empty:
                    return
                self._drive(chunk)
        except BaseException as error:  # handed to the main thread, which raises it
            log.error("worker %d (server port %d) failed: %s", self.index, self.server.ports.rpc_port, error)
            self.run_.fail(error)
        finally:
            self._stop_evaluator()
            self._stop_server()

    # -- a chunk

    def _drive(self, chunk: Chunk) -> None:
        current: Chunk | None = chunk
        while current is not None and not self.run_.stopping.is_set():
            current = self._attempt(current)

    def _attempt(self, chunk: Chunk) -> Chunk | None:
        """Run the evaluator on ``chunk`` once; returns the chunk to go on with (itself again, or what remains of it
        after a route was given up), or ``None`` when it is finished."""
        checkpoint = self._checkpoint(chunk)
        reps = self.run_.settings.repetitions
        if chunk.started and len(finished_routes(read_checkpoint(checkpoint), chunk.route_ids,
                                                 repetitions=reps)) == len(chunk.route_ids):
            self.state.mark_finished(chunk.name)
            return None
        if self.server_stale or not self.server.alive():
            self._restart_server()
            if self.run_.stopping.is_set():
                return None
        outcome = self._run_evaluator(chunk)
        chunk.started = True
        if outcome is None:  # the run is stopping
            return None
        done = finished_routes(read_checkpoint(checkpoint), chunk.route_ids, repetitions=reps)
        remaining = [route_id for route_id in chunk.route_ids if route_id not in done]
        if not remaining:
            if outcome.exit_code != 0:
                log.warning("%s: every route recorded, though the evaluator %s", chunk.name, outcome.reason)
            log.info("%s finished (%d routes) on server port %d", chunk.name, len(chunk.route_ids),
                     self.server.ports.rpc_port)
            self.state.mark_finished(chunk.name)
            return None
        route_id = remaining[0]
        attempts = self.state.count_failure(route_id)
        log.warning("%s: route %s failed (attempt %d of %d): %s", chunk.name, route_id, attempts,
                    self.watch.attempts_per_route, outcome.reason)
        self.server_stale = True
        if attempts < self.watch.attempts_per_route:
            return chunk
        log.error("%s: route %s given up as Failed - Simulation crashed (%s); %d routes of the chunk go on",
                  chunk.name, route_id, outcome.reason, len(remaining) - 1)
        return self.state.give_up(chunk.name, route_id, outcome.reason, rest=remaining[1:])

    def _run_evaluator(self, chunk: Chunk) -> _Outcome | None:
        """Start the evaluator on ``chunk``, watch it until it ends, hangs or loses its server, and stop its group."""
        checkpoint = self._checkpoint(chunk)
        live = self.run_.output_dir / f"{chunk.name}.live.txt"
        log_path = self.run_.output_dir / "logs" / f"{chunk.name}.log"
        command = evaluator_command(self.run_.prefix, self.run_.settings, host=self.server.host,
                                    ports=self.server.ports, route_ids=chunk.route_ids, checkpoint=checkpoint,
                                    live_results=live, resume=chunk.started)
        self.state.mark_started(chunk.name)
        log.info("%s: evaluator on server port %d, routes %s%s", chunk.name, self.server.ports.rpc_port,
                 ",".join(chunk.route_ids), " (resuming)" if chunk.started else "")
        self.evaluator = ProcessGroup(command, log_path=log_path, env=self.environment)
        self.state.set_group(f"evaluator-{self.index}", self.evaluator.record)
        last_good = checkpoint.read_bytes() if read_checkpoint(checkpoint) is not None else None
        try:
            outcome, last_good = self._watch(chunk, self.evaluator, (checkpoint, live, log_path), last_good)
        finally:
            self._stop_evaluator()
        if outcome is not None and last_good is not None and read_checkpoint(checkpoint) is None:
            log.warning("%s: the evaluator left its checkpoint half written; restoring the last complete one",
                        chunk.name)
            write_atomic(checkpoint, last_good)
        return outcome

    def _watch(self, chunk: Chunk, evaluator: ProcessGroup, watched: tuple[Path, ...],
               last_good: bytes | None) -> tuple[_Outcome | None, bytes | None]:
        """Poll until the evaluator ends (its outcome), hangs or loses its server (a failure), or the run stops
        (``None``); also returns the checkpoint's last complete content."""
        signature = _signature(watched)
        changed_at = time.monotonic()
        finished = -1
        while not self.run_.stopping.is_set():
            code = evaluator.poll()
            if code == 0:
                return _Outcome(0, "evaluator exited with code 0"), last_good
            if not self.server.alive():
                return _Outcome(None, f"server exited with code {self.server.exit_code()}"), last_good
            if code is not None:
                return _Outcome(code, f"evaluator exited with code {code}"), last_good
            now = _signature(watched)
            if now != signature:
                signature, changed_at = now, time.monotonic()
                data = read_checkpoint(watched[0])
                if data is not None:
                    last_good = watched[0].read_bytes()
                    done = len(finished_routes(data, chunk.route_ids, repetitions=self.run_.settings.repetitions))
                    if done != finished:
                        finished = done
                        log.info("%s: %d of %d routes finished", chunk.name, done, len(chunk.route_ids))
            elif time.monotonic() - changed_at > self.watch.hang_timeout_s:
                return _Outcome(None, f"no progress for {self.watch.hang_timeout_s:g} s (hung)"), last_good
            self.run_.stopping.wait(self.watch.poll_s)
        return None, last_good

    def _checkpoint(self, chunk: Chunk) -> Path:
        return self.run_.output_dir / f"{chunk.name}.json"

    # -- processes

    def _start_server(self) -> None:
        key = f"server-{self.index}"
        error: ServerError | None = None
        for attempt in range(1, self.watch.server_start_attempts + 1):
            if self.run_.stopping.is_set():
                return
            self.server.start()
            self.state.set_group(key, self.server.group())
            try:
                self.server.wait_ready(self.watch.server_ready_timeout_s)
                self.server_stale = False
                return
            except ServerError as failure:
                if self.run_.stopping.is_set():
                    return
                error = failure
                log.warning("server port %d not ready (try %d of %d): %s", self.server.ports.rpc_port, attempt,
                            self.watch.server_start_attempts, failure)
                self._stop_server()
        assert error is not None
        raise error

    def _restart_server(self) -> None:
        self._stop_server()
        self._start_server()

    def _stop_server(self) -> None:
        self.server.stop()
        self.state.set_group(f"server-{self.index}", None)

    def _stop_evaluator(self) -> None:
        if self.evaluator is None:
            return
        evaluator, self.evaluator = self.evaluator, None
        evaluator.stop(grace_s=self.watch.stop_grace_s)
        self.state.set_group(f"evaluator-{self.index}", None)


def _signature(paths: Sequence[Path]) -> tuple[tuple[int, int] | None, ...]:
    """What changes when the evaluator makes progress: modification time and size of each file."""
    return tuple(_stat(path) for path in paths)


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


