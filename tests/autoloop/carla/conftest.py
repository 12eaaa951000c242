from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.autoloop.carla.standins import kill_all, processes_mentioning


@pytest.fixture(autouse=True)
def no_leftovers(tmp_path: Path) -> Iterator[None]:
    """After each test, no stand-in process of it (every one has the test's folder in its command line) remains;
    any that does is killed, and the test fails."""
    yield
    left = processes_mentioning(str(tmp_path))
    deadline = time.monotonic() + 1.0  # a process stopped just now may still be on its way out
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = processes_mentioning(str(tmp_path))
    kill_all(left)
    assert not left, f"processes left behind: {left}"


@pytest.fixture(autouse=True)
def _tracking_uri_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """``mlflow.set_tracking_uri`` writes ``MLFLOW_TRACKING_URI`` into the environment: put back what was there, so
    no later test finds this one's tracking store."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", os.environ.get("MLFLOW_TRACKING_URI", ""))
    if not os.environ["MLFLOW_TRACKING_URI"]:
        monkeypatch.delenv("MLFLOW_TRACKING_URI")
