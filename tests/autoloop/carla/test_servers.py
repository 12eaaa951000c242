"""CARLA server handles with the server stand-in (a process that binds a server's ports, not CARLA): start, ready,
stop with its children, clear errors; external servers; port spacing; process groups left behind by a killed
runner."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from autoloop.carla import (
    PORTS_PER_SERVER,
    ExternalCarlaServer,
    LocalCarlaServer,
    ServerError,
    ServerPorts,
    carla_launch_command,
    local_servers,
    server_ports,
)
from autoloop.carla.processes import GroupRecord, ProcessGroup, stop_recorded_group
from tests.autoloop.carla.standins import free_base_port, processes_mentioning, server_command


def _server(tmp_path: Path, *options: str, stop_grace_s: float = 2.0) -> LocalCarlaServer:
    port = free_base_port()
    return LocalCarlaServer(server_command(port, tmp_path / "pids", *options), ports=ServerPorts(port),
                            log_path=tmp_path / "server.log", stop_grace_s=stop_grace_s)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
        return True
    except OSError:
        return False


def test_server_starts_is_ready_and_stops_with_its_children(tmp_path: Path) -> None:
    server = _server(tmp_path, "--child", "--startup-s", "0.3")
    server.start()
    try:
        server.wait_ready(timeout_s=10)
        assert server.alive()
        assert _accepts(server.ports.rpc_port) and _accepts(server.ports.streaming_port)
        assert len(processes_mentioning(str(tmp_path))) == 2  # the script and its grandchild
    finally:
        server.stop()
    assert not server.alive()
    assert processes_mentioning(str(tmp_path)) == []
    assert not _accepts(server.ports.rpc_port)


def test_stop_kills_a_server_that_ignores_sigterm(tmp_path: Path) -> None:
    server = _server(tmp_path, "--child", "--ignore-sigterm", stop_grace_s=0.3)
    server.start()
    server.wait_ready(timeout_s=10)
    server.stop()
    assert processes_mentioning(str(tmp_path)) == []


def test_a_server_that_never_answers_fails_clearly(tmp_path: Path) -> None:
    server = _server(tmp_path, "--never-listen")
    server.start()
    try:
        with pytest.raises(ServerError) as error:
            server.wait_ready(timeout_s=1.0)
    finally:
        server.stop()
    message = str(error.value)
    assert "server.py" in message and f"port {server.ports.rpc_port}" in message and "within 1 s" in message
    assert "not listening" in message  # the end of its log


def test_a_server_that_exits_fails_with_its_exit_code_and_log(tmp_path: Path) -> None:
    server = _server(tmp_path, "--never-listen", "--exit-after-s", "0.2", "--exit-code", "3")
    server.start()
    with pytest.raises(ServerError, match="exited with code 3") as error:
        server.wait_ready(timeout_s=10)
    assert "exits with code 3" in str(error.value)
    assert server.exit_code() == 3 and not server.alive()
    server.stop()


def test_start_refuses_a_port_someone_else_answers_on(tmp_path: Path) -> None:
    server = _server(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", server.ports.rpc_port))
        squatter.listen(1)
        with pytest.raises(ServerError, match="already accepts connections"):
            server.start()
    assert not server.alive()


def test_external_server_is_waited_for_and_never_stopped(tmp_path: Path) -> None:
    port = free_base_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen(4)
        server = ExternalCarlaServer.from_address(f"127.0.0.1:{port}")
        assert (server.host, server.ports.traffic_manager_port) == ("127.0.0.1", port + 3)
        server.start()
        server.wait_ready(timeout_s=2)
        server.stop()
        assert server.alive() and server.group() is None
        assert _accepts(port)  # still ours to close
    with pytest.raises(ServerError, match=f"127.0.0.1:{port} accepted no connection within 0.3 s"):
        server.wait_ready(timeout_s=0.3)
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        ExternalCarlaServer.from_address("localhost")


def test_servers_ports_never_collide() -> None:
    blocks = [server_ports(index, base_port=2000) for index in range(8)]
    used = [port for ports in blocks for port in range(ports.rpc_port, ports.rpc_port + PORTS_PER_SERVER)]
    assert len(used) == len(set(used))
    assert [ports.rpc_port for ports in blocks[:3]] == [2000, 2010, 2020]
    first = blocks[0]
    assert (first.streaming_port, first.secondary_port, first.traffic_manager_port) == (2001, 2002, 2003)
    tight = [server_ports(index, base_port=3000, port_spacing=4) for index in range(3)]
    assert [ports.rpc_port for ports in tight] == [3000, 3004, 3008]
    with pytest.raises(ValueError, match="port_spacing 3"):
        server_ports(1, port_spacing=3)


def test_launch_command_from_carla_root(tmp_path: Path) -> None:
    (tmp_path / "CarlaUE4.sh").write_text("#!/bin/sh\n")
    assert carla_launch_command(tmp_path, rpc_port=2010, gpu=1) == [
        str(tmp_path / "CarlaUE4.sh"), "-RenderOffScreen", "-nosound", "-carla-rpc-port=2010", "-graphicsadapter=1"]
    assert carla_launch_command(tmp_path, rpc_port=2000)[-1] == "-carla-rpc-port=2000"
    with pytest.raises(ValueError, match=r"CARLA_ROOT .*nowhere: no CarlaUE4.sh there"):
        carla_launch_command(tmp_path / "nowhere", rpc_port=2000)
    first, second = local_servers(tmp_path, gpus=[2, 5], log_dir=tmp_path / "logs", base_port=3000)
    assert (first.command[-2:], first.ports.rpc_port, first.gpu) == (
        ["-carla-rpc-port=3000", "-graphicsadapter=2"], 3000, 2)
    assert (second.command[-2:], second.log_path) == (["-carla-rpc-port=3010", "-graphicsadapter=5"],
                                                      tmp_path / "logs" / "server-1.log")


def test_a_group_left_behind_is_stopped_only_while_it_is_ours(tmp_path: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)", str(tmp_path)]
    group = ProcessGroup(sleeper, log_path=tmp_path / "sleeper.log")
    record = group.record
    stranger = GroupRecord(pgid=record.pgid, start_ticks=record.start_ticks + 1, command=record.command)
    assert not stop_recorded_group(stranger)  # same pid, another start time: not ours
    assert group.poll() is None
    assert stop_recorded_group(record, grace_s=2.0)
    assert group.process.wait(timeout=5) < 0
    assert not stop_recorded_group(record)  # nothing left to stop
