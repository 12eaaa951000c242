"""What the Leaderboard agent drives and where it records: its ``--agent-config``.

The Leaderboard's evaluator passes ``--agent-config`` to the agent's ``setup(path_to_conf_file)`` as it is. For
autoloop's agent (:data:`AGENT_MODULE`) it is either

- a JSON file :meth:`AgentConfig.write` wrote (``autoloop evaluate --backend carla`` writes one per run), or
- a bare driver spec, for running the Leaderboard by hand: ``expert``, a registered model
  (``models:/autoloop-driver@champion``, read from ``MLFLOW_TRACKING_URI``) or a checkpoint file.

The driver spec is resolved as ``autoloop evaluate --driver`` resolves it (:func:`autoloop.stages.resolve_driver`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: The agent module to give the evaluator's ``--agent``.
AGENT_MODULE = Path(__file__).with_name("leaderboard_agent.py")
#: Version of the agent-config file's layout.
AGENT_CONFIG_FORMAT = "autoloop-carla-agent-1"


@dataclass(frozen=True)
class AgentConfig:
    """The agent's settings.

    :param driver: ``expert``, a ``models:/`` URI or a checkpoint file.
    :param home: the autoloop home whose episode store receives each route's episode (``None``: nothing recorded).
    :param config: the autoloop YAML whose ``sim`` settings (BEV, the ego's vehicle model) the driver was trained
        with (``None``: the defaults).
    :param tags: stored with each recorded episode (``purpose`` starts its id).
    """

    driver: str
    home: Path | None = None
    config: Path | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def write(self, path: Path) -> Path:
        """Write the settings as the JSON file the agent reads."""
        data: dict[str, Any] = {"format": AGENT_CONFIG_FORMAT, **asdict(self)}
        data["home"] = None if self.home is None else str(self.home)
        data["config"] = None if self.config is None else str(self.config)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def read(cls, value: str) -> AgentConfig:
        """The settings ``--agent-config`` names: a JSON file :meth:`write` wrote, else a bare driver spec.

        :raises ValueError: naming the file and the field when the file is not such a JSON file.
        """
        path = Path(value)
        if not (path.suffix == ".json" and path.is_file()):
            return cls(driver=value)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"agent config {path}: not JSON ({error})") from None
        if not isinstance(data, dict) or data.get("format") != AGENT_CONFIG_FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise ValueError(f"agent config {path}: format {found!r}, this autoloop reads {AGENT_CONFIG_FORMAT!r}")
        if not isinstance(data.get("driver"), str) or not data["driver"]:
            raise ValueError(f"agent config {path}: driver: a driver spec is needed ('expert', models:/..., a file)")
        unknown = set(data) - {"format", "driver", "home", "config", "tags"}
        if unknown:
            raise ValueError(f"agent config {path}: unknown field(s) {sorted(unknown)}")
        tags = data.get("tags") or {}
        if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            raise ValueError(f"agent config {path}: tags: a mapping of strings to strings")
        return cls(driver=data["driver"], home=None if data.get("home") is None else Path(data["home"]),
                   config=None if data.get("config") is None else Path(data["config"]), tags=tags)
