"""Locks and slots that every worker sees: global concurrency limits on the Prefect server.

- ``autoloop-registry`` (one slot): held around every move of the MLflow registry's aliases, so that promotions on
  several workers against one tracking server end with one champion and a consistent history. This machine's file
  lock (:func:`autoloop.tracking.registry_lock`) is held inside it.
- ``gpu`` (slots: the GPUs of the training pool): a training run holds one per GPU it trains on (one on a machine
  without GPUs), so runs beyond the pool's GPUs wait.
- ``carla-server`` (slots: the CARLA servers of the pool): an evaluation in CARLA holds one per server it uses (one
  per GPU it starts a server on, or per running server it is given), so evaluations beyond the servers wait.

A missing limit is created on first use (registry: one slot; gpu and carla-server: the slots this run asks for);
create them beforehand to choose the slots (README: "Run it as a service"). Without a Prefect server
(a local run on Prefect's ephemeral API) only the file lock is held: one process on one machine needs no more.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from prefect import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound
from prefect.logging import get_run_logger

from autoloop import tracking
from autoloop.paths import Paths
from flows import api

REGISTRY_LIMIT = "autoloop-registry"
GPU_LIMIT = "gpu"
CARLA_LIMIT = "carla-server"


def on_server() -> bool:
    """Whether flows talk to a Prefect server (``PREFECT_API_URL``), not to an ephemeral API of their own."""
    return api.configured()


def registry_lock(paths: Paths) -> tracking.RegistryLock:
    """The lock around registry writes: the server's ``autoloop-registry`` limit (when there is a server), then
    this machine's file lock."""
    local = tracking.registry_lock(paths)
    if not on_server():
        return local
    _ensure(REGISTRY_LIMIT, slots=1, advice="it serializes the registry: keep it at one slot")

    @contextmanager
    def everywhere() -> Iterator[None]:
        with concurrency(REGISTRY_LIMIT, occupy=1, strict=True), local():
            yield

    return everywhere


def gpu_slots(count: int) -> AbstractContextManager[object]:
    """Hold ``count`` slots of the server's ``gpu`` limit for the block (nothing without a server)."""
    if not on_server():
        return nullcontext()
    _ensure(GPU_LIMIT, slots=count, advice=f"set it to the GPUs of the pool: prefect gcl update {GPU_LIMIT} --limit N")
    return concurrency(GPU_LIMIT, occupy=count, strict=True)


def carla_servers(count: int) -> AbstractContextManager[object]:
    """Hold ``count`` slots of the server's ``carla-server`` limit for the block (nothing without a server, or for
    ``count`` 0: an evaluation on the embedded simulator)."""
    if count == 0 or not on_server():
        return nullcontext()
    _ensure(CARLA_LIMIT, slots=count,
            advice=f"set it to the CARLA servers of the pool: prefect gcl update {CARLA_LIMIT} --limit N")
    return concurrency(CARLA_LIMIT, occupy=count, strict=True)


def _ensure(name: str, *, slots: int, advice: str) -> None:
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            client.upsert_global_concurrency_limit_by_name(name, slots)
            get_run_logger().warning("created the global concurrency limit %r with %d slot(s) (%s)", name, slots,
                                     advice)
