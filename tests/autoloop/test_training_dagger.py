"""DAgger on the real simulator: the learner drives, the expert labels what it saw, a new snapshot per round."""

from pathlib import Path

import numpy as np

from autoloop.config import DaggerConfig, SimConfig, TrainConfig
from autoloop.episodes import EpisodeStore, create_snapshot, read_snapshot_columns
from autoloop.rollout import RolloutOptions, expert_driver, rollout
from autoloop.training import build_policy, load_trajectory_arrays
from autoloop.training.dagger import dagger
from sim.scenarios import Scenario

SIM = SimConfig(traffic_vehicles=2, bev_size_px=32)


def _short(seed: int) -> Scenario:
    """A scenario cut to 6 s (an untrained learner stands still until the timeout)."""
    return SIM.sample(seed).model_copy(update={"timeout_s": 6.0})


def test_dagger_round_labels_the_learners_states_and_extends_the_snapshot(tmp_path: Path) -> None:
    store = EpisodeStore(tmp_path / "episodes")
    collected = rollout([_short(seed) for seed in (1, 2)], sim=SIM, driver=expert_driver, policy_name="expert",
                        tags={"purpose": "collect"}, options=RolloutOptions(labels=True))
    store.write_many([episode for episode, _ in collected])
    base = create_snapshot(store, tmp_path / "datasets", [e.episode_id for e, _ in collected], {})
    config = TrainConfig(epochs=1, batch_size=64, threads=1, width=4, hidden=16,
                         dagger=DaggerConfig(iterations=1, episodes=2, epochs=1))
    data = load_trajectory_arrays(store, base)
    policy = build_policy(config, data.bev_shape, data.state.shape[1])
    seen = []
    rounds = dagger(policy, base, config=config, sim=SIM, store=store, datasets=tmp_path / "datasets",
                    scenarios=lambda _round: [_short(seed) for seed in (500, 501)],
                    on_epoch=lambda number, metrics: seen.append((number, metrics.epoch)))
    [done] = rounds
    assert seen == [(1, 1)]
    assert len(done.snapshot.episode_ids) == 4 and set(base.episode_ids) < set(done.snapshot.episode_ids)
    episodes = read_snapshot_columns(store, done.snapshot, ["label", "label_plan_xy", "action"])
    learner = [(meta, columns) for meta, columns in episodes if meta["policy"] == "dagger-1"]
    assert len(learner) == 2
    for _, columns in learner:
        # the expert labelled states the learner drove into: its actions differ from the learner's
        assert columns["label_plan_xy"].shape[1] == 16
        assert not np.allclose(columns["label"], columns["action"])
    arrays = load_trajectory_arrays(store, done.snapshot)
    assert len(arrays) == done.result.samples == done.snapshot.num_steps
    # the learner's states have trajectory targets all the way (the expert's plan), the logs lose their last 2 s
    assert arrays.has_trajectory.sum() == len(arrays) - 2 * 40
