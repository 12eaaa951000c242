"""Warm start: training starts from a copy of the champion's weights and moves it, never the champion; from
scratch (the seeded fresh weights) by config, without a champion, or with a champion of another network."""

import logging

import numpy as np
import pytest
import torch

from autoloop.config import TrainConfig
from autoloop.training import TrajectoryArrays, build_policy, train_bc
from autoloop.training.bc import network
from autoloop.training.warm import initial_policy, schedule
from policies.base import LearnedPolicy
from policies.waypoints import WaypointPolicy

BEV = (2, 16, 16)
STATE = 3
CONFIG = TrainConfig(width=4, hidden=16, batch_size=10, threads=1, seed=0, repeat_threshold=0.0)


def _arrays(n: int = 40) -> TrajectoryArrays:
    rng = np.random.default_rng(0)
    bev = (rng.uniform(size=(n, *BEV)) < 0.3).astype(np.uint8)
    speed = rng.uniform(0.0, 8.0, n).astype(np.float32)
    ahead = np.arange(1, 5)[None, :] * 0.5 * speed[:, None]
    return TrajectoryArrays(bev_packed=np.packbits(bev.reshape(n, -1), axis=1), bev_shape=BEV,
                            state=rng.uniform(-1, 1, (n, STATE)).astype(np.float32),
                            action=rng.uniform(-1, 1, (n, 2)).astype(np.float32),
                            waypoints=np.stack([ahead, np.zeros_like(ahead)], axis=-1).astype(np.float32),
                            speed=speed, has_trajectory=np.ones(n, dtype=bool), has_action=np.ones(n, dtype=bool))


def _weights(policy: LearnedPolicy) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in network(policy).state_dict().items()}


def _assert_equal(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> None:
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)


def _champion(**update: object) -> LearnedPolicy:
    """A driver of another seed than :data:`CONFIG`'s (so its weights are not the fresh ones)."""
    return build_policy(CONFIG.model_copy(update={"seed": 7, **update}), BEV, STATE)


def test_a_warm_start_fine_tunes_a_copy_of_the_champion() -> None:
    champion = _champion(control="head")
    before = _weights(champion)
    start = initial_policy(CONFIG, bev_shape=BEV, state_size=STATE, load_champion=lambda: champion,
                           champion_name="champion models:/driver/3")
    assert start.warm and start.message == ("warm start from champion models:/driver/3: fine-tuning 4 epochs at "
                                            "learning rate 0.0003")
    assert start.policy is not champion
    _assert_equal(_weights(start.policy), before)  # exactly the champion's, before the first update
    assert isinstance(start.policy, WaypointPolicy) and start.policy.params.mode == "controller"  # (this config's)

    result = train_bc(_arrays(), schedule(CONFIG, start.warm), policy=start.policy, epochs=1)
    assert result.policy is start.policy
    moved = _weights(result.policy)
    assert any(not torch.equal(moved[key], before[key]) for key in before)
    _assert_equal(_weights(champion), before)  # the champion is untouched


def test_scratch_is_the_seeded_fresh_driver() -> None:
    def no_champion_asked() -> LearnedPolicy:
        raise AssertionError("train.init scratch asks for no champion")

    start = initial_policy(CONFIG.model_copy(update={"init": "scratch"}), bev_shape=BEV, state_size=STATE,
                           load_champion=no_champion_asked)
    assert not start.warm and start.message == "train.init is scratch: training from scratch"
    _assert_equal(_weights(start.policy), _weights(build_policy(CONFIG, BEV, STATE)))


def test_without_a_champion_training_starts_from_scratch(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="autoloop.training.warm"):
        start = initial_policy(CONFIG, bev_shape=BEV, state_size=STATE, load_champion=lambda: None)
    assert not start.warm and start.message == "no champion yet: training from scratch"
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.INFO, start.message)]
    _assert_equal(_weights(start.policy), _weights(build_policy(CONFIG, BEV, STATE)))


@pytest.mark.parametrize(("update", "reason"), [
    ({"policy": "bc"}, "champion models:/driver/3 is a bc driver, this config trains waypoints"),
    ({"width": 8}, "champion models:/driver/3's network differs from this config's in width 8 (config: 4)"),
    ({"waypoints": 6, "hidden": 32},
     "champion models:/driver/3's network differs from this config's in hidden 32 (config: 16), waypoints 6 "
     "(config: 4)"),
])
def test_an_incompatible_champion_is_not_warm_started_from(update: dict[str, object], reason: str,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    champion = _champion(**update)
    with caplog.at_level(logging.INFO, logger="autoloop.training.warm"):
        start = initial_policy(CONFIG, bev_shape=BEV, state_size=STATE, load_champion=lambda: champion,
                               champion_name="champion models:/driver/3")
    assert not start.warm and start.message == f"{reason}: training from scratch"
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [(logging.WARNING, start.message)]
    _assert_equal(_weights(start.policy), _weights(build_policy(CONFIG, BEV, STATE)))


def test_a_state_of_another_size_is_another_network() -> None:
    champion = build_policy(CONFIG, BEV, STATE + 1)
    start = initial_policy(CONFIG, bev_shape=BEV, state_size=STATE, load_champion=lambda: champion)
    assert not start.warm and "state_size 4 (config: 3)" in start.message


def test_the_fine_tune_schedule_applies_to_warm_starts_only() -> None:
    config = CONFIG.model_copy(update={"finetune_epochs": 2, "finetune_learning_rate": 1e-4})
    assert schedule(config, False) == config
    warm = schedule(config, True)
    assert (warm.epochs, warm.learning_rate) == (2, 1e-4)
    assert warm.model_copy(update={"epochs": config.epochs, "learning_rate": config.learning_rate}) == config
