from pathlib import Path

import numpy as np
import pytest
import torch

from policies.base import LearnedPolicy, Policy
from policies.bc import BcNet, BcNetConfig, BcPolicy
from policies.checkpoint import load_policy
from policies.expert import ExpertDriver, pure_pursuit
from policies.sb3 import Sb3Policy
from policies.waypoints import (
    ControllerParams,
    WaypointNet,
    WaypointNetConfig,
    WaypointPolicy,
    control,
    route_steer,
    safety_leader,
)
from sim.embedded.world import World
from sim.maps import get_map
from sim.scenarios.suites import build_suite
from sim.scene.observation import (
    OBSERVATION_FORMAT,
    OFFSET_SCALE_M,
    ROUTE_LOOKAHEAD_M,
    ROUTE_SCALE_M,
    STATE_SIZE,
    Feature,
    ObservationFormatError,
    Observer,
)

OBS = {"bev": np.random.default_rng(0).integers(0, 2, (3, 9, 32, 32), dtype=np.uint8),
       "state": np.random.default_rng(1).uniform(-1, 1, (3, STATE_SIZE)).astype(np.float32)}


def test_controller_straight_ahead_holds_the_wheel_and_tracks_speed() -> None:
    straight = np.array([[[2.0, 0.0], [4.0, 0.0], [6.0, 0.0], [8.0, 0.0]]] * 3)
    actions = control(straight, np.array([5.0, 4.0, 0.0]), np.array([4.0, 4.0, 4.0]), 0.5)
    assert np.all(actions[:, 0] == 0.0)
    # 1 m/s faster in 0.5 s: 2 m/s^2 of 3 (full throttle); same speed: coast; stop: full brake
    np.testing.assert_allclose(actions[:, 1], [2.0 / 3.0, 0.0, -1.0], rtol=1e-6)


def test_controller_brakes_fully_on_bunched_waypoints_only_when_slowing_down() -> None:
    bunched = np.array([[[0.3, 0.0], [0.6, 0.0], [0.9, 0.0], [1.2, 0.0]]] * 3)
    # creeping at 0.6 m/s towards a stop (target 0.5): brake fully; pulling away (target 1.0 from 0.5): go;
    # standing (target 0.5 from 0): go
    actions = control(bunched, np.array([0.5, 1.0, 0.5]), np.array([0.6, 0.5, 0.0]), 0.5)
    assert actions[0, 1] == -1.0 and actions[1, 1] > 0.0 and actions[2, 1] > 0.0
    # off, it creeps on: (0.5 - 0.6) / 0.5 = -0.2 m/s^2
    off = control(bunched[:1], np.array([0.5]), np.array([0.6]), 0.5, ControllerParams(stop_path_m=0.0))
    assert -0.1 < off[0, 1] < 0.0
    # a path that is long enough keeps the P control
    spread = bunched[:1] * 3.0
    np.testing.assert_allclose(control(spread, np.array([0.5]), np.array([0.6]), 0.5), off)


def test_the_safety_brake_stops_short_of_an_actor_the_regressed_speed_under_reacts_to() -> None:
    straight = np.array([[[4.0, 0.0], [8.0, 0.0], [12.0, 0.0], [16.0, 0.0]]] * 4)
    speed = np.full(4, 8.0)
    target = np.full(4, 6.5)  # the network's gentle braking: -3 m/s^2
    # a pedestrian standing 8 m ahead (8^2 / 2 / 4 + 2 = 10 m needed): full brake; 12 m ahead: the net's braking;
    # a car 8 m ahead at 8 m/s (closing at 0): the net's; nobody ahead: the net's
    gap, their_speed = np.array([8.0, 12.0, 8.0, np.inf]), np.array([0.0, 0.0, 8.0, 0.0])
    actions = control(straight, target, speed, 0.5, leader=(gap, their_speed))
    np.testing.assert_allclose(actions[:, 1], [-1.0, -3.0 / 8.0, -3.0 / 8.0, -3.0 / 8.0], rtol=1e-6)
    off = control(straight, target, speed, 0.5, ControllerParams(safety_decel_mps2=0.0), leader=(gap, their_speed))
    np.testing.assert_allclose(off[:, 1], -3.0 / 8.0, rtol=1e-6)
    # the policy reads the actor off the state vector (gap / 50 m, speed / 10 m/s; 1: nobody)
    net = WaypointNet(WaypointNetConfig(9, 32, STATE_SIZE))
    with torch.no_grad():  # a network that keeps 8 m/s straight on, whatever it sees
        for head, bias in ((net.speed_head, [8.0]), (net.waypoint_head, [4.0, 0.0] * net.config.waypoints)):
            head.weight.zero_()
            head.bias.copy_(torch.tensor(bias))
    policy = WaypointPolicy(net)
    state = np.zeros((2, STATE_SIZE), dtype=np.float32)
    state[:, Feature.SPEED] = 0.8
    state[:, Feature.LEADER_GAP] = [8.0 / 50.0, 1.0]
    bev = np.zeros((2, 9, 32, 32), dtype=np.uint8)
    acted = policy.act({"bev": bev, "state": state})
    assert acted[0, 1] == -1.0
    unguarded = WaypointPolicy(policy.net, ControllerParams(safety_decel_mps2=0.0)).act({"bev": bev, "state": state})
    assert unguarded[0, 1] == pytest.approx(0.0, abs=1e-6), "the network alone keeps its speed"
    np.testing.assert_array_equal(acted[1], unguarded[1])


