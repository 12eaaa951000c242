"""infra/Dockerfile read as text (nothing is built): a pinned base, torch pinned before autoloop is installed, and
a build context that keeps out the virtual environment but keeps everything the image runs.
"""

from __future__ import annotations

import re
from fnmatch import fnmatch

from tests.infra.conftest import INFRA, ROOT

DOCKERFILE = (INFRA / "Dockerfile").read_text()
IGNORED = [line.strip() for line in (INFRA / "Dockerfile.dockerignore").read_text().splitlines()
           if line.strip() and not line.startswith("#")]
#: What the image needs from the repository root: the package, its flows and the Prefect and setup files.
NEEDED = ["pyproject.toml", "README.md", "prefect.yaml", "autoloop/cli.py", "flows/cycle.py", "sim", "policies",
          "infra/setup.sh", "infra/k8s/gpu-job-template.json"]


def ignored(path: str) -> bool:
    """Whether a .dockerignore pattern leaves ``path`` (relative to the context) out: the pattern matches it or a
    folder above it; ``**/name`` matches ``name`` at any depth."""
    parts = path.split("/")
    for end in range(1, len(parts) + 1):
        above = "/".join(parts[:end])
        for pattern in IGNORED:
            if fnmatch(above, pattern) or (pattern.startswith("**/") and fnmatch(parts[end - 1], pattern[3:])):
                return True
    return False


def test_the_base_image_is_pinned_to_a_patch_release() -> None:
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, flags=re.MULTILINE)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    assert "FROM ${PYTHON_IMAGE}" in DOCKERFILE


def test_torch_is_pinned_before_autoloop_is_installed() -> None:
    (version,) = re.findall(r"^ARG TORCH_VERSION=(\S+)$", DOCKERFILE, flags=re.MULTILINE)
    assert version == "2.13.0"
    torch_first = DOCKERFILE.index('pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"')
    constraint = DOCKERFILE.index('echo "torch==${TORCH_VERSION}" > /etc/pip-constraints.txt')
    autoloop = DOCKERFILE.index('pip install --constraint /etc/pip-constraints.txt ".[ray,server]"')
    assert torch_first < constraint < autoloop
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in DOCKERFILE


def test_the_image_runs_from_the_repository_as_a_user() -> None:
    assert "WORKDIR /opt/autoloop" in DOCKERFILE
    assert re.search(r"^USER autoloop$", DOCKERFILE, flags=re.MULTILINE)
    for variable in ("DO_NOT_TRACK=true", "MLFLOW_DISABLE_TELEMETRY=true", "PREFECT_SERVER_ANALYTICS_ENABLED=false",
                     "RAY_USAGE_STATS_ENABLED=0"):
        assert variable in DOCKERFILE


def test_the_context_keeps_what_the_image_needs() -> None:
    for path in (".venv/bin/python", ".git/HEAD", ".autoloop/episodes", "autoloop/__pycache__/cli.cpython-311.pyc",
                 "autoloop.egg-info/PKG-INFO", "infra/.env"):
        assert ignored(path), path
    for path in NEEDED:
        assert not ignored(path), path
    assert all((ROOT / path).exists() for path in NEEDED)
