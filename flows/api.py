"""Whether a Prefect API is configured: ``PREFECT_API_URL``, from the environment or any other source of Prefect's
settings (a ``.env``, ``prefect.toml`` or ``pyproject.toml`` of the working directory, the active Prefect profile).

Without one, every flow run starts a temporary API server of its own, so the CLI runs a single stage directly in
its process instead (:mod:`autoloop.cli`). Reading Prefect's settings imports Prefect (about a second); they are
read only when one of the places that could name an API exists, or Prefect is imported already.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Text a settings file holds when it may set the API: ``PREFECT_API_URL = ...`` in a profile or ``.env``,
#: ``[tool.prefect...]`` tables in ``pyproject.toml``; any ``prefect.toml`` may.
_MAY_SET = {".env": "PREFECT_", "prefect.toml": "", "pyproject.toml": "tool.prefect"}


def configured() -> bool:
    """Whether flows talk to a Prefect API server (``PREFECT_API_URL``), not to a temporary one of their own."""
    if "PREFECT_API_URL" not in os.environ and "prefect.settings" not in sys.modules and not _settings_files():
        return False
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def _settings_files() -> list[Path]:
    """The files besides the environment that may set ``PREFECT_API_URL``."""
    profiles = [Path(os.environ["PREFECT_PROFILES_PATH"])] if os.environ.get("PREFECT_PROFILES_PATH") else [
        Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect") / "profiles.toml"]
    candidates = [*((Path(name), text) for name, text in _MAY_SET.items()), *((path, "PREFECT_API_URL")
                                                                              for path in profiles)]
    return [path for path, text in candidates if path.is_file() and text in _read(path)]


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
