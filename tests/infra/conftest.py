"""What the infra tests share: where the files are, and running a command-line tool that may be absent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
#: Where every autoloop container mounts the shared folder (AUTOLOOP_HOME).
SHARED_HOME = "/data/autoloop"
#: Seconds a tool may take; each run here takes well under one.
TOOL_TIMEOUT_S = 60


def run_tool(tool: str, args: list[str], *, install: str, env: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
    """Run ``tool args`` in the repository root; skip the test, saying how to get ``tool``, when it is absent."""
    executable = shutil.which(tool)
    if executable is None:
        pytest.skip(f"{tool} is not on PATH ({install})")
    return subprocess.run([executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=TOOL_TIMEOUT_S, check=False)


def image_is_pinned(image: str) -> bool:
    """Whether an image reference names a digest, or a tag other than ``latest``."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")
