import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoloop.cli import app


@pytest.mark.slow
def test_bench_cli_times_each_command_in_a_fresh_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = CliRunner().invoke(app, ["bench", "cli", "--repeat", "1", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["benchmark"] == "cli" and isinstance(report["prefect_api"], bool)
    assert not {"torch", "prefect", "mlflow"} & set(report["import"]["heavy"]) and report["import"]["seconds"] > 0
    assert [r["name"] for r in report["results"]] == [
        "help", "config show", "evaluate smoke, driving the routes",
        "evaluate smoke, re-reading the finished evaluation", "models"]
    assert all(len(r["seconds"]) == 1 and r["min_s"] > 0 for r in report["results"])
    assert "HOME" in report["results"][-1]["command"]  # (the home folder is not in the report)
    assert len(list((tmp_path / "evaluations").glob("smoke-*.jsonl"))) == 1
