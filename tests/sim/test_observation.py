"""The state vector's later features: the actor in the ego's path, the robotaxi mission's next curbside stop, an
emergency vehicle's siren, the planned path's offset, waiting at the curb to pull in, giving way at a junction."""

from __future__ import annotations

import numpy as np
import pytest

from policies.expert import ExpertDriver
from sim.embedded.world import World, make_world
from sim.scenarios import events as ev
from sim.scene import codes
from sim.scene.observation import Observer
from tests.sim.test_events import CONFIG, MAP, _scenarios

STOP_LINE, MUST_STOP = 16, 20
(LEADER_GAP, LEADER_SPEED, STOP_AHEAD, STOP_OFFSET, STOP_DWELL, SIREN, SIREN_FORWARD, SIREN_LEFT, PATH_OFFSET,
 PATH_TARGET, MERGE_WAIT, GIVE_WAY, JUNCTION_AHEAD) = range(25, 38)


def _states(scenario_events: list, steps: int = 3000) -> tuple[World, np.ndarray]:
    world = make_world(MAP, len(scenario_events), CONFIG)
    world.reset(scenario_events)
    expert, observer = ExpertDriver(world), Observer(world)
    states = []
    for _ in range(steps):
        if not world.running.any():
            break
        states.append(observer.state_vector())
        world.step(expert.act())
    return world, np.stack(states)


def test_the_state_counts_down_to_the_curbside_stop_and_its_dwell() -> None:
    scenarios = _scenarios(lambda t: ev.CurbsidePickup(trigger_s_m=t, dwell_s=4.0))[:2]
    world, states = _states(scenarios)
    assert (world.scene.mission.stop_next == 1).all(), "the expert served both stops"
    for env in range(2):
        ahead, offset, dwell = states[:, env, STOP_AHEAD], states[:, env, STOP_OFFSET], states[:, env, STOP_DWELL]
        near = np.flatnonzero(ahead < 1.0)
        assert len(near) > 0, "the stop came within 50 m"
        first, last = near[0], near[-1]
        assert ahead[first] == pytest.approx(1.0, abs=0.05) and abs(ahead[last]) < 0.1
        assert np.all(np.diff(ahead[first:last + 1]) <= 1e-6), "the distance only shrinks on the way there"
        assert np.all(offset[near] < 0.0), "the stop lies right, at the curb"
        # standing there, the dwell counts down from 4 s; once served the features read "no stop"
        assert dwell[first] == pytest.approx(0.4) and dwell[last] < 0.05
        assert states[last + 1:, env, STOP_AHEAD] == pytest.approx(1.0)
        assert np.all(states[last + 1:, env, STOP_DWELL] == 0.0)


def test_the_siren_is_heard_from_behind_until_the_emergency_vehicle_has_passed() -> None:
    scenarios = _scenarios(lambda t: ev.YieldToEmergencyVehicle(trigger_s_m=t))[:2]
    world, states = _states(scenarios)
    assert world.scene.emergency.done.all()
    for env in range(2):
        heard = np.flatnonzero(states[:, env, SIREN] == 1.0)
        assert len(heard) > 0
        assert states[heard[0], env, SIREN_FORWARD] < 0.0, "first heard behind the ego"
        assert np.all(states[heard, env, SIREN_FORWARD] * 50.0 > -61.0)
        assert np.all(states[heard[-1] + 1:, env, SIREN] == 0.0), "silent once it got past"
        silent = states[:, env, SIREN] == 0.0
        assert np.all(states[silent, env, SIREN_FORWARD] == 0.0) and np.all(states[silent, env, SIREN_LEFT] == 0.0)


