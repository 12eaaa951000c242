import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from autoloop.cli import app
from autoloop.config import load_config

runner = CliRunner()


def test_config_show_prints_the_effective_config(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "show", "--profile", "quick"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output) == load_config(profile="quick").model_dump(mode="json")


def test_bad_config_exits_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("gate:\n  min_drivng_score: 50\n")
    result = runner.invoke(app, ["config", "show", "--config", str(path)])
    assert result.exit_code == 2
    assert "unknown key 'gate.min_drivng_score'" in result.output


def test_train_refuses_data_of_another_observation_format_in_one_line(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from autoloop import direct
    from sim.scene.observation import OBSERVATION_FORMAT, check_observation_format

    def train(*_: object) -> None:  # as the stage does on reading such a dataset
        check_observation_format(None, what="episode ep-1", remedy="collect a new dataset (`autoloop collect`)")

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _without_a_prefect_api(monkeypatch, tmp_path)
    monkeypatch.setattr(direct, "train", train)
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "snapshot.json").write_text("{}")  # (a snapshot is there: the flow reads it)
    result = runner.invoke(app, ["train", "--profile", "quick", "--home", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert (f"error: episode ep-1 records no observation format, this autoloop reads observation format "
            f"{OBSERVATION_FORMAT}: collect a new dataset (`autoloop collect`)\n") in result.output


def test_importing_the_cli_loads_no_heavy_package() -> None:
    """The CLI imports torch, Prefect and MLflow only inside the commands that use them."""
    code = ("import sys, autoloop.cli\n"
            "print(sorted(m for m in ('torch', 'prefect', 'mlflow', 'scipy.stats', 'matplotlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_models_imports_neither_prefect_nor_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _without_a_prefect_api(monkeypatch, tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = subprocess.run([sys.executable, "-c", IMPORTED_BY, "models", "--profile", "quick", "--home",
                             str(tmp_path / "home")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "no versions of autoloop-driver yet" in result.stdout and "imported: ['mlflow']" in result.stdout


def test_help_lists_the_subcommands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("cycle", "collect", "train", "evaluate", "promote", "models", "config", "ui", "episodes"):
        assert command in result.output


def test_cycle_summary_table_and_markdown() -> None:
    from autoloop.cli import console, print_summary
    from autoloop.reports import cycle_markdown
    from autoloop.stages import CycleSummary

    summary = CycleSummary(
        cycle_run_id="abc", episodes=16, steps=9000, expert_driving_score=99.0, dataset_digest="f" * 64,
        samples=9000, train_loss=0.01, val_loss=0.02, candidate_uri="models:/m-1", driving_score=71.5,
        route_completion=90.0, champion_before="models:/autoloop-driver/1", champion_driving_score=80.0,
        paired_difference=-8.5, passed=False, reasons=("paired driving-score difference to the champion -8.5 < -5.0",),
        registered_version=None, champion_uri="models:/autoloop-driver@champion", mlflow_ui="mlflow ui [x]",
    )
    with console.capture() as captured:
        print_summary(summary)
    text = captured.get()
    for expected in ("16 (9000 steps", "71.5", "80.0 (models:/autoloop-driver/1)", "failed: paired",
                     "models:/autoloop-driver@champion unchanged", "mlflow ui [x]"):
        assert expected in text
    markdown = cycle_markdown(summary)
    assert "| gate | failed: paired driving-score difference to the champion -8.5 < -5.0 |" in markdown


def test_episodes_query_prints_a_table_or_json(tmp_path: Path) -> None:
    from autoloop.episodes import EpisodeStore
    from tests.autoloop.test_episodes import _fleet_episode

    EpisodeStore(tmp_path / "episodes").write(_fleet_episode("log-1"))
    sql = "SELECT episode_id, date, count(*) AS steps FROM ego GROUP BY ALL"
    result = runner.invoke(app, ["episodes", "query", sql, "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 rows" in result.output and "log-1" in result.output
    result = runner.invoke(app, ["episodes", "query", sql, "--home", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["episode_id"] == "log-1" and row["steps"] == 4
    result = runner.invoke(app, ["episodes", "query", "SELECT nope FROM episodes", "--home", str(tmp_path)])
    assert result.exit_code == 2 and 'column "nope" not found' in result.output


def test_episodes_query_help_names_every_view(tmp_path: Path) -> None:
    import typer.main

    from autoloop.episodes import EpisodeStore
    from autoloop.episodes.query import connect

    views = {name for (name,) in connect(EpisodeStore(tmp_path / "episodes")).sql("SHOW TABLES").fetchall()}
    query = typer.main.get_command(app).commands["episodes"].commands["query"]
    [help_text] = [param.help for param in query.params if param.name == "sql"]
    assert help_text.startswith("DuckDB SQL over the views ")
    assert set(help_text.removeprefix("DuckDB SQL over the views ").removesuffix(".").split(", ")) == views


def _without_a_prefect_api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``PREFECT_API_URL`` in the environment and a Prefect home without profiles (whatever the machine's)."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_PROFILES_PATH", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))


#: Runs the CLI with the arguments after ``-c``, then prints the heavy packages the command imported.
IMPORTED_BY = ("import sys\nfrom autoloop.cli import app\ntry:\n    app(sys.argv[1:], prog_name='autoloop')\n"
               "except SystemExit as end:\n    assert not end.code, end.code\n"
               "print('imported:', sorted(m for m in ('prefect', 'torch', 'mlflow') if m in sys.modules))")


def test_evaluate_runs_the_stage_without_a_prefect_server_and_prints_the_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no Prefect API configured, a stage command runs the stage in its process: no flow run, no temporary API
    server (Prefect is never imported), no prefect.* tags on its run; an expert's evaluation imports no torch."""
    from mlflow import MlflowClient

    from autoloop.paths import Paths

    _without_a_prefect_api(monkeypatch, tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "home"
    result = subprocess.run([sys.executable, "-c", IMPORTED_BY, "evaluate", "--model", "expert", "--suite", "smoke",
                             "--profile", "quick", "--home", str(home)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "expert on smoke" in result.stdout and "report.html" in result.stdout
    assert "imported: ['mlflow']" in result.stdout and "temporary server" not in result.stdout + result.stderr
    assert len(list((home / "evaluations").glob("smoke-*.jsonl"))) == 1
    [run] = MlflowClient(tracking_uri=Paths(home).tracking_uri).search_runs(
        [experiment.experiment_id for experiment in MlflowClient(tracking_uri=Paths(home).tracking_uri)
         .search_experiments()], "tags.`autoloop.stage` = 'evaluate'")
    assert run.data.tags["autoloop.stage"] == "evaluate"
    assert not [tag for tag in run.data.tags if tag.startswith("prefect.")], run.data.tags
    typo = runner.invoke(app, ["evaluate", "--model", "expert", "--suite", "smokey", "--home", str(tmp_path)])
    assert typo.exit_code == 2 and "--suite smokey: unknown suite; choose one of smoke" in typo.output
    assert len(typo.output.strip().splitlines()) == 1, typo.output


@pytest.mark.parametrize("command", [["collect"], ["train"], ["evaluate", "--model", "expert"], ["cycle"]])
def test_an_unwritable_home_fails_at_once_in_one_line(tmp_path: Path, command: list[str]) -> None:
    occupied = tmp_path / "a-file"
    occupied.write_text("not a folder")
    for home in (occupied, occupied / "below", Path("/proc/self")):
        result = CliRunner().invoke(app, [*command, "--profile", "quick", "--home", str(home)])
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error: home ") and "cannot write there" in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_a_driver_file_that_does_not_load_is_refused_before_any_work(tmp_path: Path) -> None:
    import torch

    from sim.scene.observation import OBSERVATION_FORMAT

    files = {"old-format": tmp_path / "old.pt", "text": tmp_path / "hostname", "bytes": tmp_path / "random.pt",
             "no-config": tmp_path / "bc.pt",
             "no-kind": tmp_path / "weights.pt"}
    files["text"].write_text("myhost\n")
    files["bytes"].write_bytes(os.urandom(4096))
    torch.save({"kind": "bc", "observation_format": OBSERVATION_FORMAT}, files["no-config"])
    torch.save({"kind": "bc", "observation_format": OBSERVATION_FORMAT + 1}, files["old-format"])
    torch.save({"weights": torch.zeros(3)}, files["no-kind"])
    for name, path in files.items():
        home = tmp_path / f"home-{name}"
        result = CliRunner().invoke(app, ["evaluate", "--model", str(path), "--suite", "smoke", "--profile", "quick",
                                          "--home", str(home)])
        assert result.exit_code == 2, (name, result.output)
        assert result.output.startswith("error: --model: ") and str(path) in result.output
        assert len(result.output.strip().splitlines()) == 1
        assert not home.exists() or sorted(p.name for p in home.iterdir()) == [], name  # nothing left behind


def test_input_errors_are_one_line_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stage with nothing to work on, a model that is not there, a busy port: one line, exit 2, nothing run."""
    import socket

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")  # (the home's own store, whatever an earlier test left set)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")

    cases = [(["train", "--home", str(tmp_path / "a")], "no dataset snapshots under "),
             (["train", "--home", str(tmp_path / "b"), "--dataset", str(tmp_path / "nope.json")],
              "no such snapshot manifest"),
             (["evaluate", "--home", str(tmp_path / "c")], "--model: models:/autoloop-driver@champion: Registered "
                                                           "Model with name=autoloop-driver not found")]
    for arguments, message in cases:
        result = CliRunner().invoke(app, [*arguments, "--profile", "quick"])
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert not list(Path(arguments[2]).glob("mlruns")) and not (Path(arguments[2]) / "evaluations").exists()
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["ui", "--home", str(tmp_path / "d"), "--port", str(port)])
    assert result.exit_code == 2 and f"--port {port}: cannot listen there (Address already in use)" in result.output


def test_the_pipeline_commands_take_the_options_the_readme_names() -> None:
    """The README: "The pipeline commands (`cycle` to `mine` above) take `--config FILE`, `--profile
    quick|default` and `--home DIR`"."""
    import typer.main

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "The pipeline commands (`cycle` to `mine` above) take `--config FILE`, `--profile quick|default` and" \
           in readme
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    pipeline = [commands[name] for name in ("cycle", "collect", "train", "evaluate", "promote", "ingest", "mine")]
    pipeline.append(commands["models"].commands["show"])
    for command in pipeline:
        options = {option for param in command.params for option in getattr(param, "opts", [])}
        assert {"--config", "--profile", "--home"} <= options, command.name
        profile = next(param for param in command.params if "--profile" in getattr(param, "opts", []))
        assert "quick" in (profile.help or "") and "default" in (profile.help or ""), command.name