def test_the_safety_brake_holds_at_a_line_the_ego_must_stop_at_and_at_a_junction_it_gives_way_to() -> None:
    state = np.zeros((6, STATE_SIZE))
    state[:, Feature.LEADER_GAP] = 1.0  # nobody in the path
    state[:, Feature.STOP_LINE_AHEAD] = state[:, Feature.JUNCTION_AHEAD] = 1.0  # none within 50 m
    # 0: a stop sign not yet served 8 m ahead; 1: the same line, served; 2: giving way, the entry 8 m ahead;
    # 3: the same entry, not giving way; 4: the line 8 m ahead, a car 5 m ahead at 3 m/s; 5: must stop, no line near
    state[:3, Feature.STOP_LINE_AHEAD] = state[2:4, Feature.JUNCTION_AHEAD] = 8.0 / 50.0
    state[[0, 4, 5], Feature.MUST_STOP] = state[2, Feature.GIVE_WAY] = 1.0
    state[4, Feature.STOP_LINE_AHEAD], state[4, Feature.LEADER_GAP], state[4, Feature.LEADER_SPEED] = 0.16, 0.1, 0.3
    gap, speed = safety_leader(state)
    np.testing.assert_allclose(gap, [8.0, np.inf, 8.0, np.inf, 5.0, np.inf])
    np.testing.assert_allclose(speed, [0.0, 0.0, 0.0, 0.0, 3.0, 0.0])
    # at 8 m/s a standing point 8 m ahead needs 10 m: the policy brakes fully where the network brakes gently
    net = WaypointNet(WaypointNetConfig(9, 32, STATE_SIZE))
    with torch.no_grad():  # a network that slows to 6.5 m/s straight on, whatever it sees
        for head, bias in ((net.speed_head, [6.5]), (net.waypoint_head, [4.0, 0.0] * net.config.waypoints)):
            head.weight.zero_()
            head.bias.copy_(torch.tensor(bias))
    state[:, Feature.SPEED] = 0.8
    bev = np.zeros((6, 9, 32, 32), dtype=np.uint8)
    acted = WaypointPolicy(net).act({"bev": bev, "state": state.astype(np.float32)})
    np.testing.assert_allclose(acted[:, 1], [-1.0, -3.0 / 8.0, -1.0, -3.0 / 8.0, -1.0, -3.0 / 8.0], rtol=1e-5)


def test_the_safety_brake_holds_at_a_curbside_stop_only_at_the_curb_until_its_dwell_is_stood() -> None:
    # the ego 0.6 m right of a straight route (its points 0.6 m to the ego's left), the stop's offset -0.6 m
    ahead = np.asarray(ROUTE_LOOKAHEAD_M)
    state = _route_states([np.full(6, 0.6)] * 6, [(0.0, 0.0)] * 6)
    state[:, Feature.LEADER_GAP] = state[:, Feature.STOP_LINE_AHEAD] = state[:, Feature.JUNCTION_AHEAD] = 1.0
    state[:, Feature.CURB_STOP_OFFSET], state[:, Feature.CURB_DWELL] = -0.6 / 2.0, 0.5
    # 0: the stop 3 m ahead; 1: 1 m past it; 2: 2 m past it; 3: its dwell stood; 4: the ego still on the route;
    # 5: no stop within 50 m
    state[:, Feature.CURB_STOP_AHEAD] = np.array([3.0, -1.0, -2.0, 3.0, 3.0, 60.0]).clip(-5.0, 50.0) / 50.0
    state[3, Feature.CURB_DWELL] = 0.0
    state[4, Feature.ROUTE:Feature.ROUTE + 12] = np.stack([ahead, np.zeros(6)], axis=-1).ravel() / ROUTE_SCALE_M
    leader = safety_leader(state)
    # the centre held at most 1 m short of the stop: the brake's 2 m margin, less 1 m
    np.testing.assert_allclose(leader[0], [4.0, 0.0, np.inf, np.inf, np.inf, np.inf])
    np.testing.assert_allclose(leader[1], 0.0)
    # at 5 m/s the stop 3 m ahead needs 25 / 8 + 2 m of the 4: a full brake; at 2 m/s the network brakes itself
    waypoints = np.array([[[2.0, 0.0], [4.0, 0.0], [6.0, 0.0], [8.0, 0.0]]] * 2)
    gap, speed = leader[0][:1].repeat(2), leader[1][:1].repeat(2)
    acted = control(waypoints, np.array([5.0, 2.0]), np.array([5.0, 2.0]), 0.5, leader=(gap, speed))
    np.testing.assert_allclose(acted[:, 1], [-1.0, 0.0])


