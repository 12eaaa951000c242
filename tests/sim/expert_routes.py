"""The privileged expert's per-route results on the ``eval`` suite: the simulator's behavioural fingerprint.

``python -m tests.sim.expert_routes`` rewrites ``data/expert_eval_routes.json``; ``test_expert_routes.py``
checks the simulator still produces it. Change the file only for a deliberate change of behaviour, and say in
the commit which routes changed and why.
"""

from __future__ import annotations

import json
from pathlib import Path

from sim.metrics import RouteRecord, score_route

RECORDED = Path(__file__).with_name("data") / "expert_eval_routes.json"


def route_row(name: str, record: RouteRecord) -> dict[str, object]:
    return {"route": name, "driving_score": round(score_route(record).driving_score, 6),
            "route_completion": round(record.route_completion, 6), "status": record.status.value,
            "driven_m": round(record.driven_m, 3),
            "infractions": {kind.value: n for kind, n in sorted(record.infractions.items()) if n}}


def expert_routes() -> list[dict[str, object]]:
    from autoloop.bench import drive_suite
    from policies.expert import ExpertDriver
    from sim.scenarios.suites import build_suite

    suite = build_suite("eval")
    routes = drive_suite(suite, ExpertDriver)
    return [route_row(f"{i:03d} {suite.event_type(i)} {scenario.map_name}", route.record)
            for i, (scenario, route) in enumerate(zip(suite.scenarios, routes, strict=True))]


if __name__ == "__main__":
    RECORDED.write_text(json.dumps(expert_routes(), indent=1) + "\n")
    print(f"wrote {RECORDED}")
