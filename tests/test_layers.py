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


def _sim_imports(path: Path) -> set[str]:
    """The modules of ``sim`` a file imports (``from sim.x import y`` counts as ``sim.x`` and ``sim.x.y``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names if alias.name.split(".")[0] == "sim"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("sim"):
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


#: What the scene's readers (the observation, the privileged facts, infractions, metrics) may import of ``sim``.
SCENE_MAY_IMPORT = ("sim.scene", "sim.maps", "sim.geometry", "sim.metrics", "sim.threads")
SCENE_READERS = [*sorted((ROOT / "sim" / "scene").rglob("*.py")), ROOT / "sim" / "metrics.py"]


@pytest.mark.parametrize("path", SCENE_READERS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_scene_readers_import_only_the_scene_and_maps(path: Path) -> None:
    """The observation, the planner facts, infractions and metrics are functions of the scene and the map, so every
    backend reuses them."""
    foreign = {name for name in _sim_imports(path)
               if not name.startswith(SCENE_MAY_IMPORT) and name not in {"sim", "sim.jit_cache"}}
    assert not foreign, f"{path.relative_to(ROOT)} imports {sorted(foreign)}"


def test_only_the_embedded_backend_imports_its_state() -> None:
    """The embedded world's own state and kernels are its business: everyone else reads the scene."""
    private = ("sim.embedded.state", "sim.embedded.kernels")
    offenders = [
        f"{path.relative_to(ROOT)}: {sorted(name for name in _sim_imports(path) if name.startswith(private))}"
        for path in sorted(ROOT.glob("*/**/*.py"))
        if not path.is_relative_to(ROOT / "sim" / "embedded") and not path.is_relative_to(ROOT / ".venv")
        and any(name.startswith(private) for name in _sim_imports(path))]
    assert not offenders, offenders
