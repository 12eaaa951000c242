"""CARLA servers as handles: one we start (and restart, and kill) on a GPU, or one already running that we only wait
for.

A local server is CARLA's own launch script, as the Leaderboard's users and Bench2Drive start it
(``CarlaUE4.sh -RenderOffScreen -nosound -carla-rpc-port=P -graphicsadapter=G``, Thinklab-SJTU/Bench2Drive
``leaderboard/leaderboard/leaderboard_evaluator.py``), in a process group of its own (:mod:`autoloop.carla.processes`).
It is ready when its RPC port accepts a TCP connection: the launch script returns nothing while the engine loads (it
"is blocking", Bench2Drive ``tools/check_carla.md``), and Bench2Drive's evaluator simply sleeps 30 s and retries
``carla.Client`` calls; a TCP connect needs no ``carla`` package, which autoloop imports only in ``sim/carla``.

**Ports.** A server with ``-carla-rpc-port=P`` listens on P (RPC) and P+1 (sensor streaming: "Streaming port is set
to N+1 by default", carla.readthedocs.io ``ext_quickstart``), and its multi-GPU primary port defaults to P+2 (2002 for
2000, carla.readthedocs.io ``adv_multigpu``). The Traffic Manager runs in the client (the evaluator, which passes
``--traffic-manager-port``, default 8000) and needs a free port of its own: autoloop gives it P+3. So each server owns
the block P..P+3 (:data:`PORTS_PER_SERVER`), and server ``i`` of a run gets ``P = base_port + i * port_spacing``
with ``port_spacing >= 4`` (default 10: servers on 2000, 2010, 2020..., Traffic Managers on 2003, 2013, 2023...).
Bench2Drive spaces its servers 150 apart and its Traffic Managers from 50000 on
(``leaderboard/scripts/run_evaluation_multi_uniad.sh``: ``PORT=$((BASE_PORT + i * 150))``).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from autoloop.carla.processes import STOP_GRACE_S, GroupRecord, ProcessGroup

log = logging.getLogger(__name__)

#: Ports a server and its Traffic Manager own: RPC (P), streaming (P+1), multi-GPU primary (P+2), Traffic Manager (P+3).
PORTS_PER_SERVER = 4
#: The launch script in a CARLA package.
LAUNCH_SCRIPT = "CarlaUE4.sh"


class ServerError(RuntimeError):
    """A CARLA server that could not be started or did not become ready; the message names its command, port and
    the end of its log."""


@dataclass(frozen=True)
class ServerPorts:
    """The ports of one server (see the module docstring).

    :param rpc_port: CARLA's ``-carla-rpc-port``, the evaluator's ``--port``.
    """

    rpc_port: int

    @property
    def streaming_port(self) -> int:
        return self.rpc_port + 1

    @property
    def secondary_port(self) -> int:
        return self.rpc_port + 2

    @property
    def traffic_manager_port(self) -> int:
        """The evaluator's ``--traffic-manager-port``."""
        return self.rpc_port + 3


def server_ports(index: int, *, base_port: int = 2000, port_spacing: int = 10) -> ServerPorts:
    """The ports of server ``index`` (0, 1, ...) of a run: its block starts at ``base_port + index * port_spacing``."""
    if port_spacing < PORTS_PER_SERVER:
        raise ValueError(f"port_spacing {port_spacing}: each server owns {PORTS_PER_SERVER} ports "
                         f"(RPC, streaming, secondary, Traffic Manager), so servers must be at least that far apart")
    if index < 0:
        raise ValueError(f"server index {index}: must be 0 or more")
    ports = ServerPorts(base_port + index * port_spacing)
    if ports.rpc_port < 1024 or ports.traffic_manager_port > 65535:
        raise ValueError(f"server {index}: ports {ports.rpc_port}..{ports.traffic_manager_port} are outside "
                         "1024..65535: choose another base_port")
    return ports