def test_controller_steers_towards_the_side_of_the_path() -> None:
    left = np.array([[[2.0, 0.2], [4.0, 0.8], [6.0, 1.8], [8.0, 3.2]]])
    right = left * np.array([1.0, -1.0])
    steer_left = control(left, np.array([4.0]), np.array([4.0]), 0.5)[0, 0]
    steer_right = control(right, np.array([4.0]), np.array([4.0]), 0.5)[0, 0]
    assert steer_left > 0.0 and steer_right == pytest.approx(-steer_left)
    # pure pursuit by hand: look-ahead 4 + 0.5 * 4 = 6 m along the path, aimed at from the rear axle
    path = np.concatenate([[[0.0, 0.0]], left[0]])
    length = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    aim = np.array([np.interp(6.0, length, path[:, 0]), np.interp(6.0, length, path[:, 1])]) + [1.45, 0.0]
    expected = np.arctan(2.0 * aim[1] / np.sum(aim**2) * 2.9) / 0.6
    assert steer_left == pytest.approx(expected, rel=1e-6)


def _route_states(route_y: list[np.ndarray], offsets: list[tuple[float, float]]) -> np.ndarray:
    """States whose route points (features 3-14) lie at ``ROUTE_LOOKAHEAD_M`` forward and ``route_y`` left, with
    the planned offset here and its target (33, 34)."""
    state = np.zeros((len(route_y), STATE_SIZE))
    ahead = np.asarray(ROUTE_LOOKAHEAD_M)
    for row, (left, (here, target)) in enumerate(zip(route_y, offsets, strict=True)):
        state[row, Feature.ROUTE:Feature.ROUTE + 12] = np.stack([ahead, left], axis=-1).ravel() / ROUTE_SCALE_M
        state[row, Feature.PATH_OFFSET] = here / OFFSET_SCALE_M
        state[row, Feature.PATH_TARGET] = target / OFFSET_SCALE_M
    return state


