"""SB3 drivers on the shared encoder: SAC's warm start reproduces the imitation control head exactly, and PPO and
SAC drivers go through their files unchanged."""

from pathlib import Path

import numpy as np
import pytest
import torch

from autoloop.config import PpoConfig, SacConfig, SimConfig
from autoloop.training.ppo import make_ppo
from autoloop.training.rl import make_vec_env
from autoloop.training.sac import make_sac
from policies.base import LearnedPolicy
from policies.bc import BcNet, BcNetConfig, BcPolicy
from policies.checkpoint import load_policy
from policies.sb3 import POLICY_CLASSES, Sb3Policy
from policies.waypoints import ControllerParams, WaypointNet, WaypointNetConfig, WaypointPolicy
from sim.scene.observation import OBSERVATION_FORMAT, STATE_SIZE

SIM = SimConfig(bev_size_px=32, traffic_vehicles=2)
OBS = {"bev": np.random.default_rng(0).integers(0, 2, (5, 9, 32, 32), dtype=np.uint8),
       "state": np.random.default_rng(1).uniform(-1, 1, (5, STATE_SIZE)).astype(np.float32)}


def _imitation(kind: str) -> tuple[LearnedPolicy, np.ndarray]:
    """An imitation driver with small random weights, and its control head's output on ``OBS``."""
    torch.manual_seed(0)
    bev, state = torch.from_numpy(OBS["bev"]), torch.from_numpy(OBS["state"])
    if kind == "waypoints":
        net = WaypointNet(WaypointNetConfig(9, 32, STATE_SIZE, width=4, hidden=16))
        with torch.no_grad():
            return WaypointPolicy(net, ControllerParams(mode="head")), net(bev, state).control.numpy()
    bc = BcNet(BcNetConfig(9, 32, STATE_SIZE, width=4, hidden=16))
    with torch.no_grad():
        return BcPolicy(bc), bc(bev, state).numpy()


@pytest.mark.parametrize("kind", ["waypoints", "bc"])
def test_sac_warm_start_acts_exactly_like_the_imitation_control_head(kind: str) -> None:
    imitation, head = _imitation(kind)
    env = make_vec_env(SIM, 2)
    model = make_sac(env, SacConfig(buffer_size=64), width=4, hidden=16, init=imitation)
    driver = Sb3Policy(model.policy)
    assert driver.kind == "sac" and isinstance(driver, LearnedPolicy)
    # SAC's deterministic action is tanh(mu), imitation's head is tanh(Linear): the same function
    np.testing.assert_allclose(driver.act(OBS), head, atol=1e-5)
    # the critics see the imitation encoder too, and their targets start as their copies
    actor_encoder = model.policy.actor.features_extractor.state_dict()
    for critic in (model.policy.critic, model.policy.critic_target):
        for name, value in critic.features_extractor.state_dict().items():
            torch.testing.assert_close(value, actor_encoder[name])
    # the exploration noise starts small: log std -2 whatever the observation
    _, log_std, _ = model.policy.actor.get_action_dist_params(model.policy.obs_to_tensor(OBS)[0])
    torch.testing.assert_close(log_std, torch.full_like(log_std, -2.0))
    env.close()


def test_sac_warm_starts_from_a_ppo_driver_by_squashing_its_mean() -> None:
    imitation, _ = _imitation("waypoints")
    env = make_vec_env(SIM, 2)
    ppo = Sb3Policy(make_ppo(env, PpoConfig(n_steps=8, batch_size=16), width=4, hidden=16, init=imitation).policy)
    sac = Sb3Policy(make_sac(env, SacConfig(buffer_size=64), width=4, hidden=16, init=ppo).policy)
    mean, _ = ppo.policy.predict(OBS, deterministic=True)  # the unclipped Gaussian mean (PPO does not squash)
    np.testing.assert_allclose(sac.act(OBS), np.tanh(mean), atol=1e-5)
    env.close()


@pytest.mark.parametrize("kind", ["ppo", "sac"])
def test_sb3_drivers_round_trip_through_their_files(tmp_path: Path, kind: str) -> None:
    imitation, _ = _imitation("bc")
    env = make_vec_env(SIM, 2)
    if kind == "ppo":
        model = make_ppo(env, PpoConfig(n_steps=8, batch_size=16), width=4, hidden=16, init=imitation)
    else:
        model = make_sac(env, SacConfig(buffer_size=64), width=4, hidden=16)  # fresh: a stochastic log std head
    driver = Sb3Policy(model.policy)
    driver.save(tmp_path / "driver.pt")
    assert torch.load(tmp_path / "driver.pt", weights_only=True)["observation_format"] == OBSERVATION_FORMAT
    loaded = load_policy(tmp_path / "driver.pt")
    assert isinstance(loaded, Sb3Policy) and loaded.kind == kind
    assert isinstance(loaded.policy, POLICY_CLASSES[kind])
    np.testing.assert_array_equal(loaded.act(OBS), driver.act(OBS))
    env.close()

