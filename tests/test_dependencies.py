"""Every third-party package the code imports is declared in pyproject.toml: in the dependencies, or in the
optional extra of the feature that needs it (never only in ``dev``)."""

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("autoloop", "sim", "policies", "flows")
#: Imported from checkouts the user names ($LEADERBOARD_ROOT, $SCENARIO_RUNNER_ROOT), not from distributions.
CHECKOUTS = {"leaderboard", "srunner"}


def _imported() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in PACKAGES:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def _name(requirement: str) -> str:
    return re.split(r"[ <>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_imported_package_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    declared |= {_name(r) for extra, requirements in project["optional-dependencies"].items() if extra != "dev"
                 for r in requirements}
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for module, files in sorted(_imported().items()):
        if module in CHECKOUTS:
            continue
        names = {name.lower().replace("_", "-") for name in distributions.get(module, [module])}
        if not names & declared:
            missing.append(f"{module} ({', '.join(sorted(names))}), imported by {', '.join(sorted(files)[:3])}")
    assert not missing, "imported but not declared:\n" + "\n".join(missing)
