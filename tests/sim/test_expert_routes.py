"""The privileged expert drives every ``eval`` route exactly as recorded (see ``expert_routes.py``)."""

import json

import pytest

from tests.sim.expert_routes import RECORDED, expert_routes


@pytest.mark.slow
def test_the_expert_drives_every_eval_route_as_recorded() -> None:
    recorded = {row["route"]: row for row in json.loads(RECORDED.read_text())}
    driven = {row["route"]: row for row in expert_routes()}
    assert driven.keys() == recorded.keys()
    changed = [f"{name}: {recorded[name]} -> {row}" for name, row in driven.items() if row != recorded[name]]
    assert not changed, "\n".join(changed)
