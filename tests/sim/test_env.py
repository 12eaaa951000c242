import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sim
from sim.embedded.env import DrivingVectorEnv
from sim.embedded.sb3 import Sb3VecEnv
from sim.embedded.traffic import LightState
from sim.scenarios import sample_scenario
from sim.scene.bev import Channel
from sim.scene.observation import STATE_SIZE
from sim.scene.records import INFRACTIONS


@pytest.mark.parametrize("env_id", sim.ENV_IDS)
def test_check_env(env_id: str) -> None:
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)


@pytest.mark.parametrize("env_id", sim.ENV_IDS)
def test_native_vector_env(env_id: str) -> None:
    envs = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point")
    obs, info = envs.reset(seed=0)
    assert obs["bev"].shape == (3, len(Channel), 128, 128) and obs["bev"].dtype == np.uint8
    assert obs["state"].shape == (3, STATE_SIZE)
    assert envs.observation_space.contains(obs)
    obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
    assert reward.shape == terminated.shape == truncated.shape == (3,)
    assert set(info) == {"route_completion", "status", "infractions", "running_score"}
    assert info["infractions"].shape == (3, len(INFRACTIONS))


def test_same_seed_same_episode() -> None:
    def episode(seed: int) -> tuple[np.ndarray, list[float]]:
        env = gym.make("autoloop/Junction-v0")
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        rewards = []
        for _ in range(50):
            obs, reward, *_ = env.step(env.action_space.sample())
            rewards.append(reward)
        return obs["bev"], rewards

    bev_a, rewards_a = episode(7)
    bev_b, rewards_b = episode(7)
    bev_c, _ = episode(8)
    np.testing.assert_array_equal(bev_a, bev_b)
    assert rewards_a == rewards_b
    assert not np.array_equal(bev_a, bev_c)


def test_next_step_autoreset() -> None:
    envs = DrivingVectorEnv(2)
    scenarios = [sample_scenario(1).model_copy(update={"timeout_s": 0.1}), sample_scenario(2)]
    envs.reset(options={"scenarios": scenarios})
    still = np.zeros((2, 2), dtype=np.float32)
    _, _, terminated, truncated = envs.step(still)[:4]
    assert not truncated.any()
    _, _, terminated, truncated, info = envs.step(still)  # t = 0.1 s: env 0 times out
    assert truncated.tolist() == [True, False] and not terminated.any()
    assert info["status"][0] == "failed_route_timeout"
    assert info["_driving_score"].tolist() == [True, False] and info["driving_score"][0] == 0.0
    _, reward, terminated, truncated, info = envs.step(still)  # env 0 starts a new scenario, action ignored
    assert reward[0] == 0.0 and info["status"][0] == "" and envs.world.time_s[0] == 0.0


def test_bev_shows_route_lanes_and_a_vehicle_ahead() -> None:
    envs = DrivingVectorEnv(1, traffic_vehicles=0)
    envs.reset(options={"scenarios": [sample_scenario(3, traffic_vehicles=0)]})
    route = envs.world.scenarios[0].route  # type: ignore[union-attr]
    world = envs.world
    start = float(world.scene.route.start_m[0])
    world.placement(0).place_vehicle(0, route, s_m=start + 10.0, speed_mps=0.0, desired_speed_mps=0.0)
    x, y, yaw = (float(a[0]) for a in (world.ego.x_m, world.ego.y_m, world.ego.yaw_rad))
    ahead = np.array([np.cos(yaw), np.sin(yaw)])
    left = np.array([-ahead[1], ahead[0]])
    walker = np.array([x, y]) + 6.0 * ahead + 4.0 * left
    world.placement(0).place_pedestrian(0, np.stack([walker, walker + left]), start_time_s=100.0)
    cone = np.array([x, y]) + 4.0 * ahead - 4.0 * left
    world.placement(0).place_static(0, (float(cone[0]), float(cone[1])), yaw, length_m=1.0, width_m=1.0)
    bev = envs.observer.observe()["bev"][0]
    ego_row, centre = 96, 64  # pixel column 64 is 0.25 m right of the ego's centre line
    assert bev[Channel.DRIVABLE, ego_row, centre] == 1
    assert bev[Channel.ROUTE, ego_row - 10, centre] == 1  # the route continues straight ahead
    assert bev[Channel.VEHICLES, ego_row - 20, centre] == 1  # 10 m ahead at 0.5 m/px
    assert bev[Channel.VEHICLES, ego_row, centre] == 0  # the ego itself is not drawn
    assert bev[Channel.PEDESTRIANS, ego_row - 12, centre - 8] == 1  # 6 m ahead, 4 m left
    assert bev[Channel.OBSTACLES, ego_row - 8, centre + 7] == 1  # 4 m ahead, 4 m right
    assert bev[Channel.LANE_LINES].sum() > 0
    light = world.lights[0, world.map.lanes[route[0]].light_group]
    channel = {LightState.RED: Channel.LIGHT_RED, LightState.YELLOW: Channel.LIGHT_YELLOW,
               LightState.GREEN: Channel.LIGHT_GREEN}[LightState(light)]
    assert bev[channel].sum() > 0  # the route's stop line, drawn in its light's state


def test_sb3_vec_env_resets_finished_scenarios_within_the_step() -> None:
    envs = Sb3VecEnv(num_envs=2, traffic_vehicles=0)
    obs = envs.reset()
    assert obs["bev"].shape == (2, len(Channel), 128, 128)
    envs.env.world.scene.outcome.timeout_s[0] = 0.1  # env 0 times out on its second step
    for _ in range(2):
        obs, reward, done, infos = envs.step(np.zeros((2, 2), dtype=np.float32))
    assert done.tolist() == [True, False]
    assert infos[0]["TimeLimit.truncated"] is True and infos[0]["status"] == "failed_route_timeout"
    assert set(infos[0]["terminal_observation"]) == {"bev", "state"}
    assert envs.env.world.time_s[0] == 0.0 and envs.env.world.running[0]  # already a new scenario
    assert reward.dtype == np.float32
