"""Real servers for the tests, started as their users start them, on free loopback ports, and stopped afterwards:
PostgreSQL (Debian's packages; as the unprivileged ``postgres`` user when the tests run as root), an MLflow server
and a Prefect server on it, Prefect workers. (A local Ray cluster: :func:`autoloop.compute.local_cluster`.)"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
#: Settings every server and client process of the tests gets: no telemetry, fast polling.
QUIET = {"DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
         "RAY_USAGE_STATS_ENABLED": "0", "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_WORKER_PREFETCH_SECONDS": "2"}
PASSWORD = "autoloop-test-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(**values: str) -> dict[str, str]:
    """This process's environment without any server settings of the caller's, plus ``QUIET`` and ``values``.

    (MLflow's ``set_tracking_uri`` and ``set_registry_uri`` write both URIs into the environment: an earlier test's
    home store would otherwise stay the registry of every process started here.)"""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "RAY_ADDRESS",
                          "AUTOLOOP_HOME")}
    return {**env, **QUIET, **values}


@contextmanager
def process(command: Sequence[str], *, log: Path, env: Mapping[str, str], cwd: Path | None = None,
            user: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A server process in a session of its own, stopped with its children (SIGTERM, then SIGKILL) afterwards."""
    prefix = ["runuser", "-u", user, "--"] if user else []
    started = subprocess.Popen([*prefix, *command], env=dict(env), cwd=cwd, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield started
    finally:
        for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(started.pid, sig)
                started.wait(timeout=wait_s)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue


def wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path, timeout_s: float = 240.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not healthy after {timeout_s} s:\n{log.read_text()[-3000:]}")


# ---------------------------------------------------------------------------------------------- PostgreSQL


def _postgres_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parents[1].name))
    if versions:
        return versions[-1].parent
    found = shutil.which("postgres")
    if found is None:
        pytest.skip("PostgreSQL is not installed: apt-get install -y postgresql (the Makefile does it as root)")
    return Path(found).resolve().parent


@dataclass(frozen=True)
class Postgres:
    """A running PostgreSQL: ``url(database)`` for the role ``autoloop`` (password ``PASSWORD``)."""

    port: int

    def url(self, database: str, *, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://autoloop:{PASSWORD}@127.0.0.1:{self.port}/{database}"


@contextmanager
def postgres(databases: Sequence[str]) -> Iterator[Postgres]:
    """PostgreSQL in a temporary folder on a free loopback port, with ``databases`` owned by ``autoloop``.

    PostgreSQL refuses to run as root: as root, it runs as the ``postgres`` system user, in a folder that user owns.
    """
    bindir = _postgres_bin()
    user = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="autoloop-postgres-"))
    try:
        if user:
            shutil.chown(folder, user=user, group=user)
        as_user = ["runuser", "-u", user, "--"] if user else []
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(folder / "data"), "-U", "postgres",
                        "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120)
        port = free_port()
        log = folder / "postgres.log"
        with process([str(bindir / "postgres"), "-D", str(folder / "data"), "-p", str(port), "-k", str(folder),
                      "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "fsync=off"],
                     log=log, env=environment(), user=user) as server:
            psql = [*as_user, shutil.which("psql") or "psql", "-h", str(folder), "-p", str(port), "-U", "postgres",
                    "-v", "ON_ERROR_STOP=1", "-q"]
            deadline = time.monotonic() + 60
            while subprocess.run([*psql, "-c", "SELECT 1"], capture_output=True).returncode != 0:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
            statements = [f"CREATE ROLE autoloop LOGIN PASSWORD '{PASSWORD}'",
                          *(f"CREATE DATABASE {name} OWNER autoloop" for name in databases)]
            for statement in statements:
                subprocess.run([*psql, "-c", statement], check=True, capture_output=True, timeout=60)
            yield Postgres(port)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- MLflow, Prefect


@dataclass(frozen=True)
class Server:
    """A started server: ``wait()`` until its health endpoint answers."""

    url: str
    health: str
    started: subprocess.Popen[bytes]
    log: Path

    def wait(self, timeout_s: float = 240.0) -> None:
        wait_healthy(self.health, self.started, self.log, timeout_s)


@contextmanager
def mlflow_server(backend_store: str, folder: Path) -> Iterator[Server]:
    """``mlflow server`` on ``backend_store`` with proxied artifacts under ``folder`` (started; not yet healthy)."""
    port = free_port()
    log = folder / "mlflow.log"
    with process([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri",
                  backend_store, "--artifacts-destination", str(folder / "artifacts"), "--workers", "1"],
                 log=log, env=environment()) as started:
        url = f"http://127.0.0.1:{port}"
        yield Server(url, f"{url}/health", started, log)


@contextmanager
def prefect_server(database: str, folder: Path) -> Iterator[Server]:
    """``prefect server start`` with its database at ``database`` (started; not yet healthy); ``url`` is the API."""
    port = free_port()
    log = folder / "prefect-server.log"
    env = environment(PREFECT_HOME=str(folder / "prefect-server"), PREFECT_API_DATABASE_CONNECTION_URL=database)
    with process([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)], log=log,
                 env=env) as started:
        url = f"http://127.0.0.1:{port}/api"
        yield Server(url, f"{url}/health", started, log)


def prefect(*args: str, env: Mapping[str, str], timeout_s: float = 120) -> str:
    """Run the ``prefect`` CLI from the repository root; its output (raises with it on failure)."""
    done = subprocess.run([str(BIN / "prefect"), "--no-prompt", *args], cwd=ROOT, env={**env, "PWD": str(ROOT)},
                          capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"prefect {' '.join(args)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@contextmanager
def workers(pools: Sequence[str], *, env: Mapping[str, str], folder: Path) -> Iterator[None]:
    """One process worker per entry of ``pools`` (a pool named twice gets two workers)."""
    with ExitStack() as stack:
        for number, pool in enumerate(pools):
            stack.enter_context(process([str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type",
                                         "process", "--name", f"{pool}-{number}"],
                                        log=folder / f"worker-{pool}-{number}.log", env=env, cwd=ROOT))
        yield
