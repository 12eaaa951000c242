"""What a killed process leaves in a home (hidden temporaries, RUNNING runs, PENDING models, checkpoint folders
without a model, versions whose verdict stayed pending) is cleared when the next stage starts."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from autoloop.config import load_config
from autoloop.context import open_context
from autoloop.paths import Paths

ROOT = Path(__file__).parents[2]
KILLED_MIDWAY = """
import os, signal, sys
from pathlib import Path
import mlflow
from autoloop import stages, tracking
from autoloop.context import open_context
from autoloop.config import load_config
from autoloop.episodes import store as store_module
from autoloop.paths import Paths
from tests.autoloop.test_episodes import _episode

paths = Paths(Path(sys.argv[1]))
context = open_context(load_config(profile="quick"), paths=paths)
with tracking.stage_run("train", experiment_id=context.experiment_id, parent_run_id=None) as run_id:
    (paths.checkpoints / run_id / "bc").mkdir(parents=True)
    model = mlflow.initialize_logged_model(name="driver")
    mlflow.register_model(f"models:/{model.model_id}", "autoloop-driver",
                          tags={"verdict": "pending", "promote_run_id": run_id})
    def killed(path, data):
        os.kill(os.getpid(), signal.SIGKILL)  # killed while writing an episode's manifest
    store_module._write_durably = killed
    context.store.write(_episode("sim-killed"))
"""


@pytest.fixture(autouse=True)
def _local_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")


def test_the_next_stage_clears_what_a_killed_process_left(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}, "PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, "-c", KILLED_MIDWAY, str(tmp_path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    [staging] = (tmp_path / "episodes").rglob(".sim-killed.*.tmp")
    [checkpoints] = (tmp_path / "checkpoints").iterdir()
    mine = tmp_path / "episodes" / "sim" / f".sim-live.{os.getpid()}.0123abcd.tmp"  # a live writer's
    mine.mkdir()

    context = open_context(load_config(profile="quick"), paths=Paths(tmp_path))
    client = MlflowClient()
    assert not staging.exists() and not checkpoints.exists() and mine.exists()
    [run] = client.search_runs([context.experiment_id])
    assert run.info.status == "KILLED" and run.info.run_id == checkpoints.name
    [model] = client.search_logged_models([context.experiment_id])
    assert model.status.to_proto() == mlflow.entities.LoggedModelStatus.FAILED.to_proto()
    [version] = client.search_model_versions("name = 'autoloop-driver'")
    assert version.tags["verdict"] == "failed"
    assert version.tags["reasons"] == f"the promotion stopped before its verdict (run {run.info.run_id} killed)"
    # a run of a process that is alive is left alone
    with mlflow.start_run(experiment_id=context.experiment_id) as live:
        open_context(load_config(profile="quick"), paths=Paths(tmp_path))
        assert client.get_run(live.info.run_id).info.status == "RUNNING"
