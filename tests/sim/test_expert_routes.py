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


def test_a_route_drives_the_same_whatever_the_free_actor_slots() -> None:
    """Random draws are keyed by actor slot: a world with more free slots must not shift any actor's slot (a
    background pedestrian's walk, an event vehicle's turns) and so change what happens."""
    import dataclasses

    from autoloop.rollout import RouteRecorder, drive
    from policies.expert import ExpertDriver
    from sim.scenarios.suites import build_suite
    from tests.sim.expert_routes import route_row

    suite = build_suite("eval")
    kinds = [suite.event_type(i) for i in range(len(suite.scenarios))]
    # an event vehicle that turns at random; background pedestrians choosing walkways
    picked = [kinds.index("SignalizedJunctionRightTurn") + 1, kinds.index("Route") + 1]
    base = suite.world_config()
    more = dataclasses.replace(base, max_vehicles=base.max_vehicles + 5, max_pedestrians=base.max_pedestrians + 3,
                               max_statics=base.max_statics + 2)
    rows = [[route_row(str(i), route.record) for i, route in zip(picked, drive(
        [suite.scenarios[i] for i in picked], driver=ExpertDriver, recorder=RouteRecorder(), world=config,
        batch_size=len(picked)), strict=True)] for config in (base, more)]
    assert rows[0] == rows[1]