def carla_launch_command(carla_root: Path, *, rpc_port: int, gpu: int | None = None,
                         extra_args: Sequence[str] = ()) -> list[str]:
    """``$CARLA_ROOT/CarlaUE4.sh -RenderOffScreen -nosound -carla-rpc-port=P [-graphicsadapter=G] [extra_args]``.

    :raises ValueError: when ``carla_root`` holds no ``CarlaUE4.sh``.
    """
    script = Path(carla_root) / LAUNCH_SCRIPT
    if not script.is_file():
        raise ValueError(f"CARLA_ROOT {carla_root}: no {LAUNCH_SCRIPT} there; point it at an unpacked CARLA package")
    command = [str(script), "-RenderOffScreen", "-nosound", f"-carla-rpc-port={rpc_port}"]
    if gpu is not None:
        command.append(f"-graphicsadapter={gpu}")
    return [*command, *extra_args]


class CarlaServer(Protocol):
    """What the Leaderboard runner needs of a server: where it is, and how to (re)start, watch and stop it."""

    host: str
    ports: ServerPorts
    #: The GPU its agent should run on too (``CUDA_VISIBLE_DEVICES`` of the evaluator), or ``None``.
    gpu: int | None

    def start(self) -> None:
        """Start it (nothing for a server someone else runs)."""

    def wait_ready(self, timeout_s: float) -> None:
        """Return once its RPC port accepts connections; :class:`ServerError` otherwise."""

    def alive(self) -> bool:
        """Whether it is still running, as far as we can tell."""

    def exit_code(self) -> int | None:
        """How it ended (negative: the signal), ``None`` while it runs or when it is not ours."""

    def stop(self) -> None:
        """Stop it and everything it started (nothing for a server someone else runs)."""

    def group(self) -> GroupRecord | None:
        """The process group to stop should this process be killed before it can stop it."""


class LocalCarlaServer:
    """A CARLA server we start, in its own process group, and stop with everything it started.

    :param command: its launch command (:func:`carla_launch_command`, or a stand-in in tests).
    :param ports: its ports; ``command`` must make it listen on ``ports.rpc_port``.
    :param log_path: its output, appended to across restarts.
    :param gpu: the GPU it renders on (for the evaluator's ``CUDA_VISIBLE_DEVICES``).
    :param host: where the evaluator reaches it.
    :param env: its environment (default: this process's).
    :param stop_grace_s: how long it has to end after SIGTERM before it gets SIGKILL.
    """

    def __init__(self, command: Sequence[str], *, ports: ServerPorts, log_path: Path, gpu: int | None = None,
                 host: str = "127.0.0.1", env: Mapping[str, str] | None = None,
                 stop_grace_s: float = STOP_GRACE_S) -> None:
        self.command = [str(part) for part in command]
        self.ports = ports
        self.log_path = log_path
        self.gpu = gpu
        self.host = host
        self.env = env
        self.stop_grace_s = stop_grace_s
        self._group: ProcessGroup | None = None

    @classmethod
    def from_carla_root(cls, carla_root: Path, *, ports: ServerPorts, log_path: Path, gpu: int | None = None,
                        extra_args: Sequence[str] = (), stop_grace_s: float = STOP_GRACE_S) -> LocalCarlaServer:
        """A server of the CARLA package at ``carla_root`` (:func:`carla_launch_command`)."""
        command = carla_launch_command(carla_root, rpc_port=ports.rpc_port, gpu=gpu, extra_args=extra_args)
        return cls(command, ports=ports, log_path=log_path, gpu=gpu, stop_grace_s=stop_grace_s)

    def __repr__(self) -> str:
        return f"LocalCarlaServer(port {self.ports.rpc_port}, gpu {self.gpu})"

    def start(self) -> None:
        """Start it.

        :raises ServerError: when it already runs, or something else already answers on its RPC port (a server left
            behind by another run, which would be taken for this one).
        """
        if self.alive():
            raise ServerError(f"CARLA server on port {self.ports.rpc_port} is already running (pid {self.pid})")
        if _accepts(self.host, self.ports.rpc_port):
            raise ServerError(f"CARLA server `{' '.join(self.command)}`: port {self.ports.rpc_port} on {self.host} "
                              "already accepts connections before it started; stop whatever listens there "
                              "or choose another base_port")
        log.info("starting CARLA server on port %d: %s", self.ports.rpc_port, " ".join(self.command))
        self._group = ProcessGroup(self.command, log_path=self.log_path, env=self.env)

    def wait_ready(self, timeout_s: float) -> None:
        """Poll until its RPC port accepts a TCP connection.

        :raises ServerError: when it exits first, or after ``timeout_s``; the message names the command, the port and
            the end of its log.
        """
        if self._group is None:
            raise ServerError(f"CARLA server on port {self.ports.rpc_port} was never started")
        started = time.monotonic()
        while True:
            code = self._group.poll()
            if code is not None:
                raise ServerError(self._failure(f"exited with code {code} before port {self.ports.rpc_port} "
                                                "accepted connections"))
            if _accepts(self.host, self.ports.rpc_port):
                log.info("CARLA server on port %d ready after %.1f s", self.ports.rpc_port,
                         time.monotonic() - started)
                return
            if time.monotonic() - started > timeout_s:
                raise ServerError(self._failure(f"port {self.ports.rpc_port} accepted no connection within "
                                                f"{timeout_s:g} s"))
            time.sleep(min(0.2, timeout_s / 20))

    def alive(self) -> bool:
        return self._group is not None and self._group.poll() is None

    def exit_code(self) -> int | None:
        return None if self._group is None else self._group.poll()

    @property
    def pid(self) -> int | None:
        return None if self._group is None else self._group.pid

    def stop(self) -> None:
        """Stop its whole process group (SIGTERM, then SIGKILL after ``stop_grace_s``) and reap it."""
        if self._group is None:
            return
        group, self._group = self._group, None
        code = group.stop(grace_s=self.stop_grace_s)
        log.info("CARLA server on port %d stopped (exit code %s)", self.ports.rpc_port, code)

    def group(self) -> GroupRecord | None:
        return None if self._group is None else self._group.record

    def _failure(self, what: str) -> str:
        tail = self._group.log_tail() if self._group is not None else ""
        return (f"CARLA server `{' '.join(self.command)}` {what}; its log {self.log_path} ends with:\n"
                f"{tail or '(nothing)'}")


