import pytest

from policies.expert import ExpertDriver
from sim.embedded.world import WorldConfig, make_world
from sim.metrics import Infraction, score_suite
from sim.scenarios import sample_scenario


@pytest.mark.parametrize(("map_name", "vehicles", "pedestrians"), [("junction4-60", 8, 0), ("town-1", 20, 8),
                                                                   ("town-grid-3", 20, 8)])
def test_expert_drives_sampled_routes_cleanly(map_name: str, vehicles: int, pedestrians: int) -> None:
    """The privileged expert completes routes in traffic with no infraction but minimum speed (it sets the bar):
    lights, stop signs, yielding at junctions, pedestrians."""
    scenarios = [sample_scenario(seed, map_name=map_name, traffic_vehicles=vehicles, pedestrians=pedestrians)
                 for seed in range(100, 132)]
    world = make_world(map_name, len(scenarios), WorldConfig(max_vehicles=vehicles, max_pedestrians=pedestrians))
    world.reset(scenarios)
    expert = ExpertDriver(world)
    while world.running.any():
        world.step(expert.act())
    suite = score_suite([world.route_record(env) for env in range(len(scenarios))])
    assert suite.completed_routes == len(scenarios)
    assert set(suite.infractions) <= {Infraction.MIN_SPEED}
