"""The import directions of DESIGN.md: sim <- policies <- autoloop <- flows (CLI outermost)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"sim", "policies", "autoloop", "flows"}
ALLOWED = {"sim": {"sim"}, "policies": {"sim", "policies"}, "autoloop": {"sim", "policies", "autoloop"},
           "flows": {"sim", "policies", "autoloop", "flows"}}
# third-party packages that only one place may import
OWNERS = {"mlflow": "autoloop/tracking/", "prefect": "flows/", "carla": "sim/carla/"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _modules() -> list[tuple[str, Path]]:
    return [(package, path) for package in sorted(OURS) for path in sorted((ROOT / package).rglob("*.py"))]


@pytest.mark.parametrize(("package", "path"), _modules(), ids=lambda v: str(v).replace(str(ROOT) + "/", ""))
def test_imports_point_down(package: str, path: Path) -> None:
    relative = path.relative_to(ROOT).as_posix()
    imported = _imports(path)
    allowed = ALLOWED[package] | ({"flows"} if relative == "autoloop/cli.py" else set())
    assert not (imported & OURS) - allowed, f"{relative} imports {(imported & OURS) - allowed}"
    for third_party, owner in OWNERS.items():
        assert third_party not in imported or relative.startswith(owner), f"{relative} imports {third_party}"


def test_core_packages_import_without_heavy_services() -> None:
    """`import sim, policies, autoloop` needs no CARLA, MLflow, Prefect or network."""
    code = ("import sys, sim, policies, autoloop, autoloop.config, autoloop.rollout; "
            "heavy = {'mlflow', 'prefect', 'carla'} & set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