def local_servers(carla_root: Path, *, gpus: Sequence[int], log_dir: Path, base_port: int = 2000,
                  port_spacing: int = 10, extra_args: Sequence[str] = ()) -> list[LocalCarlaServer]:
    """One server per GPU of ``gpus`` (server ``i`` renders on ``gpus[i]``, ports :func:`server_ports` ``(i)``),
    logging to ``log_dir/server-<i>.log``."""
    return [LocalCarlaServer.from_carla_root(carla_root, ports=server_ports(i, base_port=base_port,
                                                                            port_spacing=port_spacing),
                                             log_path=log_dir / f"server-{i}.log", gpu=gpu, extra_args=extra_args)
            for i, gpu in enumerate(gpus)]


class ExternalCarlaServer:
    """A CARLA server someone else runs at ``host:ports.rpc_port``: waited for, never started or stopped by us.

    :param gpu: the GPU the evaluator's agent should use (``CUDA_VISIBLE_DEVICES``), if any.
    """

    def __init__(self, host: str, ports: ServerPorts, *, gpu: int | None = None) -> None:
        self.host = host
        self.ports = ports
        self.gpu = gpu

    @classmethod
    def from_address(cls, address: str, *, gpu: int | None = None) -> ExternalCarlaServer:
        """The server at ``HOST:PORT`` (e.g. ``$CARLA_HOST``); its Traffic Manager port is PORT+3."""
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"CARLA server address {address!r}: expected HOST:PORT, e.g. 127.0.0.1:2000")
        return cls(host, ServerPorts(int(port)), gpu=gpu)

    def __repr__(self) -> str:
        return f"ExternalCarlaServer({self.host}:{self.ports.rpc_port})"

    def start(self) -> None:
        log.info("using the CARLA server at %s:%d (not started by autoloop)", self.host, self.ports.rpc_port)

    def wait_ready(self, timeout_s: float) -> None:
        """Poll until its RPC port accepts a TCP connection; :class:`ServerError` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not _accepts(self.host, self.ports.rpc_port):
            if time.monotonic() > deadline:
                raise ServerError(f"CARLA server at {self.host}:{self.ports.rpc_port} accepted no connection within "
                                  f"{timeout_s:g} s: is it running?")
            time.sleep(min(0.5, timeout_s / 20))

    def alive(self) -> bool:
        """Always ``True``: its process is not ours to watch (a dead one shows as an evaluator that fails or hangs)."""
        return True

    def exit_code(self) -> int | None:
        return None

    def stop(self) -> None:
        """Nothing: it is not ours."""

    def group(self) -> GroupRecord | None:
        return None


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False
