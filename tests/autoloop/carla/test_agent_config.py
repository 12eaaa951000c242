"""The agent's ``--agent-config``: a JSON file autoloop writes, or a bare driver spec; and the agent module's
message when the Leaderboard is not on the path."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from autoloop.carla.agent_config import AGENT_MODULE, AgentConfig


def test_a_written_config_reads_back_and_a_bare_spec_is_a_driver(tmp_path: Path) -> None:
    settings = AgentConfig(driver="models:/autoloop-driver@champion", home=tmp_path / "home",
                           config=tmp_path / "a.yaml", tags={"purpose": "evaluate"})
    path = settings.write(tmp_path / "run" / "agent.json")
    assert AgentConfig.read(str(path)) == settings
    assert AgentConfig.read("expert") == AgentConfig(driver="expert")
    assert AgentConfig.read(str(tmp_path / "last.pt")).driver == str(tmp_path / "last.pt")
    assert AGENT_MODULE.name == "leaderboard_agent.py" and AGENT_MODULE.is_file()


@pytest.mark.parametrize(("content", "message"), [
    ("{", "not JSON"),
    (json.dumps({"format": "autoloop-carla-agent-0", "driver": "expert"}), "format 'autoloop-carla-agent-0'"),
    (json.dumps({"format": "autoloop-carla-agent-1"}), "driver: a driver spec is needed"),
    (json.dumps({"format": "autoloop-carla-agent-1", "driver": "expert", "speed": 3}),
     r"unknown field\(s\) \['speed'\]"),
    (json.dumps({"format": "autoloop-carla-agent-1", "driver": "expert", "tags": {"a": 1}}), "tags: a mapping"),
])
def test_a_bad_config_file_is_refused_in_one_line_naming_it(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "agent.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=f"agent config {path}: {message}") as error:
        AgentConfig.read(str(path))
    assert "\n" not in str(error.value)


def test_the_agent_module_says_how_to_run_it_without_the_leaderboard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "autoloop.carla.leaderboard_agent", raising=False)
    if importlib.util.find_spec("leaderboard") is not None:
        pytest.skip("the Leaderboard is on the path here")
    with pytest.raises(ImportError, match=r"put \$LEADERBOARD_ROOT and \$SCENARIO_RUNNER_ROOT .* on PYTHONPATH"):
        importlib.import_module("autoloop.carla.leaderboard_agent")
