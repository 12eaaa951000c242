"""The home's tracking store is created whole or not at all: a kill in the middle of its creation, or commands
started at once on an empty home, never leave a store that later commands refuse."""

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from autoloop.paths import Paths
from autoloop.tracking import configure
from autoloop.tracking.local_store import IncompleteStore, incomplete

ROOT = Path(__file__).parents[2]
CONFIGURE = "import sys; from pathlib import Path; from autoloop.paths import Paths; " \
            "from autoloop.tracking import configure; configure(Paths(Path(sys.argv[1])), 'exp')"


def _environment() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}, "PYTHONPATH": str(ROOT)}


def _configure_in_a_process(home: str, start: Any, out: Any) -> None:
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    start.wait()
    try:
        out.put(configure(Paths(Path(home)), "exp"))
    except Exception as error:  # reported to the test
        out.put(f"{type(error).__name__}: {error}")


@pytest.fixture(autouse=True)
def _local_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")


@pytest.mark.parametrize("after_s", [0.3, 1.0, 2.0])
def test_a_store_whose_creation_was_killed_is_created_again(tmp_path: Path, after_s: float) -> None:
    process = subprocess.Popen([sys.executable, "-c", CONFIGURE, str(tmp_path)], env=_environment())
    time.sleep(after_s)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    experiment_id = configure(Paths(tmp_path), "exp")
    assert experiment_id and incomplete(tmp_path / "mlflow.db") is None
    assert not list(tmp_path.glob(".mlflow.db.*.tmp*"))


def test_commands_started_at_once_on_an_empty_home_share_one_store(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start, out = context.Event(), context.Queue()
    workers = [context.Process(target=_configure_in_a_process, args=(str(tmp_path), start, out)) for _ in range(3)]
    for worker in workers:
        worker.start()
    start.set()
    answers = [out.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert len(set(answers)) == 1 and str(answers[0]).isdigit(), answers  # one experiment, no error
    assert incomplete(tmp_path / "mlflow.db") is None


def _half_created(database: Path, *, runs: bool) -> None:
    """What a kill during MLflow's migrations leaves: some tables, one migration's temporary copy."""
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("CREATE TABLE runs (run_uuid TEXT PRIMARY KEY)")
        connection.execute("CREATE TABLE _alembic_tmp_experiments (experiment_id INTEGER)")
        if runs:
            connection.execute("INSERT INTO runs VALUES ('abc')")


def test_a_half_created_store_without_runs_is_set_aside_and_created_anew(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    _half_created(tmp_path / "mlflow.db", runs=False)
    assert incomplete(tmp_path / "mlflow.db") == "a migration did not finish: _alembic_tmp_experiments"
    with caplog.at_level("WARNING"):
        configure(Paths(tmp_path), "exp")
    assert incomplete(tmp_path / "mlflow.db") is None
    [aside] = tmp_path.glob("mlflow.db.incomplete-*")
    assert aside.name in caplog.text


def test_a_half_created_store_with_runs_is_refused_naming_the_file(tmp_path: Path) -> None:
    _half_created(tmp_path / "mlflow.db", runs=True)
    with pytest.raises(IncompleteStore, match=rf"{tmp_path / 'mlflow.db'}: the tracking store is incomplete"):
        configure(Paths(tmp_path), "exp")


def test_a_home_moved_to_another_folder_keeps_working(tmp_path: Path) -> None:
    import shutil

    import mlflow

    from autoloop import tracking
    from autoloop.config import load_config
    from autoloop.context import open_context
    from tests.autoloop.test_registry import constant_policy, example_observation

    config = load_config(profile="quick")
    original, moved = tmp_path / "original", tmp_path / "moved"
    context = open_context(config, paths=Paths(original))
    with tracking.stage_run("train", experiment_id=context.experiment_id, parent_run_id=None):
        model = tracking.log_policy(constant_policy(0.0, 0.5, config), original / "policy.pt",
                                    example_observation(config))
    tracking.register(model.model_uri, "moved-driver", lock=tracking.registry_lock(context.paths), tags={})
    shutil.copytree(original, moved)
    shutil.rmtree(original)

    os.environ.pop("MLFLOW_TRACKING_URI")  # (configure set it to the original home's store, as a new process would not)
    context = open_context(config, paths=Paths(moved))
    with tracking.stage_run("evaluate", experiment_id=context.experiment_id, parent_run_id=None) as run_id:
        tracking.log_dict({"k": 1}, "check.json")
    assert mlflow.get_run(run_id).info.artifact_uri.startswith(moved.as_uri())
    assert (moved / "mlartifacts").is_dir() and not original.exists()
    policy = tracking.load_policy("models:/moved-driver/1")  # its files are read from the moved home
    observation = example_observation(config)
    assert policy.act(observation).shape == (1, 2)
