"""What the engine keeps between cycles, under ``<home>/engine``: the last evaluation's failures (the findings the
next collection plans from), the fleet moments already used, and the regression suite."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autoloop.engine.failures import Failure, evaluation_failures
from autoloop.engine.regression import RegressionSuite
from autoloop.evaluation import EvaluationResult
from autoloop.locks import exclusive
from sim.scenarios.suites import Suite, town_layout


@dataclass(frozen=True)
class Findings:
    """Failures of the last evaluations (candidate's and champion's, once per route) and the routes evaluated per
    type and place, which failure rates divide by."""

    failures: tuple[Failure, ...]
    evaluated: dict[str, dict[str, int]]
    policies: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"failures": [failure.to_json() for failure in self.failures], "evaluated": self.evaluated,
                "policies": list(self.policies)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Findings:
        return cls(tuple(Failure.from_json(item) for item in data["failures"]), data["evaluated"],
                   tuple(data["policies"]))


def find(results: Sequence[EvaluationResult], suite: Suite, *, failing_ds: float) -> Findings:
    """The findings of evaluations of one suite (e.g. a candidate's and the champion's)."""
    failures: dict[str, Failure] = {}
    for result in results:
        for failure in evaluation_failures(result, suite, failing_ds=failing_ds):
            failures.setdefault(failure.key, failure)
    routes = results[0].routes if results else ()
    evaluated = {"types": dict(Counter(route.scenario_type for route in routes)),
                 "places": dict(Counter(town_layout(route.town) for route in routes))}
    return Findings(tuple(failures.values()), evaluated, tuple(result.policy for result in results))


@dataclass(frozen=True)
class Ledger:
    """The engine's folder of one autoloop home."""

    folder: Path

    @property
    def regression(self) -> RegressionSuite:
        return RegressionSuite(self.folder / "regression")

    def write_findings(self, findings: Findings) -> None:
        _write(self.folder / "findings.json", findings.to_json())

    def findings(self) -> Findings | None:
        path = self.folder / "findings.json"
        return Findings.from_json(json.loads(path.read_text())) if path.is_file() else None

    def used(self) -> set[str]:
        """Keys of the fleet moments (and shadow-mode passes) already used."""
        path = self.folder / "used.json"
        return set(json.loads(path.read_text())) if path.is_file() else set()

    def mark_used(self, keys: Iterable[str]) -> None:
        with exclusive(self.folder / ".lock"):
            _write(self.folder / "used.json", sorted(self.used() | set(keys)))


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, sort_keys=True, indent=1))
    os.replace(temporary, path)
