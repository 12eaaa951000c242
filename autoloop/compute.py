"""Where rollouts run: in this process, or as shards on a Ray cluster.

Collection, evaluation and DAgger cut their scenarios into shards and call :meth:`Compute.map` with one function
per shard. In this process the shards run one after the other; on a Ray cluster each is a Ray task that drives its
scenarios batched on a worker, and the results come back to the caller as they finish (the caller alone writes the
episode store and the evaluation checkpoint). A scenario drives the same whatever shard or batch slot it lands
in, so the results do not depend on where it ran.

A worker process or node that dies takes its task with it; Ray runs the task again (``SHARD_RETRIES`` times), so
the caller still gets every shard. An exception the shard itself raises is not retried: it would raise again.

Ray is imported only when a cluster is configured (the ``ray`` extra: ``pip install 'autoloop[ray]'``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from autoloop.config import ComputeConfig
from autoloop.network import check_reachable

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

RAY_WHAT = "the Ray cluster (compute.ray_address / RAY_ADDRESS)"
#: How often Ray runs a shard again after its worker process or node died.
SHARD_RETRIES = 3


@dataclass(frozen=True)
class Compute:
    """Where shards run.

    :param ray_address: the Ray cluster (``host:port`` of its head, or ``ray://host:port``); ``None``: this process.
    :param shard_scenarios: scenarios per shard (``None``: the simulator's batch size).
    """

    ray_address: str | None = None
    shard_scenarios: int | None = None

    @classmethod
    def from_config(cls, config: ComputeConfig) -> Compute:
        """The config's cluster, else ``$RAY_ADDRESS``, else this process."""
        return cls(ray_address=config.ray_address or os.environ.get("RAY_ADDRESS") or None,
                   shard_scenarios=config.shard_scenarios)

    def check(self) -> None:
        """Fail within seconds when the configured Ray cluster does not answer.

        :raises autoloop.network.Unreachable: naming the address.
        """
        if self.ray_address is not None and self.ray_address not in ("auto", "local"):
            check_reachable(self.ray_address, what=RAY_WHAT)

    def shards(self, count: int, batch_size: int) -> list[range]:
        """``range(count)`` cut into consecutive shards of ``shard_scenarios`` (else ``batch_size``) indices."""
        size = self.shard_scenarios or batch_size
        return [range(start, min(start + size, count)) for start in range(0, count, size)]

    def map(self, function: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        """``(index, function(item))`` for every item: in order here, in the order they finish on a cluster.

        :raises autoloop.network.Unreachable: when the cluster's head does not answer.
        """
        if self.ray_address is None:
            for index, item in enumerate(items):
                yield index, function(item)
            return
        yield from _ray_map(self.ray_address, function, items)


IN_PROCESS = Compute()


def connect(address: str) -> Any:
    """Join the Ray cluster at ``address`` (once per process) and return the ``ray`` module.

    :raises autoloop.network.Unreachable: when the head does not answer within seconds (``ray.init`` itself would
        wait for minutes).
    :raises ImportError: when Ray is not installed.
    """
    try:
        import ray
    except ImportError as error:
        raise ImportError(f"compute.ray_address is {address!r} but Ray is not installed: "
                          "pip install 'autoloop[ray]'") from error
    global _joined
    if ray.is_initialized() and _joined == address:
        return ray
    if ray.is_initialized():
        ray.shutdown()  # (another cluster: a process is a driver of one at a time)
    if address not in ("auto", "local"):
        check_reachable(address, what=RAY_WHAT)
    ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, configure_logging=False)
    _joined = address
    log.info("joined the Ray cluster at %s", address)
    return ray


#: The cluster this process joined.
_joined: str | None = None


def _call(function: Callable[[T], R], item: T) -> R:
    """One shard on a Ray worker (the function arrives once per worker through the object store)."""
    return function(item)


def _ray_map(address: str, function: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
    ray = connect(address)
    remote = ray.remote(num_cpus=1, max_retries=SHARD_RETRIES, retry_exceptions=False)(_call)
    shared = ray.put(function)
    pending = {remote.options(name=f"autoloop-shard-{index}").remote(shared, item): index
               for index, item in enumerate(items)}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), ray.get(ref)
    finally:
        for ref in pending:  # the caller stopped early (or failed): the other shards are not wanted
            ray.cancel(ref)


@contextmanager
def local_cluster(worker_cpus: int, *, folder: Path, object_store_mb: int = 200) -> Iterator[str]:
    """A Ray cluster on this machine, started as a user starts one: ``ray start --head`` on 127.0.0.1 (no CPUs of
    its own, so shards go to the workers) and one worker node with ``worker_cpus`` CPUs (a worker process each).
    Yields the head's address; stops both nodes (their process groups) afterwards. Logs go to ``folder``.
    """
    ray = Path(sys.executable).with_name("ray")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    address = f"127.0.0.1:{port}"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    common = ["--node-ip-address", "127.0.0.1", "--object-store-memory", str(object_store_mb * 2**20), "--block",
              "--disable-usage-stats"]
    nodes: list[tuple[list[str], Callable[[], bool]]] = [
        ([str(ray), "start", "--head", "--port", str(port), "--num-cpus", "0", "--include-dashboard=false", *common],
         lambda: _answers(port)),
        ([str(ray), "start", "--address", address, "--num-cpus", str(worker_cpus), *common],
         lambda: _nodes(address) >= 2)]
    started: list[subprocess.Popen[bytes]] = []
    try:
        for number, (command, ready) in enumerate(nodes):
            log = (folder / f"ray-node-{number}.log").open("wb")
            started.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True))
            _wait_for(ready, started[-1], folder)
        yield address
    finally:
        for node in reversed(started):
            _stop(node)


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _nodes(address: str) -> int:
    """The cluster's active nodes, as ``ray status`` lists them."""
    status = subprocess.run([str(Path(sys.executable).with_name("ray")), "status", "--address", address],
                            capture_output=True, text=True, timeout=60, check=False).stdout
    active = status.split("Active:", 1)[-1].split("Pending:", 1)[0] if "Active:" in status else ""
    return sum("node_" in line for line in active.splitlines())


def _wait_for(ready: Callable[[], bool], node: subprocess.Popen[bytes], folder: Path, timeout_s: float = 120.0
              ) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if node.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"a Ray node did not start (exit code {node.poll()}); see {folder}")
        time.sleep(0.5)


def _stop(node: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(node.pid, sig)
            node.wait(timeout=10)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue
