import numpy as np
import pytest

from policies.expert import ExpertDriver
from sim.embedded.config import WorldConfig
from sim.embedded.world import make_world
from sim.geometry import to_local_frame
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


def test_the_expert_plans_where_it_then_drives_and_stops_its_plan_at_red_lights() -> None:
    scenarios = [sample_scenario(seed, map_name="town-1", traffic_vehicles=0) for seed in range(8)]
    world = make_world("town-1", len(scenarios), WorldConfig(max_vehicles=4, max_pedestrians=2))
    world.reset(scenarios)
    expert = ExpertDriver(world)
    steps_per_point = round(expert.params.plan_dt_s / world.config.dt_s)
    errors, stops = [], 0
    for _ in range(60):  # get going
        world.step(expert.act())
    for _ in range(6):
        expert.act()
        plan = expert.plan_xy.copy()
        origin = np.stack([world.ego.x_m, world.ego.y_m], axis=-1), world.ego.yaw_rad.copy()
        sc = world.scene
        must = sc.facts.must_stop & np.isfinite(sc.facts.stop_dist_m) & world.running
        ahead = plan[:, -1, 0]
        # the plan ends before a stop line the expert must stop at (its front a metre short of it, at most)
        limit = sc.facts.stop_dist_m - 0.5 * world.config.ego_length_m + 1.0
        assert np.all(ahead[must] <= np.maximum(limit[must], 0.0) + 0.5)
        stops += int(must.sum())
        running = world.running.copy()
        for k in range(plan.shape[1]):
            for _ in range(steps_per_point):
                world.step(expert.act())
            actual = to_local_frame(np.stack([world.ego.x_m, world.ego.y_m], axis=-1), *origin)
            errors.append(np.linalg.norm(actual - plan[:, k], axis=-1)[running & world.running])
    assert stops > 0, "no plan met a stop line"
    errors_at_1s = np.concatenate(errors[1::8])
    assert np.median(errors_at_1s) < 0.5 and np.max(errors_at_1s) < 3.0  # lights change under a plan
    assert np.all(np.isfinite(expert.plan_xy)) and expert.plan_speed.shape == (len(scenarios), 8)


def test_the_expert_back_in_its_lane_after_a_pass_does_not_wait_for_oncoming_traffic() -> None:
    """Stopped at a red light while still moving back into its lane after passing a construction site, the
    expert follows whatever is in the corridor it will drive, not in the one it stands in: a car waiting on
    the oncoming lane beyond the junction is no leader that keeps it from entering (it waited for good)."""
    from sim.scenarios.suites import _generate

    scenario = _generate(["town-irregular-9003"], 90_074, "ConstructionObstacle", traffic_vehicles=12, pedestrians=6)
    world = make_world(scenario.map_name, 1, WorldConfig(max_vehicles=15, max_pedestrians=7))
    world.reset([scenario])
    expert = ExpertDriver(world)
    while world.running.any():
        world.step(expert.act())
    record = world.route_record(0)
    assert record.status.value == "completed"
    assert set(record.infractions) <= {Infraction.MIN_SPEED}


def test_the_expert_still_serves_a_curbside_stop_a_learner_overshot_within_its_tolerance() -> None:
    from sim.scenarios import events as ev
    from tests.sim.test_events import CONFIG, MAP, _scenarios

    scenarios = _scenarios(lambda t: ev.CurbsidePickup(trigger_s_m=t, dwell_s=2.0))[:3]
    world = make_world(MAP, len(scenarios), CONFIG)
    world.reset(scenarios)
    expert = ExpertDriver(world)
    sc = world.scene
    overshot = np.zeros(len(scenarios), dtype=bool)
    while world.running.any():
        actions = expert.act()
        # a learner's mistake: at the curb, it keeps creeping (about 1 m/s) past the stop, by 1.2 m of its 2 m
        # tolerance, before the expert takes over again
        past = world.progress_s - sc.mission.stop_s_m[:, 0]
        rolling = (sc.mission.stop_next == 0) & (past > -4.0) & (past < 1.2) & ~overshot
        actions[rolling, 1] = np.where(world.ego.speed_mps[rolling] < 1.0, 0.15, -0.3)
        overshot |= (sc.mission.stop_next == 0) & (past >= 1.2)
        world.step(actions)
    assert overshot.all()
    assert (sc.mission.stop_next == 1).all(), "served the stop from past it"
    from sim.scene.records import INFRACTIONS

    assert (world.infractions[:, INFRACTIONS.index(Infraction.MISSED_CURBSIDE_STOP)] == 0).all()


def test_the_expert_stands_out_a_curbside_stop_where_a_learner_stopped_short_within_its_tolerance() -> None:
    """A learner that comes to a stop at the curb over 1 m short of the stop (its tolerance is 2 m) has stopped there:
    the expert stands out the dwell where it is rather than creeping up to the centre."""
    from sim.scenarios import events as ev
    from tests.sim.test_events import CONFIG, MAP, _scenarios

    scenarios = _scenarios(lambda t: ev.CurbsidePickup(trigger_s_m=t, dwell_s=2.0))[:3]
    world = make_world(MAP, len(scenarios), CONFIG)
    world.reset(scenarios)
    expert = ExpertDriver(world)
    sc = world.scene
    stood_at = np.full(len(scenarios), np.nan)
    moved = np.zeros(len(scenarios))
    while world.running.any():
        actions = expert.act()
        past = world.progress_s - sc.mission.stop_s_m[:, 0]
        pending = sc.mission.stop_next == 0
        # a learner's mistake: it brakes hard 1.9 m short of the stop, then the expert takes over
        braking = pending & np.isnan(stood_at) & (past > -1.9)
        actions[braking, 1] = -1.0
        stood = braking & (world.ego.speed_mps < 0.05)
        stood_at[stood] = world.progress_s[stood]
        waiting = pending & ~np.isnan(stood_at)
        moved[waiting] = np.maximum(moved[waiting], np.abs(world.progress_s[waiting] - stood_at[waiting]))
        world.step(actions)
    assert not np.isnan(stood_at).any()
    assert np.all(stood_at - sc.mission.stop_s_m[:, 0] < -1.0), "it stood short of the stop"
    assert (sc.mission.stop_next == 1).all(), "the stop was served where it stood"
    assert np.all(moved < 0.2), f"the expert crept on by {moved} m"
