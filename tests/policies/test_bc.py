from pathlib import Path

import numpy as np
import torch

from policies.base import Policy
from policies.bc import BcNet, BcNetConfig, BcPolicy
from policies.expert import ExpertDriver
from sim.embedded.world import make_world


def test_policies_follow_the_protocol() -> None:
    assert isinstance(BcPolicy(BcNet(BcNetConfig(6, 64, 15))), Policy)
    assert isinstance(ExpertDriver(make_world("junction4-60", 1)), Policy)


def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    policy = BcPolicy(BcNet(BcNetConfig(bev_channels=6, bev_size_px=64, state_size=15)))
    rng = np.random.default_rng(0)
    obs = {"bev": rng.integers(0, 2, (4, 6, 64, 64), dtype=np.uint8),
           "state": rng.standard_normal((4, 15)).astype(np.float32)}
    actions = policy.act(obs)
    assert actions.shape == (4, 2) and actions.dtype == np.float32
    assert np.all(np.abs(actions) <= 1.0)
    policy.save(tmp_path / "bc.pt")
    np.testing.assert_array_equal(BcPolicy.load(tmp_path / "bc.pt").act(obs), actions)
