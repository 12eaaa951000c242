from policies.expert import ExpertDriver
from sim.embedded.world import make_world
from sim.metrics import score_suite
from sim.scenario import sample_scenario


def test_expert_drives_sampled_routes_cleanly() -> None:
    """The privileged expert completes junction routes in traffic without infractions (it sets the bar)."""
    scenarios = [sample_scenario(seed, traffic_vehicles=8) for seed in range(100, 116)]
    world = make_world("junction4-60", len(scenarios))
    world.reset(scenarios)
    expert = ExpertDriver(world)
    while world.running.any():
        world.step(expert.act())
    suite = score_suite([world.route_record(env) for env in range(len(scenarios))])
    assert suite.completed_routes == len(scenarios)
    assert suite.infractions == {}
    assert suite.driving_score == 100.0