def test_route_steering_steers_back_to_the_route_shifted_by_its_planned_offset() -> None:
    ahead = np.asarray(ROUTE_LOOKAHEAD_M)
    flat = np.zeros(6)
    states = _route_states([flat, flat - 1.0, flat + 1.0, flat - 1.0, flat, 0.02 * ahead**2],
                           [(0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (1.0, 1.0), (0.0, 3.0), (0.0, 0.0)])
    steer = route_steer(states, np.full(6, 5.0))
    # on the route: straight; 1 m left of it: right, and the mirror; on the path 1 m left of the route: straight;
    # the path moving left at NUDGE_RATE: a little left; the route bending left ahead: left
    assert steer[0] == pytest.approx(0.0, abs=1e-9)
    assert steer[1] < -0.1 and steer[2] == pytest.approx(-steer[1])
    assert steer[3] == pytest.approx(0.0, abs=1e-9)
    assert 0.0 < steer[4] < steer[2]
    assert steer[5] > 0.05
    # far off the route it steers back at no more than route_max_approach_rad
    far = route_steer(_route_states([flat - 6.0], [(0.0, 0.0)]), np.array([1.0]))
    assert far[0] == pytest.approx(-0.35 / 0.6)
    # at the end of the route (its points bunched) it leaves the steering to the waypoints
    end = route_steer(_route_states([flat], [(0.0, 0.0)]) * np.r_[0.0, 0.0, 0.0, np.tile([0.1, 1.0], 6),
                                                                  np.ones(STATE_SIZE - 15)], np.array([5.0]))
    assert np.isnan(end[0])
    waypoints = np.array([[[2.0, 0.5], [4.0, 1.0], [6.0, 1.5], [8.0, 2.0]]] * 2)
    actions = control(waypoints, np.full(2, 5.0), np.full(2, 5.0), 0.5, steer=np.array([-0.3, np.nan]))
    assert actions[0, 0] == pytest.approx(-0.3) and actions[1, 0] > 0.0


def test_route_steering_keeps_to_a_left_turn_that_pure_pursuit_cuts_into_oncoming_traffic() -> None:
    suite = build_suite("train", routes=10, seed=1000)
    scenario = suite.scenarios[1]  # a left turn within the first 90 m (pure pursuit cuts it by 0.95 m)
    inside = {}
    for steering in ("pure pursuit", "route"):
        world = World(get_map(scenario.map_name), 1, suite.world_config())
        world.reset([scenario])
        observer, expert = Observer(world), ExpertDriver(world)
        inside[steering] = 0.0
        while world.running[0] and world.progress_s[0] < 90.0:
            actions = expert.act()
            if steering == "route":
                actions[:, 0] = route_steer(observer.state_vector().astype(np.float64), world.ego.speed_mps)
            else:
                actions[:, 0] = pure_pursuit(world, 4.0, 0.5)
            world.step(actions)
            inside[steering] = max(inside[steering], float(world.lateral_m[0]))
    assert inside["pure pursuit"] > 0.8, inside
    assert inside["route"] < 0.3, inside


@pytest.mark.parametrize("mode", ["controller", "head", "blend"])
def test_waypoint_policy_round_trip(tmp_path: Path, mode: str) -> None:
    torch.manual_seed(0)
    policy = WaypointPolicy(WaypointNet(WaypointNetConfig(9, 32, STATE_SIZE)), ControllerParams(mode=mode))  # type: ignore[arg-type]
    assert isinstance(policy, LearnedPolicy) and isinstance(policy, Policy)
    actions = policy.act(OBS)
    assert actions.shape == (3, 2) and actions.dtype == np.float32 and np.all(np.abs(actions) <= 1.0)
    policy.save(tmp_path / "driver.pt")
    loaded = load_policy(tmp_path / "driver.pt")
    assert isinstance(loaded, WaypointPolicy) and loaded.params == policy.params
    np.testing.assert_array_equal(loaded.act(OBS), actions)


def test_checkpoints_name_their_kind(tmp_path: Path) -> None:
    BcPolicy(BcNet(BcNetConfig(9, 32, STATE_SIZE))).save(tmp_path / "bc.pt")
    assert isinstance(load_policy(tmp_path / "bc.pt"), BcPolicy)
    torch.save({"kind": "mystery"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="mystery"):
        load_policy(tmp_path / "other.pt")


@pytest.mark.parametrize("kind", ["bc", "waypoints"])
@pytest.mark.parametrize("recorded", [OBSERVATION_FORMAT + 1, None])
def test_a_checkpoint_of_another_observation_format_is_refused_saying_what_to_do(tmp_path: Path, kind: str,
                                                                                 recorded: int | None) -> None:
    path = tmp_path / "driver.pt"
    net = (WaypointNet(WaypointNetConfig(9, 32, STATE_SIZE)) if kind == "waypoints"
           else BcNet(BcNetConfig(9, 32, STATE_SIZE)))
    (WaypointPolicy(net) if isinstance(net, WaypointNet) else BcPolicy(net)).save(path)
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["observation_format"] == OBSERVATION_FORMAT
    if recorded is None:  # (written before checkpoints recorded it)
        del checkpoint["observation_format"]
    else:
        checkpoint["observation_format"] = recorded
    torch.save(checkpoint, path)
    with pytest.raises(ObservationFormatError) as refused:
        load_policy(path)
    has = "records no observation format" if recorded is None else f"has observation format {recorded}"
    assert str(refused.value) == (f"driver checkpoint {path} {has}, this autoloop reads observation format "
                                  f"{OBSERVATION_FORMAT}: retrain it (`autoloop train`)")


def test_ppo_warm_start_acts_like_the_imitation_control_head(tmp_path: Path) -> None:
    from autoloop.config import PpoConfig, SimConfig
    from autoloop.training.ppo import make_ppo
    from autoloop.training.rl import make_vec_env

    torch.manual_seed(0)
    sim = SimConfig(bev_size_px=32, traffic_vehicles=2)
    imitation = WaypointPolicy(WaypointNet(WaypointNetConfig(9, 32, STATE_SIZE, width=4, hidden=16)),
                               ControllerParams(mode="head"))
    env = make_vec_env(sim, 2)
    model = make_ppo(env, PpoConfig(n_steps=8, batch_size=16), width=4, hidden=16, init=imitation)
    driver = Sb3Policy(model.policy)
    assert isinstance(driver, LearnedPolicy)
    with torch.no_grad():
        head = imitation.net(torch.from_numpy(OBS["bev"]), torch.from_numpy(OBS["state"])).control.numpy()
    # the Gaussian mean is the head before its tanh: atanh(head), clipped to [-1, 1]
    np.testing.assert_allclose(driver.act(OBS), np.clip(np.arctanh(head), -1, 1), atol=1e-5)
    driver.save(tmp_path / "ppo.pt")
    np.testing.assert_array_equal(load_policy(tmp_path / "ppo.pt").act(OBS), driver.act(OBS))
    env.close()

