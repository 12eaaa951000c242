from pathlib import Path

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


def test_help_lists_the_subcommands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("cycle", "collect", "train", "evaluate", "promote", "config", "ui"):
        assert command in result.output