def test_the_leader_features_are_the_gap_and_speed_of_the_actor_in_the_path() -> None:
    scenarios = _scenarios(lambda t: ev.HardBreakRoute(trigger_s_m=t), traffic=8)[:2]
    world = make_world(MAP, 2, CONFIG)
    world.reset(scenarios)
    expert, observer = ExpertDriver(world), Observer(world)
    seen = 0
    for _ in range(400):
        state, sc = observer.state_vector(), world.scene
        leading = np.isfinite(sc.facts.leader_gap_m) & (sc.facts.leader_gap_m < 50.0)
        expected = np.where(leading, np.clip(sc.facts.leader_gap_m / 50.0, -0.1, 1.0), 1.0)
        np.testing.assert_allclose(state[:, LEADER_GAP], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(state[:, LEADER_SPEED], np.where(leading, sc.facts.leader_speed_mps / 10.0, 0.0),
                                   rtol=1e-5, atol=1e-6)
        seen += int(leading.sum())
        world.step(expert.act())
    assert seen > 0, "some actor led the ego within 50 m"


def test_the_path_offset_features_follow_the_planned_path_round_an_obstacle() -> None:
    scenarios = _scenarios(lambda t: ev.ParkedObstacle(trigger_s_m=t))[:2]
    world = make_world(MAP, 2, CONFIG)
    world.reset(scenarios)
    expert, observer = ExpertDriver(world), Observer(world)
    targets, lateral = [], []
    while world.running.any():
        state, sc = observer.state_vector(), world.scene
        np.testing.assert_allclose(state[:, PATH_OFFSET], sc.facts.offset_m / 2.0, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(state[:, PATH_TARGET], sc.facts.nudge_m / 2.0, rtol=1e-5, atol=1e-6)
        targets.append(state[:, PATH_TARGET] * 2.0)
        lateral.append(world.lateral_m.copy())
        world.step(expert.act())
    targets_m, lateral_m = np.array(targets), np.array(lateral)
    for env in range(2):
        assert targets_m[:, env].max() > 1.0, "the path moved left round the parked vehicle"
        assert lateral_m[:, env].max() > 1.0, "and the expert drove it"
        assert targets_m[-1, env] == 0.0, "back on the route afterwards"


def test_the_merge_wait_feature_holds_a_car_at_the_curb_until_the_lane_is_clear() -> None:
    scenarios = _scenarios(lambda t: ev.ParkingExit(trigger_s_m=t))[:2]
    world = make_world(MAP, 2, CONFIG)
    world.reset(scenarios)
    expert, observer = ExpertDriver(world), Observer(world)
    waited = np.zeros(2, dtype=bool)
    for _ in range(600):
        state = observer.state_vector()
        np.testing.assert_array_equal(state[:, MERGE_WAIT], world.scene.facts.merge_wait)
        waiting = state[:, MERGE_WAIT] == 1.0
        assert np.all(world.lateral_m[waiting] < -1.5), "only off the lane, at the curb"
        waited |= waiting
        world.step(expert.act())
    assert waited.all(), "the flow came along the lane while each ego stood at the curb"
    assert np.all(np.abs(world.lateral_m) < 0.5), "then the lane cleared and the expert pulled in"


def test_the_give_way_feature_holds_an_ego_that_served_its_stop_sign_until_the_flow_has_passed() -> None:
    """Standing at a stop sign, the line's control (20) is on before the stop is served and while the junction
    is not clear after it; feature 36 tells the second apart, and 37 is the distance to the junction entry."""
    scenarios = _scenarios(lambda t: ev.NonSignalizedJunctionLeftTurn(trigger_s_m=t))[:4]
    world = make_world(MAP, len(scenarios), CONFIG)
    world.reset(scenarios)
    expert, observer = ExpertDriver(world), Observer(world)
    gave_way = np.zeros(len(scenarios), dtype=bool)
    while world.running.any():
        state, sc = observer.state_vector(), world.scene
        np.testing.assert_array_equal(state[:, GIVE_WAY], sc.facts.give_way)
        entry = np.where(np.isfinite(sc.facts.junction_dist_m), np.clip(sc.facts.junction_dist_m / 50.0, -0.1, 1.0),
                         1.0)
        np.testing.assert_allclose(state[:, JUNCTION_AHEAD], entry, rtol=1e-5, atol=1e-6)
        standing = (world.ego.speed_mps < 0.1) & (state[:, STOP_LINE] < 0.1)  # within 5 m of the line
        giving_way = sc.facts.give_way & world.running
        unserved = ~sc.junction.ego_served & (sc.facts.line_kind == codes.LINE_STOP)
        assert not np.any(giving_way & unserved), "an unserved stop sign is the line's own control"
        shown = giving_way & (state[:, STOP_LINE] < 1.0)
        assert np.all(state[shown, MUST_STOP] == 1.0), "giving way is part of 20 where a line is shown"
        assert np.all(state[giving_way, JUNCTION_AHEAD] < 0.3), "giving way near the entry"
        gave_way |= giving_way & standing & sc.junction.ego_served
        world.step(expert.act())
    assert gave_way.sum() >= 2, "the expert stood at the served stop sign, giving way to the flow"
