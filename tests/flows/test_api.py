"""Whether a Prefect API is configured decides whether a stage command of the CLI is a Prefect flow run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from autoloop.cli import app
from autoloop.paths import Paths

#: Prints whether flows.api finds a Prefect API, and whether it imported Prefect to find out.
ASK = ("import sys; from flows.api import configured; print(configured(), 'prefect.settings' in sys.modules)")


def _ask(tmp_path: Path, **env: str) -> str:
    """``configured()`` in a fresh interpreter in ``tmp_path`` with a Prefect home of its own and ``env``."""
    clean = {key: value for key, value in os.environ.items()
             if key not in ("PREFECT_API_URL", "PREFECT_PROFILES_PATH", "PREFECT_PROFILE")}
    done = subprocess.run([sys.executable, "-c", ASK], cwd=tmp_path, capture_output=True, text=True, check=True,
                          env={**clean, "PREFECT_HOME": str(tmp_path / "prefect-home"), **env})
    return done.stdout.strip()


def test_no_api_is_found_without_importing_prefect(tmp_path: Path) -> None:
    assert _ask(tmp_path) == "False False"


def test_an_api_in_the_environment_or_the_active_profile_is_found(tmp_path: Path) -> None:
    assert _ask(tmp_path, PREFECT_API_URL="http://127.0.0.1:4200/api") == "True True"
    profiles = tmp_path / "prefect-home" / "profiles.toml"
    profiles.parent.mkdir(exist_ok=True)
    profiles.write_text('active = "team"\n\n[profiles.team]\nPREFECT_API_URL = "http://prefect.example:4200/api"\n'
                        '\n[profiles.laptop]\nPREFECT_LOGGING_LEVEL = "DEBUG"\n')
    assert _ask(tmp_path) == "True True"
    assert _ask(tmp_path, PREFECT_PROFILE="laptop") == "False True"  # (a profile that names no API)
    (tmp_path / "prefect.toml").write_text('[api]\nurl = "http://127.0.0.1:4200/api"\n')
    assert _ask(tmp_path, PREFECT_PROFILE="laptop") == "True True"


@pytest.mark.usefixtures("prefect_harness")
def test_with_an_api_a_stage_command_is_a_flow_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness's API is configured: ``autoloop evaluate`` runs the evaluate flow, whose run tags the MLflow
    run."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "home"
    result = CliRunner().invoke(app, ["evaluate", "--model", "expert", "--suite", "smoke", "--profile", "quick",
                                      "--home", str(home)])
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=Paths(home).tracking_uri)
    [run] = client.search_runs([experiment.experiment_id for experiment in client.search_experiments()],
                               "tags.`autoloop.stage` = 'evaluate'")
    assert run.data.tags["prefect.flow_run_id"] and run.data.tags["prefect.flow_run_name"] == "evaluate expert smoke"
